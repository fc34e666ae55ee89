"""External Term Format (ETF): the bytes Erlang's term_to_binary/1 writes.

Pure functions, no I/O. The distribution layer uses this module for every
control message and payload, so it is written for speed (precompiled structs,
a type -> encoder dispatch dict, one bytearray per encode, bytes slicing in the
decoder) and for safety with untrusted input:

* every length a term announces is checked against the bytes that are left
  before anything is allocated for it, so a 10-byte input cannot make us build
  a list of four billion elements;
* a compressed term (tag 80) may not announce more than zlib could possibly
  produce from the bytes that follow, nor more than `max_inflated` (by default
  DEFAULT_MAX_INFLATED; a connection passes its largest message size). It is
  inflated in bounded chunks, and its first bytes are checked before the rest
  is inflated, so an honest but huge announcement costs nothing;
* nesting deeper than MAX_DEPTH raises ETFError("nested too deeply ...")
  instead of RecursionError. Erlang itself accepts deeper terms; we do not,
  on purpose: the decoder is recursive (one frame a level, which keeps the
  common case fast), and so are the encoder, repr() and == on the Python
  values it returns, so a 100,000-deep list that decoded would still crash
  the first print or comparison of it. No real message nests 500 deep. A
  chain of list tails ([1 | [2 | [3 | []]]], written cons by cons) is read in a
  loop and is not nesting;
* text floats (FLOAT_EXT) follow Erlang's grammar, not Python's float():
  [+-]digits[.,]digits[eE[+-]digits], ended by a NUL within the 31 bytes;
* references have at most 5 id words, as in Erlang (ERTS_MAX_REF_NUMBERS);
* whatever goes wrong with malformed input surfaces as ETFError, which says
  what was wrong and at which byte offset.

Python <-> Erlang:

    Atom (a str subclass)   atom (true/false/nil come back as True/False/None)
    True / False / None     atoms true / false / nil
    str                     UTF-8 binary; a binary that arrives decodes to str when
                            it is valid UTF-8, else to bytes
    bytes / bytearray       binary
    int, float              integer (any size), float (finite only)
    tuple, list, dict       tuple, list, map
    ImproperList            a list whose tail is not [] (e.g. [alias | Ref])
    Pid, Reference, Port    pids, references, ports
    Opaque                  a term we carry but do not model (funs, bitstrings):
                            it re-encodes to exactly the bytes that arrived (a
                            bitstring's unused low bits are zeroed, as Erlang does)

Map keys Python cannot hash (lists, maps, tuples holding them) decode to the
hashable stand-ins ListKey and MapKey. Keys that are different in Erlang but
equal in Python (the atom a and the binary "a", 1 and 1.0, true and 1) would
silently merge in a dict; when a map holds such a pair, those keys decode to
ExactKey instead, so nothing is lost.
"""
from __future__ import annotations

import codecs
import re
import reprlib
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from struct import Struct

__all__ = [
    "ETFError",
    "Atom",
    "Pid",
    "Reference",
    "Port",
    "ImproperList",
    "Opaque",
    "ListKey",
    "MapKey",
    "ExactKey",
    "freeze",
    "encode",
    "decode",
    "decode_from",
    "encode_body",
    "decode_body",
    "atom_text",
    "MAX_DEPTH",
    "DEFAULT_MAX_INFLATED",
]

VERSION = 131

# Nesting limit for decoding. Each level costs one Python frame in the decoder
# (and later one in the encoder or in repr), so stay well under Python's default
# recursion limit of 1000 even when the caller is already a few hundred deep.
MAX_DEPTH = 500

# The most a compressed term may inflate to unless the caller says otherwise:
# the distribution layer's largest frame (dist/framing.py MAX_FRAME).
DEFAULT_MAX_INFLATED = 64 * 1024 * 1024
# Inflate this much at a time, so memory grows only as real output arrives.
_INFLATE_CHUNK = 256 * 1024
# Erlang refuses references with more id words (ERTS_MAX_REF_NUMBERS).
MAX_REF_WORDS = 5
# What Erlang's sys_chars_to_double accepts as FLOAT_EXT text (',' too: it
# retries strtod with the other radix character).
_FLOAT_TEXT = re.compile(rb"[+-]?[0-9]+[.,][0-9]+(?:[eE][+-]?[0-9]+)?")

# zlib (deflate) cannot inflate more than about 1032 bytes per input byte.
_MAX_INFLATE_RATIO = 1100

# Atoms (both ways) and pids are cached; each cache is cleared when it gets this
# big, so hostile input full of distinct atoms cannot grow it without bound.
_CACHE_MAX = 4096

_TAG_NAMES = {
    70: "NEW_FLOAT_EXT", 77: "BIT_BINARY_EXT", 80: "COMPRESSED", 82: "ATOM_CACHE_REF",
    88: "NEW_PID_EXT", 89: "NEW_PORT_EXT", 90: "NEWER_REFERENCE_EXT",
    97: "SMALL_INTEGER_EXT", 98: "INTEGER_EXT", 99: "FLOAT_EXT", 100: "ATOM_EXT",
    101: "REFERENCE_EXT", 102: "PORT_EXT", 103: "PID_EXT", 104: "SMALL_TUPLE_EXT",
    105: "LARGE_TUPLE_EXT", 106: "NIL_EXT", 107: "STRING_EXT", 108: "LIST_EXT",
    109: "BINARY_EXT", 110: "SMALL_BIG_EXT", 111: "LARGE_BIG_EXT", 112: "NEW_FUN_EXT",
    113: "EXPORT_EXT", 114: "NEW_REFERENCE_EXT", 115: "SMALL_ATOM_EXT", 116: "MAP_EXT",
    117: "FUN_EXT", 118: "ATOM_UTF8_EXT", 119: "SMALL_ATOM_UTF8_EXT", 120: "V4_PORT_EXT",
    121: "LOCAL_EXT",
}


class ETFError(ValueError):
    """Malformed ETF input, or a Python value with no Erlang term."""


# --------------------------------------------------------------------------- types


class Atom(str):
    """An Erlang atom. A str, so Atom("pong") == "pong"."""

    __slots__ = ()

    def __repr__(self):
        return f"Atom({str.__repr__(self)})"


