"""libcluster Gossip's heartbeat: our encoder and decoder, and real Erlang's (tests/erl)."""
from __future__ import annotations

import hashlib
import os
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from clusterkit import etf
from clusterkit.cluster import gossip_wire as wire
from clusterkit.etf import Atom

from conftest import requires_erlang

ESCRIPT = os.path.join(os.path.dirname(__file__), "erl", "gossip_heartbeat.escript")
NODE = "a@127.0.0.1"


def escript(*args) -> str:
    out = subprocess.run(["escript", ESCRIPT, *args], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode().strip()


def test_plaintext_heartbeat_bytes():
    # SMALL_ATOM_UTF8_EXT (119) for both atoms: OTP 26's term_to_binary default.
    assert wire.encode(NODE) == (b"heartbeat::\x83t\x00\x00\x00\x01w\x04nodew\x0b" + NODE.encode())
    assert wire.decode(wire.encode(NODE)) == Atom(NODE)
    assert type(wire.decode(wire.encode(NODE))) is Atom


def test_otp25_atom_ext_is_accepted():
    packet = b"heartbeat::\x83t\x00\x00\x00\x01d\x00\x04noded\x00\x0b" + NODE.encode()
    assert wire.decode(packet) == NODE


def test_encrypted_heartbeat_is_libclusters_layout():
    iv = bytes(range(16))
    packet = wire.encode(NODE, "s3cret", iv=iv)
    assert packet[:16] == iv and (len(packet) - 16) % 16 == 0
    key = hashlib.sha256(b"s3cret").digest()
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(packet[16:]) + dec.finalize()
    pad = padded[-1]
    assert 1 <= pad <= 16 and padded[-pad:] == bytes([pad]) * pad
    assert padded[:-pad] == wire.encode(NODE)
    assert wire.decode(packet, "s3cret") == NODE


def test_fresh_iv_every_time():
    assert wire.encode(NODE, "k")[:16] != wire.encode(NODE, "k")[:16]


def test_a_whole_block_of_padding_when_the_heartbeat_fills_blocks():
    # prefix 11 + version 1 + map header 5 + atom node 6 + atom header 2: 25 + the name.
    name = "a@1.2.3"
    assert len(wire.plaintext(name)) == 32
    assert len(wire.encode(name, "k")) == 16 + 48
    assert wire.decode(wire.encode(name, "k"), "k") == name


@pytest.mark.parametrize("packet, reason", [
    (b"", "prefix"),
    (b"hello", "prefix"),
    (b"heartbeat::", "does not decode"),
    (b"heartbeat::\x83t\x00\x00\x00\x01w\x04node", "does not decode"),
    (b"heartbeat::" + etf.encode([1, 2]), "not a map"),
    (b"heartbeat::" + etf.encode({Atom("name"): Atom(NODE)}), "no atom under 'node'"),
    (b"heartbeat::" + etf.encode({"node": Atom(NODE)}), "no atom under 'node'"),
    (b"heartbeat::" + etf.encode({Atom("node"): NODE}), "no atom under 'node'"),
    (b"heartbeat::" + etf.encode({Atom("node"): Atom("nohost")}), "not a node name"),
    (b"heartbeat::" + etf.encode({Atom("node"): Atom(NODE)}) + b"x", "does not decode"),
    (b"heartbeat::" + b"\x83" + b"l\x00\x00\x00\x01" * 400 + b"jj", "does not decode"),
    (b"x" * 5000, "too long"),
])
def test_malformed_plaintext_is_refused_with_a_reason(packet, reason):
    with pytest.raises(wire.BadHeartbeat, match=reason):
        wire.decode(packet)


def test_other_keys_are_ignored():
    packet = b"heartbeat::" + etf.encode({Atom("node"): Atom(NODE), Atom("x"): [1, {2: 3}]})
    assert wire.decode(packet) == NODE


@pytest.mark.parametrize("packet", [b"", b"x" * 15, b"x" * 16, b"x" * 17, b"x" * 40,
                                    os.urandom(48)])
def test_encrypted_garbage_is_refused(packet):
    with pytest.raises(wire.BadHeartbeat):
        wire.decode(packet, "k")


def test_wrong_secret_and_plaintext_under_a_secret_are_refused():
    for _ in range(50):
        with pytest.raises(wire.BadHeartbeat):
            wire.decode(wire.encode(NODE, "one"), "two")
    with pytest.raises(wire.BadHeartbeat):
        wire.decode(wire.encode(NODE), "k")
    with pytest.raises(wire.BadHeartbeat, match="prefix"):
        wire.decode(wire.encode(NODE, "k"))


def test_bytes_secret_equals_its_utf8_str():
    assert wire.decode(wire.encode(NODE, "clé"), "clé".encode()) == NODE


# ------------------------------------------------------------------ against real Erlang


@requires_erlang
def test_plaintext_equals_real_term_to_binary_minor_version_2():
    assert wire.encode(NODE)[len(wire.PREFIX):].hex() == escript("plain", NODE)


@requires_erlang
@pytest.mark.parametrize("secret", ["-", "s3cret"])
@pytest.mark.parametrize("minor", ["1", "2"])
def test_we_accept_erlangs_heartbeat(secret, minor):
    packet = bytes.fromhex(escript("encode", "erl@127.0.0.1", secret, minor))
    assert wire.decode(packet, None if secret == "-" else secret) == "erl@127.0.0.1"


@requires_erlang
@pytest.mark.parametrize("secret", [None, "s3cret"])
def test_erlang_accepts_our_heartbeat(secret):
    packet = wire.encode(NODE, secret)
    assert escript("decode", packet.hex(), secret or "-") == NODE


@requires_erlang
def test_erlang_refuses_ours_under_the_wrong_secret():
    assert escript("decode", wire.encode(NODE, "one").hex(), "two").startswith("error:")
