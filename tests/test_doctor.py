"""`clusterkit doctor` finds the usual problems and prints a fix for each."""
import subprocess
import sys

from conftest import requires_erlang

from clusterkit import doctor


def test_cookie_checks(tmp_path):
    path = tmp_path / ".erlang.cookie"
    assert doctor.check_cookie(path).ok                       # missing: created on start
    path.write_text("ABC")
    path.chmod(0o644)
    bad = doctor.check_cookie(path)
    assert not bad.ok and bad.fix == f"chmod 400 {path}"
    path.chmod(0o400)
    assert doctor.check_cookie(path).ok


def test_unresolvable_host_name():
    check = doctor.check_short_name("no-such-host-clusterkit-test")
    assert not check.ok and "/etc/hosts" in check.fix


def test_epmd_kinds(clusterkit_epmd):
    check = doctor.check_epmd(clusterkit_epmd)
    assert check.ok and "clusterkit's EPMD" in check.found


@requires_erlang
def test_real_epmd_is_recognised(real_epmd):
    check = doctor.check_epmd(real_epmd)
    assert check.ok and "Erlang's epmd" in check.found
    assert "epmd -address 127.0.0.N" in check.found      # basename@ip needs it (lesson 06)


def test_multicast_on_loopback():
    check = doctor.check_multicast(port=45893)
    assert check.ok or "ip route add 224.0.0.0/4 dev lo" in check.fix


def test_the_command(epmd_port):
    out = subprocess.run([sys.executable, "-m", "clusterkit", "doctor", "--epmd-port",
                          str(epmd_port)], capture_output=True, text=True, timeout=60)
    assert "cookie file" in out.stdout and "EPMD" in out.stdout
    assert out.returncode in (0, 1)
    assert out.stdout.strip().splitlines()[-1] in ("all good",) or "problem" in out.stdout