@dataclass(frozen=True, slots=True, repr=False)
class Pid:
    """An Erlang process id: node, then id and serial (<0.id.serial> in Erlang), creation."""

    node: Atom
    id: int
    serial: int
    creation: int

    def __post_init__(self):
        if type(self.node) is not Atom:
            object.__setattr__(self, "node", Atom(self.node))

    def __repr__(self):
        return f"#PID<{self.node}.{self.id}.{self.serial}>"


@dataclass(frozen=True, slots=True, repr=False)
class Reference:
    """An Erlang reference: node, creation, and its id words in wire order."""

    node: Atom
    creation: int
    ids: tuple[int, ...]

    def __post_init__(self):
        if type(self.node) is not Atom:
            object.__setattr__(self, "node", Atom(self.node))
        if type(self.ids) is not tuple:
            object.__setattr__(self, "ids", tuple(self.ids))

    def __repr__(self):
        # Erlang prints the id words most significant first, the reverse of the wire.
        return f"#Reference<{self.node}.{'.'.join(map(str, reversed(self.ids)))}>"


@dataclass(frozen=True, slots=True, repr=False)
class Port:
    """An Erlang port: node, id (up to 64 bits), creation."""

    node: Atom
    id: int
    creation: int

    def __post_init__(self):
        if type(self.node) is not Atom:
            object.__setattr__(self, "node", Atom(self.node))

    def __repr__(self):
        return f"#Port<{self.node}.{self.id}>"


class ImproperList:
    """A list whose tail is not [], such as [alias | Ref].

    items: the elements before the tail (a tuple, at least one); tail: any term
    but a list. Equal by value; hashable when its parts are.
    """

    __slots__ = ("items", "tail")

    def __init__(self, items, tail):
        items = tuple(items)
        if not items:
            raise ValueError("an improper list needs at least one item before its tail")
        if isinstance(tail, (list, ListKey)):
            raise ValueError("the tail is a proper list, so the whole is a proper list: use a list")
        if type(tail) is ImproperList:  # [1 | [2 | t]] is [1, 2 | t], as Erlang sees it
            items += tail.items
            tail = tail.tail
        self.items = items
        self.tail = tail

    def __eq__(self, other):
        if type(other) is not ImproperList:
            return NotImplemented
        return self.items == other.items and self.tail == other.tail

    def __hash__(self):
        return hash((ImproperList, self.items, self.tail))

    def __repr__(self):
        return f"ImproperList({list(self.items)!r}, {self.tail!r})"


_OPAQUE_KINDS = ("fun", "export", "bitstring", "other")


class Opaque:
    """A term we carry but do not model: raw is its tag byte and payload."""

    __slots__ = ("kind", "raw")

    def __init__(self, kind: str, raw: bytes):
        if kind not in _OPAQUE_KINDS:
            raise ValueError(f"Opaque kind must be one of {_OPAQUE_KINDS}, not {kind!r}")
        self.kind = kind
        self.raw = bytes(raw)

    def __eq__(self, other):
        if type(other) is not Opaque:
            return NotImplemented
        return self.raw == other.raw

    def __hash__(self):
        return hash((Opaque, self.raw))

    def __repr__(self):
        raw = self.raw if len(self.raw) <= 48 else self.raw[:48]
        more = "" if raw is self.raw else f" + {len(self.raw) - 48} more bytes"
        return f"Opaque({self.kind!r}, {raw!r}{more})"


class ListKey:
    """A list used as a map key: hashable, encodes back as a list.

    Equal to a list or ListKey with the same items, never to a tuple (in Erlang
    [1,2] and {1,2} are different keys).
    """

    __slots__ = ("items", "_hash")

    def __init__(self, items=()):
        self.items = tuple(map(freeze, items))
        self._hash = hash((ListKey, self.items))

    def __eq__(self, other):
        if type(other) is ListKey:
            return self.items == other.items
        if isinstance(other, list):
            return self.items == tuple(other)
        return NotImplemented

    def __hash__(self):
        return self._hash

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def __repr__(self):
        return f"ListKey({list(self.items)!r})"


class MapKey(Mapping):
    """A map used as a map key: a read-only, hashable mapping that encodes back as a map."""

    __slots__ = ("_map", "_hash")

    def __init__(self, mapping=()):
        pairs = mapping.items() if isinstance(mapping, Mapping) else mapping
        self._map = {freeze(k): freeze(v) for k, v in pairs}
        self._hash = hash((MapKey, frozenset(self._map.items())))

    def __getitem__(self, key):
        return self._map[key]

    def __iter__(self):
        return iter(self._map)

    def __len__(self):
        return len(self._map)

    def __eq__(self, other):
        if type(other) is MapKey:
            return self._hash == other._hash and self._map == other._map
        if isinstance(other, dict):
            return self._map == other
        return NotImplemented

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"MapKey({self._map!r})"


class ExactKey:
    """A map key compared the Erlang way (exactly), used only when Python would merge keys.

    Erlang tells apart keys that Python calls equal: the atom a and the binary
    "a", 1 and 1.0, true and 1. When a map that arrives holds such a pair, those
    keys are wrapped in ExactKey so both entries survive. Encodes as its term.
    """

    __slots__ = ("term", "_sig")

    def __init__(self, term):
        self.term = freeze(term)
        # Our encoding is canonical, so equal bytes <=> exactly equal terms.
        self._sig = encode_body(self.term)

    def __eq__(self, other):
        if type(other) is not ExactKey:
            return NotImplemented
        return self._sig == other._sig

    def __hash__(self):
        return hash((ExactKey, self._sig))

    def __repr__(self):
        return f"ExactKey({self.term!r})"


def freeze(term):
    """A hashable equivalent of term: lists -> ListKey, dicts -> MapKey, recursively.

    Use it to look up a map key that arrived as a stand-in: m[freeze([1, 2])].
    """
    t = type(term)
    if t is list:
        return ListKey(term)
    if t is tuple:
        return tuple(map(freeze, term))
    if t is dict:
        return MapKey(term)
    if t is ImproperList:
        return ImproperList(map(freeze, term.items), freeze(term.tail))
    if isinstance(term, list):
        return ListKey(term)
    if isinstance(term, dict):
        return MapKey(term)
    return term


# --------------------------------------------------------------------------- encoding

_BB = Struct(">BB").pack
_BH = Struct(">BH").pack
_BI = Struct(">BI").pack
_Bi = Struct(">Bi").pack
_Bd = Struct(">Bd").pack
_BBB = Struct(">BBB").pack
_BIB = Struct(">BIB").pack
_III = Struct(">III").pack
_II = Struct(">II").pack
_QI = Struct(">QI").pack
_I = Struct(">I").pack

