"""clusterkit.etf: the External Term Format codec.

Exact bytes are checked against Erlang's term_to_binary(T, [{minor_version, 2}])
(UTF-8 atoms, as the distribution sends them): hard-coded here, and again live
when `erl` is installed.
"""
from __future__ import annotations

import math
import shutil
import struct
import subprocess
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import requires_erlang
from clusterkit.etf import (
    MAX_DEPTH,
    Atom,
    ETFError,
    ExactKey,
    ImproperList,
    ListKey,
    MapKey,
    Opaque,
    Pid,
    Port,
    Reference,
    atom_text,
    decode,
    decode_body,
    decode_from,
    encode,
    encode_body,
    freeze,
)


def same(a, b) -> bool:
    """Equal, and of the same Python types all the way down (Atom('a') is not 'a')."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack(">d", a) == struct.pack(">d", b)
    if type(a) in (tuple, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return len(a) == len(b) and all(
            same(k1, k2) and same(v1, v2) for (k1, v1), (k2, v2) in zip(a.items(), b.items())
        )
    if type(a) is ImproperList:
        return same(a.items, b.items) and same(a.tail, b.tail)
    return a == b


def roundtrip(term):
    return decode(encode(term))


PID = Pid(Atom("a@127.0.0.1"), 12, 0, 3)
REF = Reference(Atom("a@127.0.0.1"), 3, (196800, 2515271681, 3221936995))
PORT = Port(Atom("a@127.0.0.1"), 5, 3)


# --------------------------------------------------------------------------- exact bytes

# Hex of term_to_binary(T, [{minor_version, 2}]) from Erlang/OTP 25.
ERLANG_BYTES = [
    (0, "836100"),
    (255, "8361FF"),
    (256, "836200000100"),
    (-1, "8362FFFFFFFF"),
    (2147483647, "83627FFFFFFF"),
    (2147483648, "836E040000000080"),
    (-2147483649, "836E040101000080"),
    (2**2040, "836F00000100" + "00" + "00" * 255 + "01"),
    (-(2**2048), "836F00000101" + "01" + "00" * 256 + "01"),
    (1.5, "83463FF8000000000000"),
    (-0.1, "8346BFB999999999999A"),
    (Atom("pong"), "837704706F6E67"),
    (Atom("a@127.0.0.1"), "83770B61403132372E302E302E31"),
    (Atom("é"), "837702C3A9"),
    (Atom("你"), "837703E4BDA0"),
    ("hello", "836D0000000568656C6C6F"),
    ("", "836D00000000"),
    (b"\xff\x00", "836D00000002FF00"),
    ((), "836800"),
    ((Atom("ok"), 1), "83680277026F6B6101"),
    ([], "836A"),
    ([1, 2, 3], "836B0003010203"),
    ([1000, 2], "836C0000000262000003E861026A"),
    (ImproperList([Atom("a")], Atom("b")), "836C00000001770161770162"),
    ({Atom("a"): 1, Atom("b"): [Atom("c")]}, "83740000000277016161017701626C000000017701636A"),
    ((["x"], {}), "8368026C000000016D00000001786A7400000000"),
    (True, "83770474727565"),
    (False, "83770566616C7365"),
    (None, "8377036E696C"),
]


@pytest.mark.parametrize("term,hexed", ERLANG_BYTES, ids=lambda v: repr(v)[:40])
def test_encode_matches_erlang_bytes(term, hexed):
    assert encode(term).hex().upper() == hexed
    assert same(decode(bytes.fromhex(hexed)), term)


def test_large_tuple_bytes():
    t = tuple(range(1, 301))
    b = encode(t)
    assert b[:6] == bytes.fromhex("83690000012C")
    assert b[6:8] == bytes.fromhex("6101")
    assert b[-5:] == bytes.fromhex("620000012C")
    assert decode(b) == t


def test_pid_ref_port_bytes():
    node = bytes.fromhex("770B61403132372E302E302E31")
    assert encode(PID) == b"\x83\x58" + node + struct.pack(">III", 12, 0, 3)
    assert encode(REF) == b"\x83\x5a\x00\x03" + node + struct.pack(">IIII", 3, *REF.ids)
    assert encode(PORT) == b"\x83\x59" + node + struct.pack(">II", 5, 3)
    big_port = Port(Atom("a@127.0.0.1"), 2**40, 3)
    assert encode(big_port) == b"\x83\x78" + node + struct.pack(">QI", 2**40, 3)
    for t in (PID, REF, PORT, big_port):
        assert same(roundtrip(t), t)


def test_body_functions_skip_version_byte():
    assert encode_body((1, 2)) == encode((1, 2))[1:]
    assert decode_body(b"xx" + encode_body([1, Atom("a")]), 2) == ([1, Atom("a")], 2 + len(encode_body([1, Atom("a")])))


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "term",
    [
        0, 1, 255, 256, -1, -256, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**64, -(2**64),
        2**2039, 2**2040, -(2**9000), 10**100,
        0.0, -0.0, 1.5, -1e300, 5e-324, 1.7976931348623157e308,
        Atom("a"), Atom(""), Atom("Elixir.Foo"), Atom("é" * 255), Atom("ü" * 200),
        "", "hello", "héllo wörld ✓", "\x00",
        b"\xff", b"\x80abc", bytearray(b"\xfe"),
        (), (1,), (Atom("ok"), "x"), tuple(range(300)),
        [], [1], [True, False, None], [1000], list(range(256)), [0] * 70000, [[[]]],
        {}, {Atom("a"): 1}, {"k": [1, 2], 3: {4: 5}}, {(1, 2): Atom("t")},
        True, False, None,
        PID, REF, PORT,
        Reference("n@h", 0, (1,)), Reference("n@h", 2**32 - 1, (1, 2, 3, 4, 5)),
        ImproperList([Atom("alias")], REF), ImproperList([1, 2], 3),
        Opaque("export", bytes.fromhex("71770665726C616E67770361627361 01".replace(" ", ""))),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_roundtrip(term):
    got = roundtrip(term)
    if isinstance(term, bytearray):
        assert same(got, bytes(term))
    else:
        assert same(got, term), (got, term)


def test_binary_decodes_to_str_when_utf8():
    assert same(roundtrip(b"abc"), "abc")
    assert same(roundtrip("abc".encode()), "abc")
    assert same(roundtrip(b"\xc3\x28"), b"\xc3\x28")  # invalid UTF-8 stays bytes
    assert same(roundtrip(memoryview(b"\xff\x01")), b"\xff\x01")


def test_atom_is_a_str():
    a = Atom("pong")
    assert a == "pong" and isinstance(a, str) and hash(a) == hash("pong")
    assert repr(a) == "Atom('pong')"
    assert str(a) == "pong"
    assert type(roundtrip(a)) is Atom
    assert type(roundtrip("pong")) is str


def test_special_atoms():
    assert decode(encode(Atom("true"))) is True
    assert decode(encode(Atom("false"))) is False
    assert decode(encode(Atom("nil"))) is None
    assert encode(True) == encode(Atom("true"))
    assert encode(None) == encode(Atom("nil"))


def test_bool_is_not_int():
    assert encode(True) != encode(1)
    assert same(roundtrip([True, 1, 0, False]), [True, 1, 0, False])
    assert encode([1, True])[1] == 108  # not STRING_EXT


def test_subclasses_encode_as_their_base():
    import collections
    import enum

    class Color(enum.IntEnum):
        RED = 1

    Point = collections.namedtuple("Point", "x y")
    assert encode(Point(1, 2)) == encode((1, 2))
    assert encode(Color.RED) == encode(1)
    assert encode(collections.OrderedDict(a=1)) == encode({"a": 1})


def test_reprs():
    assert repr(PID) == "#PID<a@127.0.0.1.12.0>"
    assert repr(REF) == "#Reference<a@127.0.0.1.3221936995.2515271681.196800>"
    assert repr(PORT) == "#Port<a@127.0.0.1.5>"
    assert repr(ImproperList([Atom("alias")], 1)) == "ImproperList([Atom('alias')], 1)"
    assert repr(ListKey([1, 2])) == "ListKey([1, 2])"
    assert repr(Opaque("export", b"q")) == "Opaque('export', b'q')"


def test_node_names_become_atoms():
    p = Pid("a@h", 1, 2, 3)
    assert type(p.node) is Atom
    r = Reference("a@h", 1, [1, 2])
    assert r.ids == (1, 2) and type(r.node) is Atom
    assert hash(p) == hash(Pid(Atom("a@h"), 1, 2, 3))


def test_improper_list():
    il = ImproperList([Atom("alias")], REF)
    assert il == ImproperList((Atom("alias"),), REF)
    assert il != [Atom("alias"), REF]
    assert hash(il) == hash(ImproperList([Atom("alias")], REF))
    assert ImproperList([1], ImproperList([2], 3)) == ImproperList([1, 2], 3)
    with pytest.raises(ValueError):
        ImproperList([], 1)
    with pytest.raises(ValueError):
        ImproperList([1], [2])


def test_list_tails_are_normalised_like_erlang():
    # [1 | [2]] written as two LIST_EXT is the proper list [1, 2]
    assert decode(bytes([131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106])) == [1, 2]
    # [1 | "ab"] (tail is a STRING_EXT)
    assert decode(bytes([131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 2, 97, 98])) == [1, 97, 98]
    # a LIST_EXT with no elements is just its tail
    assert decode(bytes([131, 108, 0, 0, 0, 0, 97, 1])) == 1
    # [1 | [2 | x]]
    assert decode(bytes([131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 119, 1, 120])) == ImproperList(
        [1, 2], Atom("x"))


def test_string_ext_decodes_to_ints():
    assert same(decode(bytes.fromhex("836B0003616263")), [97, 98, 99])


def test_opaque():
    export = bytes.fromhex("8371640006" + b"erlang".hex() + "640003" + b"abs".hex() + "6101")
    o = decode(export)
    assert type(o) is Opaque and o.kind == "export"
    assert o.raw == export[1:]
    assert encode(o) == export
    assert o == Opaque("export", export[1:]) and hash(o) == hash(Opaque("export", export[1:]))
    with pytest.raises(ValueError):
        Opaque("nope", b"")


def test_bit_binary():
    # <<1:3>>
    o = decode(bytes([131, 77, 0, 0, 0, 1, 3, 32]))
    assert o == Opaque("bitstring", bytes([77, 0, 0, 0, 1, 3, 32]))
    assert encode(o) == bytes([131, 77, 0, 0, 0, 1, 3, 32])
    # unused low bits are ignored, like Erlang does
    assert decode(bytes([131, 77, 0, 0, 0, 1, 3, 33])) == o
    # a whole number of bytes is a binary, an empty one is <<>>
    assert decode(bytes([131, 77, 0, 0, 0, 1, 8, 65])) == "A"
    assert decode(bytes([131, 77, 0, 0, 0, 0, 0])) == ""
    for bad in ([131, 77, 0, 0, 0, 0, 8], [131, 77, 0, 0, 0, 1, 0, 65], [131, 77, 0, 0, 0, 1, 9, 65]):
        with pytest.raises(ETFError):
            decode(bytes(bad))


def test_old_formats():
    # ATOM_EXT and SMALL_ATOM_EXT are latin-1
    assert same(decode(bytes([131, 100, 0, 1, 0xE9])), Atom("é"))
    assert same(decode(bytes([131, 115, 2, 111, 107])), Atom("ok"))
    assert decode(bytes([131, 100, 0, 4]) + b"true") is True
    # FLOAT_EXT: "%.20e" text padded to 31 bytes
    text = b"1.50000000000000000000e+00"
    assert decode(bytes([131, 99]) + text + b"\0" * (31 - len(text))) == 1.5
    node = bytes([100, 0, 3]) + b"a@h"
    assert decode(bytes([131, 103]) + node + struct.pack(">IIB", 1, 2, 3)) == Pid("a@h", 1, 2, 3)
    assert decode(bytes([131, 114, 0, 2]) + node + struct.pack(">BII", 3, 7, 8)) == Reference("a@h", 3, (7, 8))
    assert decode(bytes([131, 101]) + node + struct.pack(">IB", 7, 1)) == Reference("a@h", 1, (7,))
    assert decode(bytes([131, 102]) + node + struct.pack(">IB", 7, 1)) == Port("a@h", 7, 1)
    # node names that happen to be true/false/nil stay atoms inside pids
    assert decode(bytes([131, 88, 119, 4]) + b"true" + bytes(12)).node == Atom("true")


def test_big_sign_like_erlang():
    assert decode(bytes([131, 110, 1, 2, 5])) == -5  # any non-zero sign is negative
    assert decode(bytes([131, 110, 0, 0])) == 0
    assert decode(bytes([131, 110, 2, 0, 5, 0])) == 5  # not normalised, still fine


# --------------------------------------------------------------------------- map keys


def test_list_and_map_keys_get_stand_ins():
    # #{[1,2] => a, {1,2} => b}
    data = bytes([131, 116, 0, 0, 0, 2,
                  108, 0, 0, 0, 2, 97, 1, 97, 2, 106, 119, 1, 97,
                  104, 2, 97, 1, 97, 2, 119, 1, 98])
    m = decode(data)
    assert len(m) == 2
    assert m[ListKey([1, 2])] == "a" and m[(1, 2)] == "b"
    assert m[freeze([1, 2])] == "a"
    assert same(decode(encode(m)), m)
    assert encode(m)[6] == 107  # the ListKey goes back as a list ("\x01\x02" as STRING_EXT, as Erlang writes it)
    # #{#{a => [1]} => x, {[2]} => y}
    m2 = {MapKey({Atom("a"): [1]}): Atom("x"), (ListKey([2]),): Atom("y")}
    got = roundtrip(m2)
    assert got == m2
    assert got[freeze({Atom("a"): [1]})] == "x"
    assert got[freeze(([2],))] == "y"


def test_listkey_semantics():
    k = ListKey([1, [2, 3]])
    assert k == [1, [2, 3]] and [1, [2, 3]] == k
    assert k != (1, (2, 3)) and k != (1, [2, 3])
    assert hash(k) == hash(ListKey([1, ListKey([2, 3])]))
    assert list(k) == [1, ListKey([2, 3])] and len(k) == 2 and k[0] == 1
    assert MapKey({"a": [1]}) == {"a": [1]}
    assert MapKey({"a": [1]}) == MapKey({"a": ListKey([1])})
    assert hash(MapKey({"a": 1, "b": 2})) == hash(MapKey({"b": 2, "a": 1}))
    assert freeze(ImproperList([[1]], 2)) == ImproperList([ListKey([1])], 2)
    hash(freeze(ImproperList([[1]], 2)))


def test_keys_equal_in_python_but_not_in_erlang_are_kept():
    # #{a => 1, <<"a">> => 2}
    data = bytes([131, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 109, 0, 0, 0, 1, 97, 97, 2])
    m = decode(data)
    assert m == {ExactKey(Atom("a")): 1, ExactKey("a"): 2}
    assert encode(m) == data
    # #{1 => x, 1.0 => y, true => z}
    m = decode(encode_pairs([(1, "x"), (1.0, "y"), (True, "z"), (2, "w")]))
    assert len(m) == 4 and m[2] == "w"
    assert m[ExactKey(1)] == "x" and m[ExactKey(1.0)] == "y" and m[ExactKey(True)] == "z"


def encode_pairs(pairs):
    body = b"".join(encode_body(k) + encode_body(v) for k, v in pairs)
    return b"\x83t" + struct.pack(">I", len(pairs)) + body


def test_duplicate_map_keys_rejected():
    with pytest.raises(ETFError, match="twice"):
        decode(encode_pairs([(1, 1), (1, 2)]))


# --------------------------------------------------------------------------- encoding errors


@pytest.mark.parametrize(
    "value,word",
    [
        ({1, 2}, "set"),
        (object(), "object"),
        (float("nan"), "NaN"),
        (float("inf"), "infinity"),
        (-math.inf, "infinity"),
        ([1, {2}], "set"),
        ({"k": frozenset()}, "frozenset"),
        (Atom("x" * 256), "255"),
        ("\ud800", "UTF-8"),
        (Pid("a@h", -1, 0, 0), "2\\*\\*32"),
        (Pid("a@h", 2**32, 0, 0), "2\\*\\*32"),
        (Reference("a@h", 0, (2**32,)), "2\\*\\*32"),
        (1j, "complex"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_unencodable(value, word):
    with pytest.raises(ETFError, match=word):
        encode(value)


def test_self_containing_or_deep_values_do_not_recurse_forever():
    a = []
    a.append(a)
    with pytest.raises(ETFError, match="nested too deeply"):
        encode(a)
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ETFError, match="nested too deeply"):
        encode(deep)


# --------------------------------------------------------------------------- framing


def test_decode_from_back_to_back():
    control = (2, Atom(""), PID)
    payload = {"msg": [1, 2, 3]}
    data = encode(control) + encode(payload)
    t1, off = decode_from(data)
    assert t1 == control and off == len(encode(control))
    t2, off2 = decode_from(data, off)
    assert t2 == payload and off2 == len(data)
    assert decode_from(bytearray(data), off)[0] == payload
    assert decode_from(memoryview(data), off)[0] == payload


def test_trailing_bytes_and_bad_version():
    with pytest.raises(ETFError, match="trailing bytes at offset 3"):
        decode(encode(1) + b"\x00")
    with pytest.raises(ETFError, match="version byte"):
        decode(b"\x82a\x01")
    with pytest.raises(ETFError):
        decode(b"")
    with pytest.raises(ETFError):
        decode_from(encode(1), 5)


def test_compressed():
    term = [Atom("hello")] * 500
    body = encode_body(term)
    data = b"\x83P" + struct.pack(">I", len(body)) + zlib.compress(body)
    assert decode(data) == term
    # back to back with another term
    t, off = decode_from(data + encode(7))
    assert t == term and decode_from(data + encode(7), off)[0] == 7
    # wrong announced size, and trailing bytes inside the compressed data
    for bad in (
        b"\x83P" + struct.pack(">I", len(body) + 1) + zlib.compress(body),
        b"\x83P" + struct.pack(">I", len(body) - 1) + zlib.compress(body),
        b"\x83P" + struct.pack(">I", len(body) + 1) + zlib.compress(body + b"\x00"),
        b"\x83P" + struct.pack(">I", 0) + zlib.compress(body),
        b"\x83P" + struct.pack(">I", len(body)) + zlib.compress(body)[:-3],
        b"\x83P" + struct.pack(">I", len(body)) + b"not zlib at all, sorry",
    ):
        with pytest.raises(ETFError):
            decode(bad)
    # compression only right after the version byte
    with pytest.raises(ETFError, match="compress"):
        decode(b"\x83h\x01P" + data[2:])


def test_zip_bomb_rejected():
    bomb = zlib.compress(b"\x00" * 50_000_000, 9)  # ~50 KB that inflates to 50 MB
    started = time.monotonic()
    # a small announced size: inflation stops there, whatever the stream holds
    with pytest.raises(ETFError):
        decode(b"\x83P" + struct.pack(">I", 1000) + bomb)
    # announcing 4 GB from a few bytes is refused before inflating anything
    with pytest.raises(ETFError, match="more than"):
        decode(b"\x83P" + struct.pack(">I", 2**32 - 1) + bomb[:100])
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- malformed input

VALID = [
    encode(x)
    for x in [
        1, 300, -5, 2**70, 2**3000, 1.5, Atom("pong"), Atom("é" * 100), "hello", b"\xff\xfe",
        (1, 2), tuple(range(260)), [1, 2], [1000, Atom("x")], {Atom("a"): [1]}, PID, REF, PORT,
        Port("n@h", 2**40, 1), ImproperList([Atom("alias")], REF), {(1, ListKey([2])): MapKey({1: 2})},
        [[[[1]]]], {ExactKey(Atom("a")): 1, ExactKey("a"): 2},
    ]
] + [
    bytes.fromhex("8371770665726C616E6777036162736101"),  # fun erlang:abs/1
    bytes([131, 77, 0, 0, 0, 2, 3, 1, 32]),  # <<1, 1:3>>
    bytes([131, 103, 100, 0, 3]) + b"a@h" + struct.pack(">IIB", 1, 2, 3),
]


@pytest.mark.parametrize("data", VALID, ids=lambda b: b[:12].hex())
def test_every_truncation_is_an_etferror(data):
    decode(data)  # the whole thing is fine
    for n in range(len(data)):
        with pytest.raises(ETFError):
            decode(data[:n])


def test_truncation_message_says_what_and_where():
    with pytest.raises(ETFError, match=r"truncated LIST_EXT at offset 3: 3 elements announced"):
        decode(b"\x83h\x01l\x00\x00\x00\x03a\x01")
    with pytest.raises(ETFError, match=r"truncated BINARY_EXT at offset 1"):
        decode(b"\x83m\x00\x00\x00\x05ab")


@pytest.mark.parametrize(
    "data",
    [
        b"\x83l\xff\xff\xff\xffa\x01a\x02j",  # LIST_EXT of 4 billion elements
        b"\x83i\xff\xff\xff\xffa\x01",  # LARGE_TUPLE_EXT
        b"\x83t\xff\xff\xff\xffa\x01a\x01",  # MAP_EXT
        b"\x83m\xff\xff\xff\xffabc",  # BINARY_EXT
        b"\x83o\xff\xff\xff\xff\x00\x01",  # LARGE_BIG_EXT
        b"\x83k\xff\xffab",  # STRING_EXT
        b"\x83Z\xff\xffw\x01a\x00\x00\x00\x00",  # NEWER_REFERENCE_EXT
        b"\x83v\xff\xffabc",  # ATOM_UTF8_EXT
        b"\x83p\xff\xff\xff\xff\x01",  # NEW_FUN_EXT
        b"\x83M\xff\xff\xff\xff\x03a",  # BIT_BINARY_EXT
        b"\x83u\xff\xff\xff\xffX",  # FUN_EXT
    ],
    ids=lambda b: b[:3].hex(),
)
def test_huge_announced_lengths_fail_fast(data):
    started = time.monotonic()
    with pytest.raises(ETFError, match="announced|at most"):
        decode(data)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    "data,word",
    [
        (b"\x83\x00", "unknown tag 0"),
        (b"\x83R\x01", "ATOM_CACHE_REF"),
        (b"\x83y\x01", "LOCAL_EXT"),
        (b"\x83\x83a\x01", "version byte"),
        (b"\x83F\x7f\xf8\x00\x00\x00\x00\x00\x00", "NaN"),
        (b"\x83F\x7f\xf0\x00\x00\x00\x00\x00\x00", "infinity"),
        (b"\x83c" + b"abc".ljust(31, b"\0"), "not a float"),
        (b"\x83v\x00\x02\xc3\x28", "UTF-8"),
        (b"\x83v\x01\x00" + b"a" * 256, "255"),
        (b"\x83Xa\x01" + bytes(12), "expected an atom"),
        (b"\x83q\x77\x01a\x77\x01b\x62\x00\x00\x00\x01", "arity"),
    ],
)
def test_malformed_messages(data, word):
    with pytest.raises(ETFError, match=word):
        decode(data)


def test_deep_nesting_is_an_etferror_not_recursionerror():
    for data in (
        b"\x83" + b"h\x01" * 100_000 + b"j",
        b"\x83" + b"l\x00\x00\x00\x01" * 100_000 + b"j" * 100_001,
        b"\x83" + b"t\x00\x00\x00\x01a\x01" * 100_000 + b"j",
    ):
        with pytest.raises(ETFError, match="nested too deeply"):
            decode(data)
    ok = b"\x83" + b"h\x01" * (MAX_DEPTH - 1) + b"j"
    term = decode(ok)
    assert encode(term) == ok


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_else(data):
    for candidate in (data, b"\x83" + data):
        try:
            decode(candidate)
        except ETFError:
            pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_terms_never_raise_anything_else(valid, data):
    b = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(1, len(b) - 1)) if len(b) > 1 else 0
        b[i] = data.draw(st.integers(0, 255))
    try:
        decode(bytes(b))
    except ETFError:
        pass


# --------------------------------------------------------------------------- property round trip

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
atoms = _text.filter(lambda s: len(s) <= 255 and s not in ("true", "false", "nil")).map(Atom)
node_atoms = st.sampled_from(["a@127.0.0.1", "b@localhost", "nonode@nohost"]).map(Atom)
u32 = st.integers(0, 2**32 - 1)
non_utf8 = st.binary(max_size=12).map(lambda b: b"\xff" + b)
scalars = st.one_of(
    atoms,
    st.booleans(),
    st.none(),
    _text,
    non_utf8,
    st.integers(),
    # big integers up to ~2100 bits, so that LARGE_BIG_EXT (over 255 bytes) shows up
    st.tuples(st.integers(0, 2100), st.integers(), st.booleans()).map(
        lambda t: (-1 if t[2] else 1) * ((1 << t[0]) + t[1])),
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(Pid, node_atoms, u32, u32, u32),
    st.builds(Reference, node_atoms, u32, st.lists(u32, min_size=1, max_size=5).map(tuple)),
    st.builds(Port, node_atoms, st.integers(0, 2**64 - 1), u32),
)
hashable_keys = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3).map(tuple), max_leaves=6)
terms = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(hashable_keys, inner, max_size=4),
        st.builds(ImproperList, st.lists(inner, min_size=1, max_size=3),
                  inner.filter(lambda t: not isinstance(t, list))),
    ),
    max_leaves=25,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(terms)
def test_property_roundtrip(term):
    data = encode(term)
    got = decode(data)
    assert same(got, term), (got, term)
    assert encode(got) == data
    t, off = decode_from(data + data, len(data))
    assert same(t, term) and off == 2 * len(data)


@settings(max_examples=100)
@given(terms)
def test_property_compressed_roundtrip(term):
    body = encode_body(term)
    assert same(decode(b"\x83P" + struct.pack(">I", len(body)) + zlib.compress(body)), term)


# --------------------------------------------------------------------------- atom_text

ATOM_TEXT = [
    ("a@127.0.0.1", "'a@127.0.0.1'"),
    ("a@localhost", "a@localhost"),
    ("Foo", "'Foo'"),
    ("ok", "ok"),
    ("hello_World9@x", "hello_World9@x"),
    ("", "''"),
    ("_a", "'_a'"),
    ("9a", "'9a'"),
    ("end", "'end'"),
    ("and", "'and'"),
    ("receive", "'receive'"),
    ("maybe", "maybe"),  # reserved only with the maybe_expr feature (off in OTP 25)
    ("it's", "'it\\'s'"),
    ("a\\b", "'a\\\\b'"),
    ("a b", "'a b'"),
    ("Elixir.Foo", "'Elixir.Foo'"),
    ("é", "é"),
    ("aÀ", "aÀ"),
    ("a×", "'a×'"),
    ("你", "'你'"),
    ("\x80a", "'\\200a'"),
    ("a\n\t\x1b\x7f\x00", "'a\\n\\t\\e\\d\\000'"),
]


@pytest.mark.parametrize("name,text", ATOM_TEXT)
def test_atom_text(name, text):
    assert atom_text(name) == text
    assert atom_text(Atom(name)) == text


# --------------------------------------------------------------------------- live Erlang

HAVE_ESCRIPT = shutil.which("escript") is not None


def run_erlang(tmp_path, body: str) -> list[str]:
    if not HAVE_ESCRIPT:
        pytest.skip("escript not found")
    script = tmp_path / "etf_check.escript"
    script.write_text("#!/usr/bin/env escript\n%%! -noshell\n-mode(compile).\n" + body, encoding="utf-8")
    r = subprocess.run(["escript", str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def erl_hex(b: bytes) -> str:
    return f'binary:decode_hex(<<"{b.hex()}">>)'


# (Erlang expression, the same term in Python)
LIVE_CASES = [
    ("0", 0), ("255", 255), ("256", 256), ("-1", -1), ("2147483648", 2147483648),
    ("-2147483649", -2147483649), ("1 bsl 64", 2**64), ("-(1 bsl 2100)", -(2**2100)),
    ("1.5", 1.5), ("-0.1", -0.1), ("1.0e300", 1e300),
    ("pong", Atom("pong")), ("'a@127.0.0.1'", Atom("a@127.0.0.1")),
    ("list_to_atom([233, 20320])", Atom("é你")), ("''", Atom("")),
    ("<<\"hello\">>", "hello"), ("<<>>", ""), ("<<255, 0>>", b"\xff\x00"),
    ("unicode:characters_to_binary([233, 20320])", "é你"),
    ("{}", ()), ("{ok, 1}", (Atom("ok"), 1)), ("list_to_tuple(lists:seq(1, 300))", tuple(range(1, 301))),
    ("[]", []), ("[1, 2, 3]", [1, 2, 3]), ("[1000, 2]", [1000, 2]), ("lists:seq(1, 70000)", list(range(1, 70001))),
    ("lists:duplicate(70000, 1)", [1] * 70000),
    ("[a | b]", ImproperList([Atom("a")], Atom("b"))),
    ("#{a => 1, b => [c]}", {Atom("a"): 1, Atom("b"): [Atom("c")]}),
    ("#{[1, 2] => a, {1, 2} => b}", {(1, 2): Atom("b"), ListKey([1, 2]): Atom("a")}),
    ("#{1 => x, 1.0 => y}", {ExactKey(1): Atom("x"), ExactKey(1.0): Atom("y")}),
    ("{true, false, nil}", (True, False, None)),
    ("[{<<\"k\">>, #{}}]", [("k", {})]),
]


@requires_erlang
def test_live_encode_matches_term_to_binary(tmp_path):
    lines = []
    for i, (expr, value) in enumerate(LIVE_CASES):
        lines.append(
            f"    T{i} = ({expr}),\n"
            f"    io:format(\"~b ~s ~w~n\", [{i}, binary:encode_hex(term_to_binary(T{i}, [{{minor_version, 2}}])), "
            f"binary_to_term({erl_hex(encode(value))}) =:= T{i}]),\n"
        )
    out = run_erlang(tmp_path, "main(_) ->\n" + "".join(lines) + "    ok.\n")
    assert len(out) == len(LIVE_CASES), out
    for line, (expr, value) in zip(out, LIVE_CASES):
        _, hexed, accepted = line.split()
        assert accepted == "true", f"Erlang reads our encoding of {expr} as something else"
        erl_bytes = bytes.fromhex(hexed)
        assert same(decode(erl_bytes), value) or decode(erl_bytes) == value, expr
        if not isinstance(value, dict) or len(value) < 2:  # map key order is Erlang's own
            assert encode(value) == erl_bytes, expr


@requires_erlang
def test_live_decode_erlang_only_terms(tmp_path):
    body = r"""
