"""sys.config: the Erlang term reader, the kernel parameters, and sync_nodes.

Where Erlang is installed, erl_scan/erl_parse (what file:consult/1 uses) is the
judge: the same files go to both, and the terms, or the line:column of the
syntax error, must match. sync_nodes runs on a fake clock, so no test waits.
"""
from __future__ import annotations

import asyncio
import logging
import subprocess

import pytest

from conftest import requires_erlang

from clusterkit import config as cfg
from clusterkit.config import ConfigError, SyncNodesError, kernel_settings, parse_terms, sync_nodes
from clusterkit.etf import Atom, ExactKey, ListKey, MapKey, decode


def one(text: str):
    terms = parse_terms(text)
    assert len(terms) == 1
    return terms[0]


def write(tmp_path, text: str, name: str = "sys.config"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# --------------------------------------------------------------------------- values

VALUES = [
    # atoms
    ("a.", Atom("a")),
    ("a@b.", Atom("a@b")),
    ("aB_9@x.", Atom("aB_9@x")),
    ("'hello world'.", Atom("hello world")),
    ("'b@127.0.0.1'.", Atom("b@127.0.0.1")),
    (r"'it\'s'.", Atom("it's")),
    (r"'\x{41}\101\x42\^a\e\d\s\z\\'.", Atom("AAB\x01\x1b\x7f z\\")),
    (r"'\1234'.", Atom("S4")),          # octal takes at most 3 digits
    ("'end'.", Atom("end")),            # a reserved word, quoted, is an atom
    ("maybe.", Atom("maybe")),          # not reserved in OTP 25
    ("été.", Atom("été")),              # Latin-1 letters start atoms
    ("true.", True),
    ("false.", False),
    ("'true'.", True),
    # integers
    ("0.", 0),
    ("42.", 42),
    ("1_000_000.", 1000000),
    ("16#FF.", 255),
    ("16#ff_FF.", 65535),
    ("2#1010.", 10),
    ("36#zz.", 1295),
    ("1_6#1.", 1),                      # the base may have separators too
    ("00012.", 12),
    ("123456789012345678901234567890.", 123456789012345678901234567890),
    ("-1.", -1),
    ("- 2.", -2),
    ("+3.", 3),
    ("-16#10.", -16),
    # characters
    ("$a.", 97),
    ("$ .", 32),
    (r"$\n.", 10),
    (r"$\x{1F600}.", 0x1F600),
    (r"$\777.", 511),
    (r"$\8.", 56),
    (r"$\^?.", 31),
    ("$\n.", 10),
    ("-$a.", -97),
    # floats
    ("1.5.", 1.5),
    ("1.5e3.", 1500.0),
    ("1.5E-2.", 0.015),
    ("1.0e+5.", 1e5),
    ("1_0.0_1.", 10.01),
    ("1.0e1_0.", 1e10),
    ("- 1.5.", -1.5),
    ("0.1e-400.", 0.0),
    # strings
    ('"hello".', "hello"),
    ('"".', ""),
    ('"a" "b"  "c".', "abc"),
    ('"tab\\there\\n".', "tab\there\n"),
    ('"\\x{1F600}é".', "\U0001F600é"),
    ('"a\nb".', "a\nb"),
    ('"say \\"hi\\"".', 'say "hi"'),
    # binaries
    ('<<"abc">>.', "abc"),
    ("<<>>.", ""),
    ("<< >>.", ""),
    ('<<"abc" "def">>.', "abcdef"),
    ('<<"a", 1, $b>>.', "a\x01b"),
    ("<<1, 2, 256>>.", "\x01\x02\x00"),     # Erlang keeps the low 8 bits
    ("<<-1>>.", b"\xff"),
    ('<<"ü">>.', b"\xfc"),                  # one byte per character, as in Erlang
    ('<<"ü"/utf8>>.', "ü"),
    ("<<$a/utf8, 228/utf8>>.", "aä"),
    # tuples, lists, maps
    ("{}.", ()),
    ("{a}.", (Atom("a"),)),
    ("{a, 1, \"s\"}.", (Atom("a"), 1, "s")),
    ("[].", []),
    ("[a, [b, []], {c}].", [Atom("a"), [Atom("b"), []], (Atom("c"),)]),
    ("#{}.", {}),
    ("#{a => 1, \"k\" => [2]}.", {Atom("a"): 1, "k": [2]}),
    ("#{a => 1, a => 2}.", {Atom("a"): 2}),  # a later key wins, as in Erlang
    ("#{[1] => x}.", {ListKey([1]): Atom("x")}),
    ("#{#{} => x}.", {MapKey({}): Atom("x")}),
    ("(1).", 1),
    ("[(a), ((2))].", [Atom("a"), 2]),
    # comments and white space
    ("% a comment\n[a, % another\n b]. % after", [Atom("a"), Atom("b")]),
    ("\t[\r\n a\u00a0]\n.\n", [Atom("a")]),
    ("[a]\t.\t", [Atom("a")]),
    ("[a] .", [Atom("a")]),
    ("[a].%c", [Atom("a")]),
]


@pytest.mark.parametrize("text,expected", VALUES)
def test_values(text, expected):
    value = one(text)
    assert value == expected
    assert type(value) is type(expected)


def test_types_are_clusterkit_types():
    value = one("[{kernel, [{connect_all, false}, {s, \"x\"}, {b, <<\"y\">>}, {n, 1.0}]}].")
    (app, params), = value
    assert type(app) is Atom and app == "kernel"
    assert params[0] == (Atom("connect_all"), False) and params[0][1] is False
    assert type(params[1][1]) is str and type(params[2][1]) is str
    assert type(params[3][1]) is float


def test_keys_python_would_merge_stay_apart():
    m = one('#{a => 1, "a" => 2, 1 => x, 1.0 => y}.')
    assert m == {ExactKey(Atom("a")): 1, ExactKey("a"): 2,
                 ExactKey(1): Atom("x"), ExactKey(1.0): Atom("y")}


def test_several_terms_like_file_consult():
    assert parse_terms("{a, 1}.\n{b, 2}.\n") == [(Atom("a"), 1), (Atom("b"), 2)]
    assert parse_terms("") == []
    assert parse_terms("  % only a comment\n") == []


def test_nesting_limit():
    deep = cfg.MAX_DEPTH
    assert parse_terms("[" * deep + "]" * deep + ".")
    with pytest.raises(ConfigError, match=rf":1:{deep + 1}: terms nested more than {deep} deep"):
        parse_terms("[" * (deep + 1) + "]" * (deep + 1) + ".")


def test_atom_length_limit():
    assert one("'" + "a" * 255 + "'.") == "a" * 255
    with pytest.raises(ConfigError, match="atom too long"):
        parse_terms("'" + "a" * 256 + "'.")


# --------------------------------------------------------------------------- errors

# (text, line, column, part of the message, erl reports the same place)
ERRORS = [
    ("[{kernel, [{x, foo bar}]}].", 1, 20, "expected ',' or '}' but found 'bar'", True),
    ("[{kernel,\n\t[{x, {a b}}]}].", 2, 10, "expected ',' or '}' but found 'b'", True),
    ("[{a,b}\n,\n  {c d}].", 3, 6, "expected ',' or '}' but found 'd'", True),
    ("[{kernel, [{x, 1}]}]", 1, 21, "expected '.' after the term but found end of file", False),
    ("[{kernel, [{x, 1}]}]  % no dot\n", 1, 21, "expected '.' after the term", False),
    ("[{kernel, [{x, 1}]}.", 1, 20, "expected ',' or ']' but found '.'", True),
    ("[{kernel, [{x, end}]}].", 1, 16, "found 'end'; end is a reserved word", True),
    ("[a,].", 1, 4, "expected a term but found ']'", True),
    ("[{a, 1}}].", 1, 8, "expected ',' or ']' but found '}'", True),
    ("[]]", 1, 3, "expected '.' after the term but found ']'", True),
    ("#{a => 1 b => 2}.", 1, 10, "expected ',' or '}' but found 'b'", True),
    ("#{a, b}.", 1, 4, "expected '=>' but found ','", True),
    ("#{a => 1,}.", 1, 10, "expected a term but found '}'", True),
    ("{a,}.", 1, 4, "expected a term but found '}'", True),
    ('<<"a",>>.', 1, 7, "found '>>'", True),
    ('[{x, "abc}].', 1, 6, 'unterminated string: the " here is never closed', True),
    ("[{x, 'abc}].", 1, 6, "unterminated quoted atom", True),
    ("[37#1].", 1, 2, "illegal base 37", True),
    ("[16#].", 1, 2, "illegal integer", True),
    ("[16#G].", 1, 2, "illegal integer", True),
    ("[1.0e].", 1, 2, "illegal float", True),
    ("[1.0e_5].", 1, 2, "illegal float", True),
    ("[1.5e400].", 1, 2, "too big for a float", True),
    ("[1e5].", 1, 3, "expected ',' or ']' but found 'e5'", True),
    ("[1.].", 1, 3, "expected ',' or ']' but found '.'", True),
    ("[1__0].", 1, 3, "found '__0'", True),
    ("[1_].", 1, 3, "found '_'", True),
    ("[1.5_].", 1, 5, "found '_'", True),
    ("[1._5].", 1, 3, "found '.'", True),
    ("[2#102].", 1, 6, "expected ',' or ']' but found '2'", True),
    ("[16#1.0].", 1, 6, "found '.'", True),
    ('["\\xfg"].', 1, 3, "\\x needs two hex digits", True),
    ("['\\x{41'].", 1, 3, "illegal character escape", True),
    ('["\\x{D800}"].', 1, 3, "code point 0xd800 is not allowed", True),
    ('["\\x{110000}"].', 1, 3, "code point 0x110000 is not allowed", True),
    ("[$\\x{FFFF}].", 1, 2, "code point 0xffff is not allowed", True),
    ("[$", 1, 2, "'$' needs a character", True),
    ("[a\u00d7b].", 1, 3, "found '\u00d7'", True),
    ("[\u4e2d].", 1, 2, "illegal character", True),
    ("[a..", 1, 3, "found '..'", True),
    ("[a.b].", 1, 3, "found '.'", True),
    # Like file:consult, a term is scanned to its dot before it is parsed.
    ('[a b, "\\xfg"].', 1, 8, "\\x needs two hex digits", True),
    ('[a b].\n["\\xfg"].', 1, 4, "found 'b'", True),
    ('[a].\n[b c].\n["\\xfg"].', 2, 4, "found 'c'", True),
    # Not what erl reports, but more precise: erl says "bad term" at the term's start.
    ("[1 | 2].", 1, 4, "improper lists [Head | Tail] are not supported", False),
    ("[X].", 1, 2, "found 'X'; X is an Erlang variable", False),
    ("[_x].", 1, 2, "found '_x'", False),
    ("[- - 1].", 1, 4, "expected a number after '-' but found '-'", False),
    ("[-a].", 1, 3, "expected a number after '-' but found 'a'", False),
    ("#{a := 1}.", 1, 5, "':=' updates a key of an existing map", False),
    ("#rec{}.", 1, 1, "records (#name{...})", False),
    ("[a:b].", 1, 3, "expected ',' or ']' but found ':'", False),
    ('<<"abc"/binary>>.', 1, 9, "only the /utf8 type", False),
    ("<<1:16>>.", 1, 4, "does not read sizes in binaries", False),
    ("<<a>>.", 1, 3, "expected a string or an integer in the binary but found 'a'", False),
]


@pytest.mark.parametrize("text,line,col,message,_erl", ERRORS)
def test_syntax_errors(text, line, col, message, _erl):
    with pytest.raises(ConfigError) as info:
        parse_terms(text, "sys.config")
    err = info.value
    assert (err.line, err.column) == (line, col), str(err)
    assert str(err).startswith(f"sys.config:{line}:{col}: ")
    assert message in str(err)
    assert isinstance(err, ValueError)


def test_unquoted_long_node_name_gets_a_hint():
    text = "[{kernel, [{sync_nodes_optional, [b@127.0.0.1]}]}]."
    with pytest.raises(ConfigError) as info:
        parse_terms(text, "sys.config")
    assert str(info.value) == (
        "sys.config:1:40: expected ',' or ']' but found '.'; an atom with '.' or '-' in it, "
        "such as a long node name, must be quoted: 'b@127.0.0.1'")
    with pytest.raises(ConfigError, match="must be quoted: 'b@my-host'"):
        parse_terms("[b@my-host].")


def test_error_message_names_the_file_path(tmp_path):
    p = write(tmp_path, "[\n  {kernel, [{a, 1}\n             {b, 2}]}].\n")
    with pytest.raises(ConfigError) as info:
        cfg.consult(p)
    assert str(info.value) == f"{p}:3:14: expected ',' or ']' but found '{{'"


def test_consult_reads_utf8_and_latin1(tmp_path):
    p = tmp_path / "u.config"
    p.write_bytes('["é", \'ü\'].'.encode("utf-8"))
    assert cfg.consult(p) == [["é", Atom("ü")]]
    p.write_bytes("%% coding: latin-1\n[\"\xe9\"].".encode("latin-1"))
    assert cfg.consult(p) == [["é"]]
    p.write_bytes(b'[a,\n "\xe9"].')
    with pytest.raises(ConfigError, match=r"u\.config:2:3: this file is not valid UTF-8"):
        cfg.consult(p)


# --------------------------------------------------------------------------- erl as judge

ORACLE = r"""
%% For each file: "ok <hex of term_to_binary(Terms)>" or "error <line> <col>", using
%% what file:consult/1 uses (erl_scan + erl_parse:parse_term), with columns.
main(Files) -> [io:format("~s~n", [one(F)]) || F <- Files].
one(F) ->
  {ok, Bin} = file:read_file(F),
  case terms(unicode:characters_to_list(Bin), {1,1}, []) of
    {ok, Ts} -> ["ok ", binary:encode_hex(term_to_binary(Ts))];
    {error, {{L,C},_,_}} -> io_lib:format("error ~w ~w", [L, C])
  end.
terms(Text, Loc, Acc) ->
  case erl_scan:tokens([], Text, Loc) of
    {done, Result, Rest} -> step(Result, Rest, Acc);
    {more, Cont} ->
      {done, Result, _} = erl_scan:tokens(Cont, eof, Loc),
      step(Result, eof, Acc)
  end.
step({ok, Toks, End}, Rest, Acc) ->
  case erl_parse:parse_term(Toks) of
    {ok, T} when Rest =:= eof -> {ok, lists:reverse([T|Acc])};
    {ok, T} -> terms(Rest, End, [T|Acc]);
    {error, E} -> {error, E}
  end;
step({eof, _}, _, Acc) -> {ok, lists:reverse(Acc)};
step({error, E, _}, _, _) -> {error, E}.
"""


def erl_consult(tmp_path, texts: list[str]) -> list[str]:
    """What Erlang makes of each text: one erl run for all of them."""
    script = tmp_path / "oracle.escript"
    script.write_text(ORACLE)
    files = []
    for i, text in enumerate(texts):
        f = tmp_path / f"t{i}.config"
        f.write_text(text, encoding="utf-8")
        files.append(str(f))
    out = subprocess.run(["escript", str(script), *files], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert len(out) == len(texts), out
    return out


def erlang_view(v):
    """A comparable form in which our mapping and ETF's agree: strings, binaries and
    char lists all become lists of integers (config uses them interchangeably)."""
    if isinstance(v, ExactKey):
        v = v.term
    if isinstance(v, ListKey):
        v = list(v.items)
    if isinstance(v, MapKey):
        v = dict(v)
    if isinstance(v, bool):
        return ("atom", str(v).lower())
    if isinstance(v, Atom):
        return ("atom", str(v))
    if isinstance(v, str):
        return ("list", tuple(("int", ord(c)) for c in v))
    if isinstance(v, (bytes, bytearray)):
        return ("list", tuple(("int", b) for b in v))
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("float", v)
    if isinstance(v, tuple):
        return ("tuple", tuple(map(erlang_view, v)))
    if isinstance(v, list):
        return ("list", tuple(map(erlang_view, v)))
    if isinstance(v, dict):
        return ("map", frozenset((erlang_view(k), erlang_view(x)) for k, x in v.items()))
    raise TypeError(f"unexpected {type(v)}: {v!r}")


SAMPLE_SYS_CONFIG = """\
%% A release's sys.config, as lesson 03 writes it.
[
  {kernel, [
    {sync_nodes_mandatory, ['b@127.0.0.1']},
    {sync_nodes_optional, ['c@127.0.0.1', 'd@127.0.0.1']},
    {sync_nodes_timeout, 5_000},     % milliseconds
    {net_ticktime, 20},
    {connect_all, true},
    {inet_dist_listen_min, 9100},
    {inet_dist_listen_max, 9105}
  ]},
  {my_app, [{greeting, "hola"}, {bin, <<"x", 0>>}, {opts, #{retries => 3, 'tag' => {a, -1.5}}}]},
  {logger_app, [{level, info}, {chars, [$a, $\\n, 16#7F]}]}
].
"""


@requires_erlang
def test_values_match_erlang(tmp_path):
    texts = [t for t, _ in VALUES] + [SAMPLE_SYS_CONFIG, "{a, 1}.\n{b, 2}.\n", "", "% c\n"]
    for text, line in zip(texts, erl_consult(tmp_path, texts)):
        assert line.startswith("ok "), (text, line)
        theirs = decode(bytes.fromhex(line[3:]))
        assert erlang_view(parse_terms(text)) == erlang_view(theirs), text


@requires_erlang
def test_error_positions_match_erlang(tmp_path):
    cases = [(t, line, col) for t, line, col, _, same in ERRORS if same]
    for (text, line, col), answer in zip(cases, erl_consult(tmp_path, [c[0] for c in cases])):
        assert answer == f"error {line} {col}", (text, answer)


@requires_erlang
def test_erlang_rejects_what_we_reject(tmp_path):
    texts = [t for t, *_ in ERRORS if not t.startswith(("<<", "#rec", "[1 | 2]"))]
    for text, answer in zip(texts, erl_consult(tmp_path, texts)):
        assert answer.startswith("error"), (text, answer)


# --------------------------------------------------------------------------- sys.config shape

SHAPE_ERRORS = [
    ("", 1, 1, "no term in the file"),
    ("[].\n[].", 2, 1, "a second term"),
    ("{kernel, []}.", 1, 1, "expected a list"),
    ('["other.config"].', 1, 2, '"other.config" names another config file'),
    ("[kernel].", 1, 2, "expected an {Application, [{Key, Value}, ...]} tuple but found kernel"),
    ("[{kernel, [], x}].", 1, 2, "tuple but found {kernel, [], x}"),
    ('[{"kernel", []}].', 1, 3, 'application: "kernel"; application name must be an atom'),
    ("[{kernel, x}].", 1, 11, "application: kernel; parameters must be a list"),
    ("[{kernel, [x]}].", 1, 12, "application: kernel; invalid parameter: x"),
    ('[{kernel, [{"x", 1}]}].', 1, 13, 'application: kernel; invalid parameter name: "x"'),
    ("[{kernel, []},\n {kernel, []}].", 2, 3, "duplicate application config: kernel (first at line 1)"),
    ("[{my_app, [{k, 1},\n  {k, 2}]}].", 2, 4, "application: my_app; duplicate parameter: k"),
]


@pytest.mark.parametrize("text,line,col,message", SHAPE_ERRORS)
def test_sys_config_shape(text, line, col, message):
    with pytest.raises(ConfigError) as info:
        cfg.parse_sys_config(text, "sys.config")
    assert (info.value.line, info.value.column) == (line, col), str(info.value)
    assert message in str(info.value)


def test_read_sys_config(tmp_path):
    sections = cfg.read_sys_config(write(tmp_path, SAMPLE_SYS_CONFIG))
    assert [app for app, _ in sections] == ["kernel", "my_app", "logger_app"]
    my_app = dict(sections[1][1])
    assert my_app == {"greeting": "hola", "bin": "x\x00",
                      "opts": {"retries": 3, "tag": (Atom("a"), -1.5)}}


# --------------------------------------------------------------------------- kernel settings

def test_kernel_settings(tmp_path):
    s = kernel_settings(write(tmp_path, SAMPLE_SYS_CONFIG))
    assert s == {
        "sync_nodes_mandatory": ["b@127.0.0.1"],
        "sync_nodes_optional": ["c@127.0.0.1", "d@127.0.0.1"],
        "sync_nodes_timeout": 5000,
        "net_ticktime": 20,
        "connect_all": True,
        "inet_dist_listen_min": 9100,
        "inet_dist_listen_max": 9105,
    }
    assert all(type(n) is Atom for n in s["sync_nodes_optional"])
    assert all(type(k) is str for k in s)


def test_kernel_settings_absent_and_other_keys(tmp_path):
    assert kernel_settings(write(tmp_path, "[].")) == {}
    assert kernel_settings(write(tmp_path, "[{my_app, [{net_ticktime, x}]}].")) == {}
    s = kernel_settings(write(tmp_path, "[{kernel, [{sync_nodes_timeout, infinity}, "
                                        "{logger_level, debug}]}]."))
    assert s == {"sync_nodes_timeout": "infinity", "logger_level": "debug"}
    assert type(s["sync_nodes_timeout"]) is Atom


def test_kernel_settings_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^cannot read sys.config: No such file or directory"):
        kernel_settings(tmp_path / "nope.config")


def test_kernel_settings_syntax_error_has_position(tmp_path):
    p = write(tmp_path, "[{kernel, [{net_ticktime, 20}\n  {connect_all, false}]}].")
    with pytest.raises(ConfigError, match=rf"^{p}:2:3: expected ',' or ']' but found '{{'"):
        kernel_settings(p)


KERNEL_ERRORS = [
    ("{sync_nodes_optional, 'b@127.0.0.1'}", 23,
     "kernel parameter sync_nodes_optional: expected a list of node names, like "
     "['b@127.0.0.1'], but found 'b@127.0.0.1'"),
    ('{sync_nodes_mandatory, ["b@127.0.0.1"]}', 25,
     "kernel parameter sync_nodes_mandatory: \"b@127.0.0.1\" is a string, and node names are "
     "atoms: write 'b@127.0.0.1' (single quotes)"),
    ("{sync_nodes_mandatory, ['b@127.0.0.1', 42]}", 40,
     "sync_nodes_mandatory: expected a node name, like 'b@127.0.0.1', but found 42"),
    ("{sync_nodes_optional, [b]}", 24, "sync_nodes_optional: 'b' is not a node name"),
    ("{sync_nodes_timeout, 0}", 22, "sync_nodes_timeout: 0 is not allowed"),
    ("{sync_nodes_timeout, -5}", 22,
     "sync_nodes_timeout: expected milliseconds (a positive integer) or infinity but found -5"),
    ("{sync_nodes_timeout, 5.0}", 22, "but found 5.0"),
    ("{sync_nodes_timeout, forever}", 22, "but found forever"),
    ("{net_ticktime, \"60\"}", 16,
     "kernel parameter net_ticktime: expected seconds (a positive integer) but found \"60\""),
    ("{net_ticktime, 0}", 16, "net_ticktime: expected seconds"),
    ("{connect_all, yes}", 15, "connect_all: expected true or false but found yes"),
    ("{inet_dist_listen_min, 70000}", 24,
     "inet_dist_listen_min: expected a port number (0 to 65535) but found 70000"),
    ("{inet_dist_listen_max, port}", 24, "inet_dist_listen_max: expected a port number"),
]


@pytest.mark.parametrize("param,col,message", KERNEL_ERRORS)
def test_kernel_settings_errors(tmp_path, param, col, message):
    p = write(tmp_path, f"[{{kernel, [\n{param}\n]}}].")
    with pytest.raises(ConfigError) as info:
        kernel_settings(p)
    assert str(info.value).startswith(f"{p}:2:{col}: "), str(info.value)
    assert message in str(info.value)


def test_kernel_settings_port_range_order(tmp_path):
    p = write(tmp_path, "[{kernel, [{inet_dist_listen_min, 9200},\n"
                        "            {inet_dist_listen_max, 9100}]}].")
    with pytest.raises(ConfigError, match=r":2:36: kernel parameter inet_dist_listen_max: "
                                          r"9100 is below inet_dist_listen_min \(9200\)"):
        kernel_settings(p)


def test_kernel_settings_warns_about_a_likely_typo(tmp_path, caplog):
    p = write(tmp_path, "[{kernel, [{sync_node_optional, ['b@127.0.0.1']}, "
                        "{net_setuptime, 7}]}].")
    with caplog.at_level(logging.WARNING, logger="clusterkit.config"):
        s = kernel_settings(p)
    assert s == {"sync_node_optional": ["b@127.0.0.1"], "net_setuptime": 7}
    assert [r.getMessage() for r in caplog.records] == [
        f"{p}:1:13: kernel parameter sync_node_optional is not one Erlang knows, so it is "
        "ignored; did you mean sync_nodes_optional?"]


# --------------------------------------------------------------------------- sync_nodes

class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeCluster:
    """Nodes that answer connect() from a given attempt on (None: never)."""

    def __init__(self, up_from: dict[str, int | None], time: FakeTime | None = None,
                 connect_cost: float = 0.0):
        self.up_from = up_from
        self.attempts: dict[str, int] = {}
        self.connected: set[str] = set()
        self.time = time
        self.connect_cost = connect_cost

    def connect(self, name) -> bool:
        assert type(name) is Atom
        self.attempts[name] = self.attempts.get(name, 0) + 1
        if self.time is not None:
            self.time.now += self.connect_cost
        first = self.up_from.get(name)
        if first is not None and self.attempts[name] >= first:
            self.connected.add(name)
            return True
        return False

    def is_up(self, name) -> bool:
        return name in self.connected


def run_sync(settings, cluster, t, node=None):
    return sync_nodes(node, settings, connect=cluster.connect, is_up=cluster.is_up,
                      clock=t.clock, sleep=t.sleep)


B, C, D = Atom("b@127.0.0.1"), Atom("c@127.0.0.1"), Atom("d@127.0.0.1")


def test_mandatory_missing_raises_naming_it():
    t = FakeTime()
    cluster = FakeCluster({B: None, C: 1})
    settings = {"sync_nodes_mandatory": [B], "sync_nodes_optional": [C],
                "sync_nodes_timeout": 5000}
    with pytest.raises(SyncNodesError) as info:
        run_sync(settings, cluster, t)
    assert str(info.value).startswith(
        "sync_nodes_mandatory: b@127.0.0.1 did not come up within 5000 ms (sync_nodes_timeout)")
    assert "{mandatory_nodes_down,['b@127.0.0.1']}" in str(info.value)
    assert info.value.missing == [B] and info.value.timeout == 5000
    assert t.now == pytest.approx(1005.0)          # it waited the whole timeout
    assert cluster.attempts[C] == 1                # an up node is not dialled again
    assert cluster.attempts[B] > 10
    assert all(0 < s <= 0.5 for s in t.sleeps)
    assert all(s >= 0.1 for s in t.sleeps[:-1])    # only the last sleep is cut short


def test_several_mandatory_missing():
    t = FakeTime()
    settings = {"sync_nodes_mandatory": [B, C, D], "sync_nodes_timeout": 1000}
    with pytest.raises(SyncNodesError, match=r"^sync_nodes_mandatory: b@127.0.0.1, "
                                             r"d@127.0.0.1 did not come up within 1000 ms"):
        run_sync(settings, FakeCluster({B: None, C: 2, D: None}), t)


def test_optional_missing_is_fine_after_the_timeout():
    t = FakeTime()
    cluster = FakeCluster({B: 1, C: None})
    settings = {"sync_nodes_mandatory": [B], "sync_nodes_optional": [C],
                "sync_nodes_timeout": 2000}
    assert run_sync(settings, cluster, t) == [B]
    # Like Erlang, it waits for the optional node until the timeout.
    assert t.now == pytest.approx(1002.0)


def test_nodes_coming_up_on_the_third_attempt():
    t = FakeTime()
    cluster = FakeCluster({B: 3, C: 3})
    settings = {"sync_nodes_mandatory": [B], "sync_nodes_optional": [C],
                "sync_nodes_timeout": 5000}
    assert run_sync(settings, cluster, t) == [B, C]
    assert cluster.attempts == {B: 3, C: 3}
    assert len(t.sleeps) == 2
    assert t.now - 1000 < 1.5                      # done as soon as all are up


def test_a_node_that_connects_to_us_counts():
    t = FakeTime()
    cluster = FakeCluster({B: None})
    calls = {"n": 0}

    def is_up(name):
        calls["n"] += 1
        return calls["n"] >= 4                     # b dials us while we wait

    settings = {"sync_nodes_mandatory": [B], "sync_nodes_timeout": 60_000}
    assert sync_nodes(None, settings, connect=cluster.connect, is_up=is_up,
                      clock=t.clock, sleep=t.sleep) == [B]
    assert cluster.attempts[B] == 3


def test_timeout_zero_is_one_attempt_each():
    t = FakeTime()
    cluster = FakeCluster({B: 1, C: 2, D: None})
    settings = {"sync_nodes_optional": [B, C, D], "sync_nodes_timeout": 0}
    assert run_sync(settings, cluster, t) == [B]
    assert cluster.attempts == {B: 1, C: 1, D: 1}
    assert t.sleeps == []
    with pytest.raises(SyncNodesError, match="within 0 ms"):
        run_sync({"sync_nodes_mandatory": [D], "sync_nodes_timeout": 0}, cluster, t)


def test_infinity_waits_for_mandatory_nodes():
    t = FakeTime()
    # b comes up after about an hour of retries: infinity never gives up.
    cluster = FakeCluster({B: 9000})
    settings = {"sync_nodes_mandatory": [B], "sync_nodes_timeout": Atom("infinity")}
    assert run_sync(settings, cluster, t) == [B]
    assert cluster.attempts[B] == 9000
    assert t.now - 1000 > 3600
    assert max(t.sleeps) == 0.5


def test_infinity_waits_for_optional_nodes_too():
    # Erlang's kernel_config waits for every listed node when there is no timeout.
    t = FakeTime()
    cluster = FakeCluster({B: 1, C: 50})
    settings = {"sync_nodes_mandatory": [B], "sync_nodes_optional": [C],
                "sync_nodes_timeout": "infinity"}
    assert run_sync(settings, cluster, t) == [B, C]
    assert cluster.attempts == {B: 1, C: 50}


def test_no_timeout_means_no_synchronization():
    # Erlang: "If this parameter is undefined, no node synchronization is performed."
    t = FakeTime()
    cluster = FakeCluster({B: None})
    assert run_sync({"sync_nodes_mandatory": [B]}, cluster, t) == []
    assert run_sync({"sync_nodes_timeout": 100}, cluster, t) == []
    assert run_sync({}, cluster, t) == []
    assert cluster.attempts == {} and t.sleeps == []


def test_slow_connects_count_against_the_timeout():
    t = FakeTime()
    cluster = FakeCluster({B: None}, time=t, connect_cost=0.7)
    with pytest.raises(SyncNodesError):
        run_sync({"sync_nodes_mandatory": [B], "sync_nodes_timeout": 2000}, cluster, t)
    assert 1002.0 <= t.now <= 1002.0 + 0.7
    assert cluster.attempts[B] <= 4


def test_settings_from_a_file_drive_sync_nodes(tmp_path):
    settings = kernel_settings(write(tmp_path, SAMPLE_SYS_CONFIG))
    t = FakeTime()
    cluster = FakeCluster({B: 2, C: 1, D: None})
    assert run_sync(settings, cluster, t) == [B, C]
    assert t.now == pytest.approx(1005.0)


# --- with a LocalNode-like object: what ck.start passes

class FakeRuntime:
    def run(self, coro, timeout=None):
        return asyncio.run(coro)


class FakeConn:
    def __init__(self, up: bool):
        self.up = up


class FakeLocalNode:
    def __init__(self, reachable: set[str], already: dict[str, bool]):
        self.atom = Atom("a@127.0.0.1")
        self.runtime = FakeRuntime()
        self.reachable = reachable
        self.connections = {Atom(k): FakeConn(v) for k, v in already.items()}
        self.dialled: list[Atom] = []

    async def connect(self, name) -> bool:
        self.dialled.append(name)
        if name in self.reachable:
            self.connections[Atom(name)] = FakeConn(True)
            return True
        return False


def test_sync_nodes_with_just_node_and_settings():
    # Real clock and sleep here, so a timeout of 1 ms.
    node = FakeLocalNode(reachable={B}, already={C: True, D: False})
    settings = {"sync_nodes_mandatory": [B, node.atom], "sync_nodes_optional": [C, D],
                "sync_nodes_timeout": 1}
    assert sync_nodes(node, settings) == [B, node.atom, C]
    assert B in node.dialled and C not in node.dialled and node.atom not in node.dialled
    assert D in node.dialled


def test_sync_nodes_for():
    node = FakeLocalNode(reachable=set(), already={})
    with pytest.raises(SyncNodesError, match="b@127.0.0.1 did not come up within 1 ms"):
        cfg.sync_nodes_for(node, {"sync_nodes_mandatory": ["b@127.0.0.1"],
                                  "sync_nodes_timeout": 1})
    node = FakeLocalNode(reachable={B}, already={})
    assert cfg.sync_nodes_for(node, {"sync_nodes_optional": [B],
                                     "sync_nodes_timeout": 1}) == [B]
