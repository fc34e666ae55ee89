"""libcluster Gossip's heartbeat, sans-I/O: bytes in, a node name (or a reason) out.

A heartbeat is `b"heartbeat::"` + `term_to_binary(%{node: node()})`. With a secret the
datagram is a random 16-byte IV followed by AES-256-CBC (key `sha256(secret)`, PKCS#7
padding) of that heartbeat, as libcluster 3.5 sends it. What we send equals OTP 26's
`term_to_binary(#{node => N}, [{minor_version, 2}])` byte for byte; we accept OTP 25's
ATOM_EXT (100) atoms as well as SMALL_ATOM_UTF8_EXT (119).

Nothing a packet says is trusted beyond "a node by this name exists": the term is read with
the kit's bounded decoder, and only a map with an atom under `node` that is a valid node name
counts (other keys are ignored).
"""
from __future__ import annotations

import functools
import hashlib
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .. import etf, names
from ..etf import Atom

PREFIX = b"heartbeat::"
IV_SIZE = 16
# A heartbeat is about 30 bytes plus the node name (at most 255 characters, 4 bytes each):
# anything much larger is not one, and is dropped before it costs a decode.
MAX_PACKET = 2048
_NODE = Atom("node")


class BadHeartbeat(ValueError):
    """A datagram that is not a heartbeat we accept; str() says why, in one line."""


@functools.lru_cache(maxsize=16)
def key_for(secret) -> bytes:
    """libcluster's key: sha256 of the secret's bytes (a str is taken as UTF-8)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return hashlib.sha256(secret).digest()


def plaintext(node) -> bytes:
    """The unencrypted heartbeat for node."""
    return PREFIX + etf.encode({_NODE: Atom(str(node))})


def encrypt(data: bytes, secret, iv: bytes | None = None) -> bytes:
    """IV + AES-256-CBC(PKCS#7(data)); iv defaults to 16 fresh random bytes."""
    if iv is None:
        iv = os.urandom(IV_SIZE)
    if len(iv) != IV_SIZE:
        raise ValueError(f"iv must be {IV_SIZE} bytes, not {len(iv)}")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.AES(key_for(secret)), modes.CBC(iv)).encryptor()
    return iv + enc.update(padded) + enc.finalize()


def decrypt(packet: bytes, secret) -> bytes:
    """The plaintext of IV + ciphertext; BadHeartbeat when it does not decrypt."""
    body = packet[IV_SIZE:]
    if len(packet) < IV_SIZE or not body or len(body) % 16:
        raise BadHeartbeat(f"not an encrypted heartbeat: {len(packet)} bytes is not "
                           f"a 16-byte IV plus whole AES blocks")
    dec = Cipher(algorithms.AES(key_for(secret)), modes.CBC(packet[:IV_SIZE])).decryptor()
    padded = dec.update(body) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise BadHeartbeat("does not decrypt with this secret (bad padding)") from None


def encode(node, secret=None, iv: bytes | None = None) -> bytes:
    """The datagram libcluster's Gossip sends for node (encrypted when secret is given)."""
    data = plaintext(node)
    return data if secret is None else encrypt(data, secret, iv)


def decode(packet, secret=None) -> Atom:
    """The node name a heartbeat datagram announces; BadHeartbeat(reason) otherwise."""
    packet = bytes(packet)
    if len(packet) > MAX_PACKET:
        raise BadHeartbeat(f"{len(packet)} bytes is too long for a heartbeat "
                           f"(at most {MAX_PACKET})")
    if secret is not None:
        packet = decrypt(packet, secret)
    if not packet.startswith(PREFIX):
        raise BadHeartbeat(f"no 'heartbeat::' prefix (starts with {packet[:11]!r})")
    try:
        term = etf.decode(packet[len(PREFIX):])
    except etf.ETFError as e:
        raise BadHeartbeat(f"the term does not decode: {e}") from None
    if not isinstance(term, dict):
        raise BadHeartbeat(f"the term is a {type(term).__name__}, not a map")
    # The key must be the atom node, not the binary "node" (which a str lookup would match).
    node = next((v for k, v in term.items() if type(k) is Atom and k == _NODE), None)
    if type(node) is not Atom:
        raise BadHeartbeat("the map has no atom under 'node'")
    try:
        names.parse_remote(node)
    except names.InvalidNodeName as e:
        raise BadHeartbeat(f"{node!r} is not a node name: {str(e).splitlines()[0]}") from None
    return node