_SMALL_INTS = [bytes((97, i)) for i in range(256)]
_TRUE = b"w\x04true"
_FALSE = b"w\x05false"
_NIL = b"w\x03nil"

# Atom -> its encoding. Atoms repeat a lot (message tags, node names).
_ATOM_BYTES: dict[Atom, bytes] = {}


def _atom_bytes(a) -> bytes:
    b = _ATOM_BYTES.get(a)
    if b is not None:
        return b
    if len(a) > 255:
        raise ETFError(f"cannot encode atom of {len(a)} characters: Erlang atoms have at most 255")
    try:
        text = str.encode(a, "utf-8")
    except UnicodeEncodeError as e:
        raise ETFError(f"cannot encode atom {a!r}: not encodable as UTF-8 ({e.reason})") from None
    n = len(text)
    b = (_BB(119, n) if n < 256 else _BH(118, n)) + text
    if len(_ATOM_BYTES) >= _CACHE_MAX:
        _ATOM_BYTES.clear()
    _ATOM_BYTES[a] = b
    return b


def _enc_atom(a, out):
    out += _atom_bytes(a)


def _enc_bool(x, out):
    out += _TRUE if x else _FALSE


def _enc_none(x, out):
    out += _NIL


def _enc_int(n, out):
    if 0 <= n <= 255:
        out += _SMALL_INTS[n]
    elif -2147483648 <= n <= 2147483647:
        out += _Bi(98, n)
    else:
        sign = 0
        if n < 0:
            sign = 1
            n = -n
        size = (n.bit_length() + 7) >> 3
        if size < 256:
            out += _BBB(110, size, sign)
        elif size <= 0xFFFFFFFF:
            out += _BIB(111, size, sign)
        else:
            raise ETFError(f"cannot encode an integer of {size} bytes: LARGE_BIG_EXT holds at most 2**32-1")
        out += n.to_bytes(size, "little")


def _enc_float(x, out):
    if x - x != 0.0:  # true only for nan and +-inf
        raise ETFError(f"cannot encode float {x!r}: Erlang floats have no NaN or infinity")
    out += _Bd(70, x)


def _enc_binary(b, out):
    n = len(b)
    if n > 0xFFFFFFFF:
        raise ETFError(f"cannot encode a binary of {n} bytes: BINARY_EXT holds at most 2**32-1")
    out += _BI(109, n)
    out += b


def _enc_str(s, out):
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ETFError(f"cannot encode str as a UTF-8 binary: {e.reason} at index {e.start}") from None
    _enc_binary(b, out)


def _enc_memoryview(m, out):
    _enc_binary(m.tobytes(), out)


def _enc_tuple(t, out):
    n = len(t)
    if n < 256:
        out += _BB(104, n)
    elif n <= 0xFFFFFFFF:
        out += _BI(105, n)
    else:
        raise ETFError(f"cannot encode a tuple of {n} elements")
    get = _ENCODERS.get
    for x in t:
        f = get(type(x))
        if f is None:
            f = _resolve(x)
        f(x, out)


def _enc_list(lst, out):
    n = len(lst)
    if n == 0:
        out.append(106)
        return
    # Like Erlang, a short list of bytes goes as STRING_EXT. The type test keeps
    # bools (which bytes() would accept) and int subclasses out.
    if n < 65536 and type(lst[0]) is int and len(set(map(type, lst))) == 1:
        try:
            b = bytes(lst)
        except ValueError:
            pass
        else:
            out += _BH(107, n)
            out += b
            return
    if n > 0xFFFFFFFF:
        raise ETFError(f"cannot encode a list of {n} elements")
    out += _BI(108, n)
    get = _ENCODERS.get
    for x in lst:
        f = get(type(x))
        if f is None:
            f = _resolve(x)
        f(x, out)
    out.append(106)


def _enc_improper(il, out):
    out += _BI(108, len(il.items))
    get = _ENCODERS.get
    for x in il.items:
        f = get(type(x))
        if f is None:
            f = _resolve(x)
        f(x, out)
    x = il.tail
    f = get(type(x))
    if f is None:
        f = _resolve(x)
    f(x, out)


def _enc_map_items(n, pairs, out):
    if n > 0xFFFFFFFF:
        raise ETFError(f"cannot encode a map of {n} entries")
    out += _BI(116, n)
    get = _ENCODERS.get
    for k, v in pairs:
        f = get(type(k))
        if f is None:
            f = _resolve(k)
        f(k, out)
        f = get(type(v))
        if f is None:
            f = _resolve(v)
        f(v, out)


def _enc_dict(d, out):
    _enc_map_items(len(d), d.items(), out)


def _enc_mapkey(m, out):
    _enc_map_items(len(m), m._map.items(), out)


def _enc_listkey(lk, out):
    _enc_list(list(lk.items), out)


def _enc_exactkey(ek, out):
    _enc_any(ek.term, out)


def _enc_pid(p, out):
    out.append(88)
    out += _atom_bytes(p.node)
    try:
        out += _III(p.id, p.serial, p.creation)
    except struct.error:
        raise ETFError(f"cannot encode {p!r}: id, serial and creation must be 0..2**32-1") from None


def _enc_reference(r, out):
    ids = r.ids
    if len(ids) > MAX_REF_WORDS:
        raise ETFError(f"cannot encode a reference of {len(ids)} id words: "
                       f"Erlang accepts at most {MAX_REF_WORDS}")
    out += _BH(90, len(ids))
    out += _atom_bytes(r.node)
    try:
        out += _I(r.creation)
        out += struct.pack(f">{len(ids)}I", *ids)
    except struct.error:
        raise ETFError(f"cannot encode {r!r}: creation and ids must be 0..2**32-1") from None


_MAX_V3_PORT = (1 << 28) - 1


def _enc_port(p, out):
    try:
        # OTP 24+ (checked with OTP 25): ids above 2**28-1 go as V4_PORT_EXT.
        if 0 <= p.id <= _MAX_V3_PORT:
            out.append(89)
            out += _atom_bytes(p.node)
            out += _II(p.id, p.creation)
        else:
            out.append(120)  # V4_PORT_EXT: 64-bit id
            out += _atom_bytes(p.node)
            out += _QI(p.id, p.creation)
    except struct.error:
        raise ETFError(f"cannot encode {p!r}: id must be 0..2**64-1, creation 0..2**32-1") from None