main(_) ->
    Y = 42,
    Fun = fun(X) -> X + Y end,
    Ref = make_ref(),
    Port = hd(erlang:ports()),
    Cases = [
        {pid, self(), pid_to_list(self())},
        {ref, Ref, ref_to_list(Ref)},
        {port, Port, port_to_list(Port)},
        {fun_, Fun, ""},
        {export, fun lists:reverse/1, ""},
        {bits, <<1:3>>, ""},
        {bits, <<1, 2, 3:5>>, ""},
        {alias, [alias | Ref], ref_to_list(Ref)},
        {nested, {self(), [Fun, <<7:4>>], #{Fun => Port}}, ""}
    ],
    lists:foreach(fun({Kind, T, Text}) ->
        io:format("~s ~s ~s ~s~n", [Kind, binary:encode_hex(term_to_binary(T, [{minor_version, 2}])),
                                   binary:encode_hex(term_to_binary(T)), Text])
    end, Cases),
    Big = lists:duplicate(300, hello),
    io:format("compressed ~s~n", [binary:encode_hex(term_to_binary(Big, [compressed]))]),
    io:format("old ~s~n", [binary:encode_hex(term_to_binary({1.5, hello}, [{minor_version, 0}]))]).
"""
    out = run_erlang(tmp_path, body)
    seen = set()
    for line in out:
        parts = line.split()
        kind = parts[0]
        seen.add(kind)
        if kind == "compressed":
            data = bytes.fromhex(parts[1])
            assert data[1] == 80
            assert decode(data) == [Atom("hello")] * 300
            continue
        if kind == "old":
            data = bytes.fromhex(parts[1])
            assert data[1:4] == b"h\x02c"  # FLOAT_EXT inside
            assert same(decode(data), (1.5, Atom("hello")))
            continue
        v2, v1 = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        text = parts[3] if len(parts) > 3 else ""
        term = decode(v2)
        assert encode(term) == v2, kind  # Erlang-made bytes survive a round trip exactly
        t1 = decode(v1)  # default minor version: latin-1 ATOM_EXT atoms
        if kind in ("pid", "ref", "port", "alias", "bits"):
            assert t1 == term
        if kind == "pid":
            assert type(term) is Pid and term.node == "nonode@nohost"
            assert text == f"<0.{term.id}.{term.serial}>"
        elif kind == "ref":
            assert type(term) is Reference and term.node == "nonode@nohost"
            assert text == "#Ref<0." + ".".join(map(str, reversed(term.ids))) + ">"
            assert repr(term) == "#Reference<nonode@nohost." + text[7:-1] + ">"
        elif kind == "port":
            assert type(term) is Port and text == f"#Port<0.{term.id}>"
        elif kind == "fun_":
            assert type(term) is Opaque and term.kind == "fun"
        elif kind == "export":
            assert term == Opaque("export", v2[1:])
        elif kind == "bits":
            assert type(term) is Opaque and term.kind == "bitstring"
        elif kind == "alias":
            assert type(term) is ImproperList and term.items == (Atom("alias"),)
            assert type(term.tail) is Reference
        elif kind == "nested":
            pid, (fun, bits), m = term
            assert type(pid) is Pid and fun.kind == "fun" and bits.kind == "bitstring"
            assert list(m) == [fun] and type(m[fun]) is Port
    assert seen == {"pid", "ref", "port", "fun_", "export", "bits", "alias", "nested", "compressed", "old"}


@requires_erlang
def test_live_atom_text(tmp_path):
    names = [n for n, _ in ATOM_TEXT] + ["after", "bnot", "else", "cond", "let", "ÿ", "ß", "a÷", "Þx", "a\x9f",
                                         "Ω", "hello world", "a.b", "a-b", "x'y"]
    lists = ", ".join("[" + ",".join(str(ord(c)) for c in n) + "]" for n in names)
    body = (
        "main(_) ->\n"
        f"    [io:format(\"~w~n\", [lists:flatten(io_lib:write_atom(list_to_atom(L)))]) || L <- [{lists}]].\n"
    )
    out = run_erlang(tmp_path, body)
    assert len(out) == len(names)
    for name, line in zip(names, out):
        expected = "".join(map(chr, eval(line)))  # a list of code points
        assert atom_text(name) == expected, name
