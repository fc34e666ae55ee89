"""The Erlang term reader as a module of its own (sys.config and .hosts.erlang share it)."""
import pytest

from clusterkit import Atom, config, erlterm


def test_hosts_erlang_terms():
    text = "'host1'.\n'host2.example.org'.  % a comment\nlocalhost.\n"
    assert erlterm.parse_terms(text) == [Atom("host1"), Atom("host2.example.org"),
                                         Atom("localhost")]


def test_errors_carry_file_line_column():
    with pytest.raises(erlterm.TermError) as e:
        erlterm.parse_terms("'a'.\n'b'\n'c'.\n", ".hosts.erlang")
    assert str(e.value).startswith(".hosts.erlang:3:1: ")
    assert (e.value.path, e.value.line, e.value.column) == (".hosts.erlang", 3, 1)


def test_config_error_is_the_term_error():
    """Code that catches config.ConfigError also catches syntax errors from erlterm."""
    assert config.ConfigError is erlterm.TermError


def test_consult_names_what_it_reads(tmp_path):
    with pytest.raises(erlterm.TermError, match=r"^cannot read \.hosts\.erlang: No such file"):
        erlterm.consult(tmp_path / "missing", ".hosts.erlang")
    p = tmp_path / "h"
    p.write_text("'a'. 'b'.")
    assert erlterm.consult(p) == ["a", "b"]


def test_located_terms_point_at_each_term():
    [(value, loc)] = erlterm.parse_located("\n  {a, [b]}.")
    assert value == (Atom("a"), [Atom("b")])
    assert (loc.line, loc.col) == (2, 3)
    assert (loc.items[1].items[0].line, loc.items[1].items[0].col) == (2, 8)