def _enc_opaque(o, out):
    out += o.raw


_ENCODERS = {
    Atom: _enc_atom,
    bool: _enc_bool,
    type(None): _enc_none,
    int: _enc_int,
    float: _enc_float,
    str: _enc_str,
    bytes: _enc_binary,
    bytearray: _enc_binary,
    memoryview: _enc_memoryview,
    tuple: _enc_tuple,
    list: _enc_list,
    dict: _enc_dict,
    Pid: _enc_pid,
    Reference: _enc_reference,
    Port: _enc_port,
    ImproperList: _enc_improper,
    Opaque: _enc_opaque,
    ListKey: _enc_listkey,
    MapKey: _enc_mapkey,
    ExactKey: _enc_exactkey,
}
# Subclasses (namedtuple, OrderedDict, IntEnum, str enums...) resolve through the
# MRO; only the types registered above are looked for.
_BASE_ENCODERS = dict(_ENCODERS)


def _resolve(x):
    """The encoder for a type not in _ENCODERS, found through its base classes."""
    t = type(x)
    for base in t.__mro__[1:]:
        f = _BASE_ENCODERS.get(base)
        if f is not None:
            if len(_ENCODERS) < 512:  # cache, but never grow without bound
                _ENCODERS[t] = f
            return f
    try:
        text = reprlib.repr(x)  # bounded: the value may be huge
    except Exception:  # a broken __repr__ must not hide the real problem
        text = "unprintable"
    raise ETFError(f"cannot encode a value of type {t.__qualname__} ({text}): no Erlang term for it")


def _enc_any(x, out):
    f = _ENCODERS.get(type(x))
    if f is None:
        f = _resolve(x)
    f(x, out)


def encode_body(term) -> bytes:
    """The encoding of term without the leading version byte 131."""
    out = bytearray()
    try:
        _enc_any(term, out)
    except RecursionError:
        raise ETFError("nested too deeply to encode (or a container that contains itself)") from None
    return bytes(out)


def encode(term) -> bytes:
    """term_to_binary: the version byte 131 and the term."""
    out = bytearray(b"\x83")
    try:
        _enc_any(term, out)
    except RecursionError:
        raise ETFError("nested too deeply to encode (or a container that contains itself)") from None
    return bytes(out)


# --------------------------------------------------------------------------- decoding

_utf8_prefix = codecs.utf_8_decode
_U16 = Struct(">H").unpack_from
_U32 = Struct(">I").unpack_from
_I32 = Struct(">i").unpack_from
_F64 = Struct(">d").unpack_from
_U32x2 = Struct(">II").unpack_from
_U32x3 = Struct(">III").unpack_from
_U32xIIB = Struct(">IIB").unpack_from
_U32xIB = Struct(">IB").unpack_from
_U64xI = Struct(">QI").unpack_from
_IDS = {n: Struct(f">{n}I").unpack_from for n in range(6)}

# The decoder builds pids, references and ports from parts it has already
# checked (node is an Atom, ids a tuple), so it skips the dataclass __init__ and
# __post_init__ and fills the slots directly: about twice as fast.
_object_new = object.__new__
_pid_slots = (Pid.node.__set__, Pid.id.__set__, Pid.serial.__set__, Pid.creation.__set__)
_ref_slots = (Reference.node.__set__, Reference.creation.__set__, Reference.ids.__set__)
_port_slots = (Port.node.__set__, Port.id.__set__, Port.creation.__set__)


def _new_pid(node, i, s, c, _slots=_pid_slots):
    p = _object_new(Pid)
    _slots[0](p, node)
    _slots[1](p, i)
    _slots[2](p, s)
    _slots[3](p, c)
    return p


def _new_ref(node, creation, ids, _slots=_ref_slots):
    r = _object_new(Reference)
    _slots[0](r, node)
    _slots[1](r, creation)
    _slots[2](r, ids)
    return r


def _new_port(node, i, c, _slots=_port_slots):
    p = _object_new(Port)
    _slots[0](p, node)
    _slots[1](p, i)
    _slots[2](p, c)
    return p


_MISSING = object()
_PIDS: dict[bytes, Pid] = {}  # a pid's whole encoding (tag included) -> the Pid
_SPECIAL_ATOMS = {"true": True, "false": False, "nil": None}
# raw bytes -> decoded value (Atom, or True/False/None), one cache per text encoding
_UTF8_ATOMS: dict[bytes, object] = {}
_LATIN1_ATOMS: dict[bytes, object] = {}


def _truncated(tag, start, data, detail=""):
    name = _TAG_NAMES.get(tag, f"tag {tag}")
    detail = f": {detail}" if detail else ""
    return ETFError(f"truncated {name} at offset {start}{detail}, input ends at {len(data)}")


def _new_atom(raw, utf8, tag, start):
    """Decode atom text (slow path) and remember it in the cache."""
    try:
        text = raw.decode("utf-8" if utf8 else "latin-1")
    except UnicodeDecodeError:
        raise ETFError(f"bad {_TAG_NAMES[tag]} at offset {start}: atom text is not valid UTF-8") from None
    if len(text) > 255:
        raise ETFError(f"bad {_TAG_NAMES[tag]} at offset {start}: {len(text)} characters, atoms have at most 255")
    value = _SPECIAL_ATOMS[text] if text in _SPECIAL_ATOMS else Atom(text)
    cache = _UTF8_ATOMS if utf8 else _LATIN1_ATOMS
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[raw] = value
    return value


