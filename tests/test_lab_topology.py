"""Lab nodes started with a ck.cluster topology find each other as they come up."""
import pytest

from clusterkit.lab import Lab, LabError
from clusterkit.lab.core import lab_topologies
from clusterkit.cluster.epmd import Epmd

A, B, C = "a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"


@pytest.fixture
def lab(clusterkit_epmd):
    lab = Lab(cookie="secret_token")
    yield lab
    lab.shutdown()


def logged(lab, name):
    return [line for item in lab.logs(name) for line in item.text.splitlines()]


def test_epmd_topology_nodes_boot_in_order_and_form_a_mesh(lab):
    assert lab.start("a", "b", "c", topology="epmd") == [A, B, C]
    # Each node looked for the others once, when it came up, in the order given.
    assert logged(lab, "a") == ['[WARNING] [libcluster:epmd] unable to connect to :"b@127.0.0.1"',
                                '[WARNING] [libcluster:epmd] unable to connect to :"c@127.0.0.1"']
    assert logged(lab, "b") == ['[INFO] [libcluster:epmd] connected to :"a@127.0.0.1"',
                                '[WARNING] [libcluster:epmd] unable to connect to :"c@127.0.0.1"']
    assert logged(lab, "c") == ['[INFO] [libcluster:epmd] connected to :"a@127.0.0.1"',
                                '[INFO] [libcluster:epmd] connected to :"b@127.0.0.1"']
    assert lab.run("a", "sorted(Node.list())").value == f"[Atom('{B}'), Atom('{C}')]"
    status = lab.run("c", "ck.cluster.status()['epmd']['seen']").value
    assert status == f"[Atom('{A}'), Atom('{B}')]"


def test_a_dict_of_topologies_and_a_bad_config_key(lab):
    lab.start("a", "b", topology={"static": {"strategy": "local_epmd"}})
    assert logged(lab, "b") == ['[INFO] [libcluster:static] connected to :"a@127.0.0.1"']
    with pytest.raises(LabError, match=r"c@127.0.0.1 did not start: ConfigError: topology "
                                       r"epmd: strategy epmd has no config key 'hots'"):
        lab.start("c", topology="epmd", topology_config={"hots": []})


def test_lab_topologies_fill_hosts_and_name_classes():
    assert lab_topologies("epmd", {"timeout": 5000}, [A, B]) == {
        "epmd": {"strategy": "epmd", "config": {"timeout": 5000, "hosts": [A, B]}}}
    assert lab_topologies({"t": {"strategy": Epmd, "config": {"hosts": [C]}}}, None, [A]) == {
        "t": {"strategy": "epmd", "config": {"hosts": [C]}}}
    assert lab_topologies("local_epmd", None, [A]) == {
        "local_epmd": {"strategy": "local_epmd", "config": {}}}
    assert lab_topologies(None, None, [A]) is None
    with pytest.raises(LabError, match="unknown strategy 'epmdd'; did you mean 'epmd'"):
        lab_topologies("epmdd", None, [A])
    with pytest.raises(LabError, match="topology_config needs a topology"):
        lab_topologies(None, {"hosts": []}, [A])


def test_magic_start_with_a_topology(clusterkit_epmd, capsys):
    from IPython.core.interactiveshell import InteractiveShell
    from clusterkit.lab import magics
    ip = InteractiveShell.instance()
    try:
        ip.run_line_magic("load_ext", "clusterkit.lab")
        ip.run_line_magic("cluster", "start a b --topology epmd --topology-config "
                                     "hosts=['a@127.0.0.1','b@127.0.0.1']")
        ip.run_cell_magic("on", "b", "sorted(Node.list())")
        ip.run_line_magic("cluster", "start c --secret s")
        out, err = capsys.readouterr()
        assert "started a@127.0.0.1\nstarted b@127.0.0.1\n" in out
        assert "(b@127.0.0.1)\n[Atom('a@127.0.0.1')]\n" in out
        # the log line is the node's stderr, shown before the cell's own output
        assert '[INFO] [libcluster:epmd] connected to :"a@127.0.0.1"\n' in err
        assert "--topology-config and --secret need --topology" in err
    finally:
        lab = magics.shared_lab(create=False)
        if lab is not None:
            lab.shutdown()
        magics._lab = None
        InteractiveShell.clear_instance()
