"""The codec misses issue 13 lists, each checked against real Erlang where it can be.

tests/erl/etf_check.escript runs binary_to_term on each input and says what
Erlang did with it, so "Erlang refuses X" is measured here, not assumed.
"""
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from clusterkit import etf
from clusterkit.etf import Atom, ETFError, Port, Reference, decode, encode

ESCRIPT = Path(__file__).parent / "erl" / "etf_check.escript"
requires_escript = pytest.mark.skipif(shutil.which("escript") is None, reason="needs escript (Erlang/OTP)")


def erlang_says(*inputs: bytes) -> list:
    """For each input: None if Erlang's binary_to_term refuses it, else term_to_binary of it."""
    out = subprocess.run(["escript", str(ESCRIPT), *(b.hex() for b in inputs)],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split("\n")
    return [None if line == "badarg" else bytes.fromhex(line.split()[1]) for line in out[:len(inputs)]]


def float_ext(text: bytes) -> bytes:
    return b"\x83c" + text.ljust(31, b"\0")


# --------------------------------------------------------------------------- ports

def port_v4(port_id):
    return b"\x83x\x77\x03a@b" + struct.pack(">QI", port_id, 1)


@pytest.mark.parametrize("port_id, tag", [(2**28 - 1, 89), (2**28, 120), (2**32 - 1, 120), (2**40, 120)])
def test_port_ids_from_2_pow_28_go_as_v4_port_ext(port_id, tag):
    b = encode(Port("a@b", port_id, 1))
    assert b[1] == tag
    assert decode(b) == Port("a@b", port_id, 1)


@requires_escript
def test_port_encoding_matches_otp():
    ids = [0, 2**28 - 1, 2**28, 2**32 - 1, 2**40]
    for port_id, theirs in zip(ids, erlang_says(*map(port_v4, ids))):
        assert theirs is not None
        assert theirs[1] == encode(Port("a@b", port_id, 1))[1], port_id   # same tag
        assert decode(theirs) == Port("a@b", port_id, 1)


# --------------------------------------------------------------------------- FLOAT_EXT

GOOD_FLOATS = {b"1.5": 1.5, b"+1.5": 1.5, b"-1.5e3": -1500.0, b"1,5": 1.5, b"1.5E3": 1500.0,
               b"1.5e+03": 1500.0, b"00001.5": 1.5, b"1.0e-400": 0.0,
               b"1.50000000000000000000e+00": 1.5}
BAD_FLOATS = [b" 1.5", b"1_5.0", b"15", b"1.5e", b"1.", b".5", b"1.5 ", b"0x1.0p3", b"inf",
              b"nan", b"1.0e999", b"", b"-", b"1.5e+", b"\xff1.5"]


@pytest.mark.parametrize("text", BAD_FLOATS)
def test_float_ext_text_erlang_refuses_is_refused(text):
    with pytest.raises(ETFError, match="FLOAT_EXT"):
        decode(float_ext(text))


@pytest.mark.parametrize("text, value", GOOD_FLOATS.items())
def test_float_ext_text_erlang_accepts_is_accepted(text, value):
    assert decode(float_ext(text)) == value


def test_float_ext_needs_a_nul_in_its_31_bytes():
    # Without one, Erlang reads past the term and the answer depends on memory
    # (we saw both ok and badarg): refuse it.
    with pytest.raises(ETFError, match="no NUL"):
        decode(b"\x83c" + b"1.5".ljust(31, b"0"))
    assert decode(b"\x83c" + b"1.5\0junk".ljust(31, b"\0")) == 1.5


@requires_escript
def test_float_ext_agrees_with_erlang():
    cases = [*GOOD_FLOATS, *BAD_FLOATS, b"1.5\0junk"]
    inputs = [float_ext(t) for t in cases]
    for text, data, theirs in zip(cases, inputs, erlang_says(*inputs)):
        try:
            ours = decode(data)
        except ETFError:
            ours = None
        if theirs is None:
            assert ours is None, f"Erlang refuses {text!r}, we decoded {ours!r}"
        else:
            assert ours == decode(theirs), text


# --------------------------------------------------------------------------- references

def newer_ref(n):
    return b"\x83Z" + struct.pack(">H", n) + b"\x77\x03a@b" + struct.pack(">I", 1) + b"\0\0\0\1" * n


def new_ref(n):
    return b"\x83r" + struct.pack(">H", n) + b"\x77\x03a@b\x01" + b"\0\0\0\1" * n


@pytest.mark.parametrize("n", range(6))
def test_references_of_up_to_5_words(n):
    assert decode(newer_ref(n)) == Reference("a@b", 1, (1,) * n)
    assert decode(new_ref(n)).ids == (1,) * n


@pytest.mark.parametrize("make", [newer_ref, new_ref])
def test_references_of_more_than_5_words_are_refused(make):
    with pytest.raises(ETFError, match="6 id words, Erlang accepts at most 5"):
        decode(make(6))
    with pytest.raises(ETFError, match="cannot encode a reference of 6 id words"):
        encode(Reference("a@b", 1, (1,) * 6))


@requires_escript
def test_reference_limit_agrees_with_erlang():
    said = erlang_says(*(newer_ref(n) for n in range(8)))
    assert [s is not None for s in said] == [n <= 5 for n in range(8)]


# --------------------------------------------------------------------------- compressed terms

def compressed(term_body: bytes, announce=None, level=6) -> bytes:
    size = len(term_body) if announce is None else announce
    return b"\x83P" + struct.pack(">I", size) + zlib.compress(term_body, level)


def test_compressed_round_trip_in_several_chunks():
    value = [b"\xff" * 1000] * 2000             # 2 MB inflated, several chunks
    body = encode(value)[1:]
    assert decode(compressed(body)) == value


def test_honest_huge_announcement_is_refused_before_inflating():
    # the case: a small stream that honestly inflates to 400 MiB
    size = 400 * 1024 * 1024
    body_head = b"m" + struct.pack(">I", size - 5)
    stream = zlib.compressobj(9)
    raw = stream.compress(body_head)
    chunk = bytes(1024 * 1024)
    for _ in range(400):
        raw += stream.compress(chunk)
    raw += stream.flush()
    data = b"\x83P" + struct.pack(">I", size) + raw
    with pytest.raises(ETFError, match=f"announces {size} bytes, more than the {etf.DEFAULT_MAX_INFLATED}"):
        decode(data)


def test_the_cap_is_settable():
    body = encode(b"\xff" * 100_000)[1:]
    data = compressed(body)
    assert decode(data, max_inflated=len(body)) == b"\xff" * 100_000
    with pytest.raises(ETFError, match="more than the 1000 this decoder accepts"):
        decode(data, max_inflated=1000)
    with pytest.raises(ETFError, match="more than the 1000"):
        etf.decode_from(data, 0, max_inflated=1000)


def test_the_first_bytes_are_checked_before_the_rest_is_inflated():
    # 50 MB of zeros: tag 0 is no term, refused after the first chunk
    with pytest.raises(ETFError, match="start with unknown tag 0, not a term"):
        decode(compressed(bytes(50_000_000), level=9))
    # a binary that announces more than the whole inflated size
    body = b"m" + struct.pack(">I", 2**31) + bytes(50_000_000)
    with pytest.raises(ETFError, match="announces 2147483648 elements"):
        decode(compressed(body, level=9))


def test_a_stream_holding_more_or_less_than_announced():
    body = encode([7] * 10_000)[1:]  # STRING_EXT: its head says nothing of the size
    with pytest.raises(ETFError, match="more than the 5000 bytes announced"):
        decode(compressed(body, announce=5000))
    with pytest.raises(ETFError, match="cut short|holds"):
        decode(compressed(body)[:-8])


def test_a_connection_caps_inflation_at_its_max_frame():
    from clusterkit.dist import control
    to = etf.Pid("a@b", 1, 0, 1)
    payload = encode(b"\xfe" * 50_000)[1:]
    frame = b"p" + encode((2, Atom(""), to)) + compressed(payload)
    with pytest.raises(control.ControlError, match="more than the 1000 this decoder accepts"):
        control.decode(frame, max_inflated=1000)
    assert control.decode(frame) == control.Send(to, b"\xfe" * 50_000)


# --------------------------------------------------------------------------- deep lists, huge claims

def test_deep_nesting_is_refused_with_the_documented_limit():
    deep = b"\x83" + b"l\0\0\0\1" * (etf.MAX_DEPTH + 1) + b"j" * (etf.MAX_DEPTH + 2)
    with pytest.raises(ETFError, match=f"nested too deeply .* more than {etf.MAX_DEPTH} levels"):
        decode(deep)
    ok = b"\x83" + b"l\0\0\0\1" * (etf.MAX_DEPTH - 1) + b"j" * etf.MAX_DEPTH
    assert decode(ok) is not None
    assert "nested too deeply" in etf.__doc__ and "on purpose" in etf.__doc__


def test_a_long_chain_of_list_tails_is_not_nesting():
    n = 100_000
    chain = b"\x83" + b"l\0\0\0\1a\x07" * n + b"j"      # [7 | [7 | ... [7 | []]]]
    assert decode(chain) == [7] * n
    improper = b"\x83" + b"l\0\0\0\1a\x07" * 3 + b"a\x08"   # [7, 7, 7 | 8]
    assert decode(improper) == etf.ImproperList([7, 7, 7], 8)
    with pytest.raises(ETFError, match="truncated LIST_EXT"):
        decode(b"\x83l\0\0\0\1a\x07l\xff\xff\xff\xffa\x07j")


@requires_escript
def test_list_tail_chains_agree_with_erlang():
    chain = b"\x83" + b"l\0\0\0\1a\x07" * 5 + b"j"
    (theirs,) = erlang_says(chain)
    assert decode(theirs) == decode(chain) == [7] * 5


@pytest.mark.parametrize("data", [
    b"\x83l\xff\xff\xff\xffj\0\0\0",      # LIST_EXT of 2**32-1 elements in 10 bytes
    b"\x83i\xff\xff\xff\xff\0\0\0\0",      # LARGE_TUPLE_EXT
    b"\x83t\xff\xff\xff\xff\0\0\0\0",      # MAP_EXT
    b"\x83m\xff\xff\xff\xff\0\0\0\0",      # BINARY_EXT
    b"\x83P\xff\xff\xff\xffx\x9c\0\0",     # compressed, claiming 4 GiB
])
def test_ten_bytes_claiming_2_pow_32_fail_at_once(data):
    assert len(data) == 10
    with pytest.raises(ETFError):
        decode(data)