def _read_atom(data, pos, outer, outer_start):
    """An atom where the format requires one (node and module names): always an Atom.

    outer and outer_start (the enclosing term's tag and offset) are for messages.
    """
    if pos >= len(data):
        what = f"{_TAG_NAMES[outer]} at offset {outer_start}"
        raise ETFError(f"truncated {what}: input ends at offset {pos} where an atom was expected")
    tag = data[pos]
    if tag == 119 or tag == 115:
        if pos + 2 > len(data):
            raise _truncated(tag, pos, data)
        n = data[pos + 1]
        p = pos + 2
    elif tag == 118 or tag == 100:
        if pos + 3 > len(data):
            raise _truncated(tag, pos, data)
        n = _U16(data, pos + 1)[0]
        p = pos + 3
    else:
        name = _TAG_NAMES.get(tag, f"unknown tag {tag}")
        raise ETFError(f"bad {_TAG_NAMES[outer]} at offset {outer_start}: expected an atom "
                       f"at offset {pos}, found {name}")
    end = p + n
    if end > len(data):
        raise _truncated(tag, pos, data, f"{n} bytes of atom text announced")
    raw = data[p:end]
    utf8 = tag == 119 or tag == 118
    v = (_UTF8_ATOMS if utf8 else _LATIN1_ATOMS).get(raw, _MISSING)
    if v is _MISSING:
        v = _new_atom(raw, utf8, tag, pos)
    if type(v) is not Atom:  # true/false/nil decoded to Python values; here we want the atom
        v = Atom(raw.decode("utf-8" if utf8 else "latin-1"))
    return v, end


def _too_deep(start):
    return ETFError(f"nested too deeply at offset {start}: more than {MAX_DEPTH} levels")


def _dec(data, pos, depth):
    """Decode the term at data[pos]; return (term, offset after it).

    One long if-chain on the tag byte, most frequent tags first: cheaper in
    CPython than a call through a dispatch table.
    """
    try:
        tag = data[pos]
    except IndexError:
        raise ETFError(f"input ends at offset {pos} where a term was expected") from None
    start = pos
    pos += 1

    if tag == 97:  # SMALL_INTEGER_EXT
        if pos < len(data):
            return data[pos], pos + 1
        raise _truncated(tag, start, data)

    if tag == 119 or tag == 118 or tag == 100 or tag == 115:  # atoms
        if tag == 119 or tag == 115:  # 1-byte length
            if pos >= len(data):
                raise _truncated(tag, start, data)
            n = data[pos]
            pos += 1
        else:
            if pos + 2 > len(data):
                raise _truncated(tag, start, data)
            n = _U16(data, pos)[0]
            pos += 2
        end = pos + n
        if end > len(data):
            raise _truncated(tag, start, data, f"{n} bytes of atom text announced")
        raw = data[pos:end]
        utf8 = tag == 119 or tag == 118
        v = (_UTF8_ATOMS if utf8 else _LATIN1_ATOMS).get(raw, _MISSING)
        if v is _MISSING:
            v = _new_atom(raw, utf8, tag, start)
        return v, end

    if tag == 104:  # SMALL_TUPLE_EXT
        if pos >= len(data):
            raise _truncated(tag, start, data)
        n = data[pos]
        pos += 1
        if n > len(data) - pos:
            raise _truncated(tag, start, data, f"{n} elements announced")
        if depth >= MAX_DEPTH:
            raise _too_deep(start)
        depth += 1
        if n == 2:  # the commonest shape: {tag, value}, {ok, X}
            a, pos = _dec(data, pos, depth)
            b, pos = _dec(data, pos, depth)
            return (a, b), pos
        items = []
        append = items.append
        for _ in range(n):
            x, pos = _dec(data, pos, depth)
            append(x)
        return tuple(items), pos

    if tag == 109:  # BINARY_EXT
        if pos + 4 > len(data):
            raise _truncated(tag, start, data)
        n = _U32(data, pos)[0]
        pos += 4
        end = pos + n
        if end > len(data):
            raise _truncated(tag, start, data, f"{n} bytes announced")
        raw = data[pos:end]
        # A failed decode copies the whole input into the exception, so look at
        # the start of a big binary first: blobs usually fail there, cheaply.
        if n > 64 and not raw.isascii():
            try:
                _utf8_prefix(raw[:64], "strict", False)  # False: a cut character is fine
            except UnicodeDecodeError:
                return raw, end
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError:
            return raw, end

    if tag == 106:  # NIL_EXT
        return [], pos

    if tag == 108:  # LIST_EXT
        if pos + 4 > len(data):
            raise _truncated(tag, start, data)
        n = _U32(data, pos)[0]
        pos += 4
        if n >= len(data) - pos:  # n elements and a tail, at least one byte each
            raise _truncated(tag, start, data, f"{n} elements announced")
        if depth >= MAX_DEPTH:
            raise _too_deep(start)
        depth += 1
        items = []
        append = items.append
        while True:
            for _ in range(n):
                x, pos = _dec(data, pos, depth)
                append(x)
            if pos < len(data) and data[pos] == 106:  # proper list: the usual case
                return items, pos + 1
            if not (pos < len(data) and data[pos] == 108):
                break
            # The tail is itself a LIST_EXT ([1 | [2 | ...]], as some encoders write
            # cons by cons): read on in a loop, so a long chain is not deep nesting.
            tail_start = pos
            if pos + 5 > len(data):
                raise _truncated(108, tail_start, data)
            n = _U32(data, pos + 1)[0]
            pos += 5
            if n >= len(data) - pos:
                raise _truncated(108, tail_start, data, f"{n} elements announced")
        tail, pos = _dec(data, pos, depth)
        if type(tail) is list:  # [1 | [2, 3]] is just [1, 2, 3]
            items += tail
            return items, pos
        if not items:  # Erlang reads [ | T] with no elements as T
            return tail, pos
        return ImproperList(items, tail), pos  # merges an improper tail

    if tag == 98:  # INTEGER_EXT
        if pos + 4 > len(data):
            raise _truncated(tag, start, data)
        return _I32(data, pos)[0], pos + 4

    if tag == 116:  # MAP_EXT
        if pos + 4 > len(data):
            raise _truncated(tag, start, data)
        n = _U32(data, pos)[0]
        pos += 4
        if n > (len(data) - pos) >> 1:
            raise _truncated(tag, start, data, f"{n} pairs announced")
        if depth >= MAX_DEPTH:
            raise _too_deep(start)
        depth += 1
        m = {}
        for _ in range(n):
            k, pos = _dec(data, pos, depth)
            v, pos = _dec(data, pos, depth)
            try:
                m[k] = v
            except TypeError:  # a list or map as key: use a hashable stand-in
                m[freeze(k)] = v
        if len(m) != n:  # keys Python merged (or true duplicates): the slow, exact path
            m = _exact_map(data, start, depth)
        return m, pos

    if tag == 88:  # NEW_PID_EXT
        # Pids recur (each message from a process carries its pid): look the
        # whole encoding up first. Only a complete pid's bytes can match a key.
        if pos + 1 < len(data) and data[pos] == 119:
            p = _PIDS.get(data[start:pos + 14 + data[pos + 1]])
            if p is not None:
                return p, pos + 14 + data[pos + 1]
        node, pos = _read_atom(data, pos, 88, start)
        if pos + 12 > len(data):
            raise _truncated(tag, start, data)
        i, s, c = _U32x3(data, pos)
        p = _new_pid(node, i, s, c)
        pos += 12
        if len(_PIDS) >= _CACHE_MAX:
            _PIDS.clear()
        _PIDS[data[start:pos]] = p
        return p, pos

    if tag == 90:  # NEWER_REFERENCE_EXT
        if pos + 2 > len(data):
            raise _truncated(tag, start, data)
        n = _U16(data, pos)[0]
        node, pos = _read_atom(data, pos + 2, 90, start)
        end = pos + 4 + 4 * n
        if n > MAX_REF_WORDS:
            raise ETFError(f"bad NEWER_REFERENCE_EXT at offset {start}: {n} id words, "
                           f"Erlang accepts at most {MAX_REF_WORDS}")
        if end > len(data):
            raise _truncated(tag, start, data, f"{n} id words announced")
        creation = _U32(data, pos)[0]
        unpack = _IDS[n]
        return _new_ref(node, creation, unpack(data, pos + 4)), end

    if tag == 70:  # NEW_FLOAT_EXT
        if pos + 8 > len(data):
            raise _truncated(tag, start, data)
        x = _F64(data, pos)[0]
        if x - x != 0.0:
            raise ETFError(f"bad NEW_FLOAT_EXT at offset {start}: NaN or infinity, which Erlang never sends")
        return x, pos + 8

    if tag == 107:  # STRING_EXT: a list of bytes
        if pos + 2 > len(data):
            raise _truncated(tag, start, data)
        n = _U16(data, pos)[0]
        pos += 2
        end = pos + n
        if end > len(data):
            raise _truncated(tag, start, data, f"{n} bytes announced")
        return list(data[pos:end]), end

    if tag == 105:  # LARGE_TUPLE_EXT
        if pos + 4 > len(data):
            raise _truncated(tag, start, data)
        n = _U32(data, pos)[0]
        pos += 4
        if n > len(data) - pos:
            raise _truncated(tag, start, data, f"{n} elements announced")
        if depth >= MAX_DEPTH:
            raise _too_deep(start)
        depth += 1
        items = []
        append = items.append
        for _ in range(n):
            x, pos = _dec(data, pos, depth)
            append(x)
        return tuple(items), pos

    if tag == 110 or tag == 111:  # SMALL_BIG_EXT, LARGE_BIG_EXT
        if tag == 110:
            if pos + 2 > len(data):
                raise _truncated(tag, start, data)
            n = data[pos]
            sign = data[pos + 1]
            pos += 2
        else:
            if pos + 5 > len(data):
                raise _truncated(tag, start, data)
            n, sign = _U32xIB(data, pos)
            pos += 5
        end = pos + n
        if end > len(data):
            raise _truncated(tag, start, data, f"{n} digit bytes announced")
        value = int.from_bytes(data[pos:end], "little")
        return (-value if sign else value), end  # like Erlang, any non-zero sign is negative

    if tag == 103:  # PID_EXT (before OTP 23): 8-bit creation
        node, pos = _read_atom(data, pos, 103, start)
        if pos + 9 > len(data):
            raise _truncated(tag, start, data)
        i, s, c = _U32xIIB(data, pos)
        return _new_pid(node, i, s, c), pos + 9

    if tag == 114:  # NEW_REFERENCE_EXT: 8-bit creation
        if pos + 2 > len(data):
            raise _truncated(tag, start, data)
        n = _U16(data, pos)[0]
        node, pos = _read_atom(data, pos + 2, 114, start)
        end = pos + 1 + 4 * n
        if n > MAX_REF_WORDS:
            raise ETFError(f"bad NEW_REFERENCE_EXT at offset {start}: {n} id words, "
                           f"Erlang accepts at most {MAX_REF_WORDS}")
        if end > len(data):
            raise _truncated(tag, start, data, f"{n} id words announced")
        creation = data[pos]
        unpack = _IDS[n]
        return _new_ref(node, creation, unpack(data, pos + 1)), end

    if tag == 101:  # REFERENCE_EXT: one id word, 8-bit creation
        node, pos = _read_atom(data, pos, 101, start)
        if pos + 5 > len(data):
            raise _truncated(tag, start, data)
        i, c = _U32xIB(data, pos)
        return _new_ref(node, c, (i,)), pos + 5

    if tag == 89:  # NEW_PORT_EXT
        node, pos = _read_atom(data, pos, 89, start)
        if pos + 8 > len(data):
            raise _truncated(tag, start, data)
        i, c = _U32x2(data, pos)
        return _new_port(node, i, c), pos + 8

    if tag == 120:  # V4_PORT_EXT: 64-bit id
        node, pos = _read_atom(data, pos, 120, start)
        if pos + 12 > len(data):
            raise _truncated(tag, start, data)
        i, c = _U64xI(data, pos)
        return _new_port(node, i, c), pos + 12

    if tag == 102:  # PORT_EXT: 8-bit creation
        node, pos = _read_atom(data, pos, 102, start)
        if pos + 5 > len(data):
            raise _truncated(tag, start, data)
        i, c = _U32xIB(data, pos)
        return _new_port(node, i, c), pos + 5

    if tag == 99:  # FLOAT_EXT: 31 bytes of "%.20e" text, NUL padded
        end = pos + 31
        if end > len(data):
            raise _truncated(tag, start, data)
        text, nul, _ = data[pos:end].partition(b"\0")
        if not nul:
            # Erlang's decoder reads on past the 31 bytes to find a NUL (what it then
            # does depends on the memory after them); its encoder always writes one.
            raise ETFError(f"bad FLOAT_EXT at offset {start}: no NUL ends the text in its 31 bytes")
        if not _FLOAT_TEXT.fullmatch(text):
            raise ETFError(f"bad FLOAT_EXT at offset {start}: {text!r} is not a float as Erlang "
                           "writes one ([+-]digits.digits[e[+-]digits])")
        x = float(text.replace(b",", b"."))
        if x - x != 0.0:
            raise ETFError(f"bad FLOAT_EXT at offset {start}: NaN or infinity, which Erlang never sends")
        return x, end

    if tag == 77:  # BIT_BINARY_EXT
        if pos + 5 > len(data):
            raise _truncated(tag, start, data)
        n, bits = _U32xIB(data, pos)
        pos += 5
        end = pos + n
        if end > len(data):
            raise _truncated(tag, start, data, f"{n} bytes announced")
        if n == 0:
            if bits:
                raise ETFError(f"bad BIT_BINARY_EXT at offset {start}: no bytes but {bits} bits in the last one")
            return "", end  # Erlang reads this as <<>>
        if not 1 <= bits <= 8:
            raise ETFError(f"bad BIT_BINARY_EXT at offset {start}: {bits} bits in the last byte, must be 1..8")
        if bits == 8:  # a whole number of bytes is a binary, as Erlang reads it
            raw = data[pos:end]
            try:
                return raw.decode("utf-8"), end
            except UnicodeDecodeError:
                return raw, end
        # Erlang ignores the unused low bits of the last byte; zero them so that
        # equal bitstrings have equal raw bytes.
        last = data[end - 1] & (0xFF << (8 - bits)) & 0xFF
        return Opaque("bitstring", data[start:end - 1] + bytes((last,))), end

    if tag == 112:  # NEW_FUN_EXT
        return _new_fun(data, start, depth)

    if tag == 113:  # EXPORT_EXT: fun Module:Function/Arity
        _, pos = _read_atom(data, pos, 113, start)
        _, pos = _read_atom(data, pos, 113, start)
        if pos + 2 > len(data) or data[pos] != 97:
            raise ETFError(f"bad EXPORT_EXT at offset {start}: arity at offset {pos} "
                           "must be a SMALL_INTEGER_EXT")
        end = pos + 2
        return Opaque("export", data[start:end]), end

    if tag == 117:  # FUN_EXT (before OTP 23)
        return _old_fun(data, start, depth)

    if tag == 82:
        raise ETFError(f"ATOM_CACHE_REF at offset {start}: atom cache references need the "
                       "distribution header's cache, which this codec does not use")
    if tag == 80:
        raise ETFError(f"compressed term at offset {start}: compression is only allowed "
                       "right after the version byte")
    if tag == 121:
        raise ETFError(f"LOCAL_EXT at offset {start}: only the node that made it can decode it")
    if tag == 131:
        raise ETFError(f"version byte 131 at offset {start} where a term was expected")
    raise ETFError(f"unknown tag {tag} at offset {start}")


def _check_int(x, what, where):
    if type(x) is not int:
        raise ETFError(f"bad {where}: {what} must be an integer")


def _new_fun(data, start, depth):
    """NEW_FUN_EXT: parsed to check it is well formed, kept as raw bytes."""
    where = f"NEW_FUN_EXT at offset {start}"
    pos = start + 1
    if pos + 4 > len(data):
        raise _truncated(112, start, data)
    size = _U32(data, pos)[0]  # counts itself, not the tag
    end = pos + size
    if end > len(data):
        raise _truncated(112, start, data, f"{size} bytes announced")
    # Size:4 Arity:1 Uniq:16 Index:4 NumFree:4, then Module, OldIndex, OldUniq, Pid, free vars
    if size < 29:
        raise ETFError(f"bad {where}: size {size} is too small for a fun")
    num_free = _U32(data, pos + 25)[0]
    p = pos + 29
    if num_free > end - p:
        raise ETFError(f"bad {where}: {num_free} free variables announced in {size} bytes")
    if depth >= MAX_DEPTH:
        raise _too_deep(start)
    depth += 1
    _, p = _read_atom(data, p, 112, start)
    old_index, p = _dec(data, p, depth)
    _check_int(old_index, "OldIndex", where)
    old_uniq, p = _dec(data, p, depth)
    _check_int(old_uniq, "OldUniq", where)
    pid, p = _dec(data, p, depth)
    if type(pid) is not Pid:
        raise ETFError(f"bad {where}: the creator must be a pid")
    for _ in range(num_free):
        _, p = _dec(data, p, depth)
    if p != end:
        raise ETFError(f"bad {where}: size says the fun ends at {end}, its contents end at {p}")
    return Opaque("fun", data[start:end]), end


def _old_fun(data, start, depth):
    """FUN_EXT (OTP 22 and older): NumFree:4 Pid Module Index Uniq FreeVars."""
    where = f"FUN_EXT at offset {start}"
    pos = start + 1
    if pos + 4 > len(data):
        raise _truncated(117, start, data)
    num_free = _U32(data, pos)[0]
    p = pos + 4
    if num_free > len(data) - p:
        raise _truncated(117, start, data, f"{num_free} free variables announced")
    if depth >= MAX_DEPTH:
        raise _too_deep(start)
    depth += 1
    pid, p = _dec(data, p, depth)
    if type(pid) is not Pid:
        raise ETFError(f"bad {where}: the creator must be a pid")
    _, p = _read_atom(data, p, 117, start)
    index, p = _dec(data, p, depth)
    _check_int(index, "Index", where)
    uniq, p = _dec(data, p, depth)
    _check_int(uniq, "Uniq", where)
    for _ in range(num_free):
        _, p = _dec(data, p, depth)
    return Opaque("fun", data[start:p]), p


def _exact_map(data, start, depth):
    """Decode the MAP_EXT at start again, keeping keys that Python would merge.

    Only reached when a plain dict came out smaller than the announced arity.
    """
    n = _U32(data, start + 1)[0]
    pos = start + 5
    pairs = []
    for _ in range(n):
        k, pos = _dec(data, pos, depth)
        v, pos = _dec(data, pos, depth)
        pairs.append((freeze(k), v))
    groups: dict[object, list] = {}
    for k, _ in pairs:
        groups.setdefault(k, []).append(k)
    m = {}
    for k, v in pairs:
        if len(groups[k]) > 1:
            ek = ExactKey(k)
            if ek in m:
                raise ETFError(f"bad MAP_EXT at offset {start}: key {k!r} appears twice")
            m[ek] = v
        else:
            m[k] = v
    return m


# Exceptions that malformed input could still raise from deep inside Python
# (struct, slicing, int/str conversions); all become ETFError.
_STRAY = (IndexError, KeyError, struct.error, TypeError, ValueError, OverflowError)


def _run(data, pos):
    try:
        return _dec(data, pos, 0)
    except ETFError:
        raise
    except RecursionError:
        raise ETFError("nested too deeply for Python's recursion limit") from None
    except _STRAY as e:
        raise ETFError(f"malformed term after offset {pos}: {type(e).__name__}: {e}") from None


def _as_bytes(data) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, (bytearray, memoryview, bytes)):
        return bytes(data)
    raise TypeError(f"ETF input must be bytes, bytearray or memoryview, not {type(data).__name__}")


# Tags a term may start with (the first decompressed byte is checked against it
# before more than one chunk is inflated).
_TERM_TAGS = frozenset(_TAG_NAMES) - {80, 82, 121}


def _check_head(head, size, start):
    """Refuse a decompressed term whose first bytes already show it is not one."""
    tag = head[0]
    if tag not in _TERM_TAGS:
        raise ETFError(f"bad compressed term at offset {start}: the decompressed bytes start "
                       f"with {_TAG_NAMES.get(tag, f'unknown tag {tag}')}, not a term")
    if tag in (108, 109, 116, 105) and len(head) >= 5:  # lists, binaries, maps, big tuples
        n = _U32(head, 1)[0]
        if n > size - 5:
            raise ETFError(f"bad compressed term at offset {start}: its {_TAG_NAMES[tag]} "
                           f"announces {n} elements in {size} decompressed bytes")


def _decompress(data, start, max_inflated):
    """The compressed term whose tag 80 is at start: (term, offset after the zlib stream)."""
    if start + 5 > len(data):
        raise _truncated(80, start, data)
    size = _U32(data, start + 1)[0]
    zpos = start + 5
    available = len(data) - zpos
    if size == 0:
        raise ETFError(f"bad compressed term at offset {start}: announces 0 bytes")
    if size > max_inflated:
        raise ETFError(f"bad compressed term at offset {start}: announces {size} bytes, "
                       f"more than the {max_inflated} this decoder accepts")
    if size > _MAX_INFLATE_RATIO * available:
        raise ETFError(f"bad compressed term at offset {start}: announces {size} bytes from "
                       f"{available} compressed bytes, more than zlib can produce")
    d = zlib.decompressobj()
    out = bytearray()
    pending = memoryview(data)[zpos:]
    try:
        # Bounded chunks: memory follows what the stream really holds, and
        # max_length keeps zlib from producing more than was announced.
        while len(out) < size and not d.eof:
            chunk = d.decompress(pending, min(_INFLATE_CHUNK, size - len(out)))
            pending = d.unconsumed_tail
            if not chunk:
                break  # needs input that is not there: the stream is cut short
            if not out:
                _check_head(chunk, size, start)
            out += chunk
        if not d.eof and (d.decompress(pending, 1) or not d.eof):
            raise ETFError(f"bad compressed term at offset {start}: the zlib stream holds more "
                           f"than the {size} bytes announced, or is cut short")
    except zlib.error as e:
        raise ETFError(f"bad compressed term at offset {start}: zlib says {e}") from None
    if len(out) != size:
        raise ETFError(f"bad compressed term at offset {start}: announces {size} bytes, "
                       f"the zlib stream holds {len(out)}")
    try:
        term, p = _run(bytes(out), 0)
    except ETFError as e:
        raise ETFError(f"in the compressed term at offset {start} (offsets within the "
                       f"decompressed bytes): {e}") from None
    if p != size:
        raise ETFError(f"bad compressed term at offset {start}: the term ends at {p} of "
                       f"{size} decompressed bytes")
    return term, len(data) - len(d.unused_data)


def decode_from(data, offset: int = 0, *, max_inflated: int = DEFAULT_MAX_INFLATED):
    """Decode the term whose version byte 131 is at data[offset]: (term, next offset).

    For the distribution layer, where terms sit back to back. A compressed term
    announcing more than max_inflated bytes is refused before it is inflated.
    """
    data = _as_bytes(data)
    if offset < 0 or offset >= len(data):
        raise ETFError(f"no term at offset {offset}: the input has {len(data)} bytes")
    if data[offset] != VERSION:
        raise ETFError(f"bad version byte {data[offset]} at offset {offset}: a term starts with 131")
    pos = offset + 1
    if pos < len(data) and data[pos] == 80:
        return _decompress(data, pos, max_inflated)
    return _run(data, pos)


def decode(data, *, max_inflated: int = DEFAULT_MAX_INFLATED):
    """binary_to_term: exactly one term, with its version byte, and nothing after it."""
    data = _as_bytes(data)
    term, pos = decode_from(data, 0, max_inflated=max_inflated)
    if pos != len(data):
        raise ETFError(f"trailing bytes at offset {pos}: {len(data) - pos} bytes after the term")
    return term


def decode_body(data, offset: int = 0):
    """Decode one term without a version byte at data[offset]: (term, next offset)."""
    data = _as_bytes(data)
    if offset < 0:
        raise ETFError(f"no term at offset {offset}")
    return _run(data, offset)


# --------------------------------------------------------------------------- printing

# Words that Erlang's scanner reserves (OTP 25; 'maybe' and 'else' only with the
# maybe_expr feature, which is off by default there, so io_lib writes them bare).
_RESERVED = frozenset(
    "after and andalso band begin bnot bor bsl bsr bxor case catch cond div end fun "
    "if let not of or orelse receive rem try when xor".split()
)
# io_lib's unquoted atom: a lower-case Latin-1 letter, then Latin-1 letters,
# digits, _ and @ (ß-ÿ are lower case except ÷; À-Þ upper case except ×).
_BARE_ATOM = re.compile("[a-z\xdf-\xf6\xf8-\xff][a-zA-Z0-9_@\xc0-\xd6\xd8-\xf6\xf8-\xff]*")
_ESCAPES = {"'": "\\'", "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            "\b": "\\b", "\f": "\\f", "\x1b": "\\e", "\x7f": "\\d"}


def _escape_char(c):
    e = _ESCAPES.get(c)
    if e is not None:
        return e
    if " " <= c <= "~" or c >= "\xa0":
        return c
    return "\\" + format(ord(c), "03o")  # other control characters, as octal


def atom_text(name: str) -> str:
    """How Erlang writes the atom (io_lib:write_atom, ~tw / ~tp): quoted when needed."""
    name = str(name)
    if name not in _RESERVED and _BARE_ATOM.fullmatch(name):
        return name
    return "'" + "".join(map(_escape_char, name)) + "'"
