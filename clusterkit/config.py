"""sys.config: a reader for Erlang term syntax, the kernel parameters, and sync_nodes.

A release's `sys.config` is one Erlang term ended by a dot:

    [{kernel, [{sync_nodes_mandatory, ['b@127.0.0.1']},
               {sync_nodes_timeout, 5000}]}].

Erlang reads it with `file:consult/1`. This module reads the same syntax, checks
the shape Erlang's application controller checks, and gives clusterkit the
kernel parameters it uses. `sync_nodes` then does what Erlang's kernel does at
boot with `sync_nodes_mandatory`, `sync_nodes_optional` and `sync_nodes_timeout`.

The term reader is a small hand-written tokenizer and recursive-descent parser:
there is no maintained Python library for Erlang term syntax, and a hand-written
one can report errors as a learner needs them, with `path:line:column:`, what was
expected and what was found. Lines and columns count the way erl_scan counts
them (both from 1, a tab is one column), so a position here is the position
Erlang reports.

Terms map to clusterkit's types: atoms -> Atom (true/false -> bool), integers and
`$c` characters -> int, floats -> float, "strings" -> str (Erlang char lists,
used as strings in config), <<"binaries">> -> str when valid UTF-8, else bytes,
tuples -> tuple, lists -> list, #{maps} -> dict.
"""
from __future__ import annotations

import difflib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .etf import Atom, ExactKey, freeze
from .names import InvalidNodeName, parse_remote

__all__ = [
    "ConfigError",
    "SyncNodesError",
    "parse_terms",
    "consult",
    "parse_sys_config",
    "read_sys_config",
    "kernel_settings",
    "sync_nodes",
    "sync_nodes_for",
    "KERNEL_DEFAULTS",
]

log = logging.getLogger("clusterkit.config")

INFINITY = Atom("infinity")

# What Erlang uses when a parameter is absent. sync_nodes_timeout has no default:
# when it is absent, Erlang's kernel does no node synchronization at all.
KERNEL_DEFAULTS: dict[str, Any] = {
    "sync_nodes_optional": [],
    "sync_nodes_mandatory": [],
    "net_ticktime": 60,
    "connect_all": True,
}


class ConfigError(ValueError):
    """A config file that cannot be read, or that Erlang would refuse.

    str(err) starts with `path:line:column:` when the place is known.
    """

    def __init__(self, reason: str, path: str | None = None, line: int | None = None,
                 column: int | None = None):
        self.reason = reason
        self.path = path
        self.line = line
        self.column = column
        if path is not None and line is not None:
            super().__init__(f"{path}:{line}:{column}: {reason}")
        elif path is not None:
            super().__init__(f"{path}: {reason}")
        else:
            super().__init__(reason)


class SyncNodesError(RuntimeError):
    """Mandatory nodes did not come up within sync_nodes_timeout: Erlang stops booting."""

    def __init__(self, missing: list, timeout):
        self.missing = list(missing)
        self.timeout = timeout
        names = ", ".join(str(n) for n in self.missing)
        erlang = ",".join(f"'{n}'" for n in self.missing)
        super().__init__(
            f"sync_nodes_mandatory: {names} did not come up within {timeout} ms "
            f"(sync_nodes_timeout); a real Erlang node stops booting here with "
            f"{{mandatory_nodes_down,[{erlang}]}}")


# --------------------------------------------------------------------------- tokens

# erl_scan's reserved words: bare, they are keywords, not atoms ('end' works).
# 'maybe' and 'else' are only reserved when the maybe_expr feature is on, and it
# is off in OTP 25, so they stay atoms.
RESERVED = frozenset(
    "after and andalso band begin bnot bor bsl bsr bxor case catch cond div end fun if "
    "let not of or orelse receive rem try when xor".split())

_ESCAPES = {"n": 10, "r": 13, "t": 9, "v": 11, "b": 8, "f": 12, "e": 27, "s": 32, "d": 127}
_MAX_ATOM = 255
MAX_DEPTH = 200


def _is_space(c: str) -> bool:
    # erl_scan: \000..\s and \200..\240 are white space.
    return c <= " " or "\x80" <= c <= "\xa0"


def _atom_start(c: str) -> bool:
    return "a" <= c <= "z" or ("\xdf" <= c <= "\xff" and c != "\xf7")


def _var_start(c: str) -> bool:
    return "A" <= c <= "Z" or c == "_" or ("\xc0" <= c <= "\xde" and c != "\xd7")


def _name_char(c: str) -> bool:
    return (c.isascii() and (c.isalnum() or c in "_@")) or (
        "\xc0" <= c <= "\xff" and c not in "\xd7\xf7")


def _legal_code_point(n: int) -> bool:
    # What erl_scan accepts in a string, a quoted atom or $c.
    return 0 <= n < 0xD800 or 0xDFFF < n < 0xFFFE or 0xFFFF < n <= 0x10FFFF


def _digit_value(c: str) -> int:
    if "0" <= c <= "9":
        return ord(c) - 48
    if "a" <= c <= "z":
        return ord(c) - 87
    if "A" <= c <= "Z":
        return ord(c) - 55
    return 99


@dataclass(slots=True)
class Token:
    kind: str        # atom var reserved int float char string punct dot eof
    value: Any
    line: int
    col: int
    start: int       # offsets into the text
    end: int
    end_line: int
    end_col: int


class _Scanner:
    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.i = 0
        self.line = 1
        self.col = 1

    def error(self, reason: str, line: int, col: int):
        return ConfigError(reason, self.path, line, col)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def advance(self) -> str:
        c = self.text[self.i]
        self.i += 1
        if c == "\n":
            self.line += 1
            self.col = 1
        else:
            self.col += 1
        return c

    def next(self) -> Token:
        # Skip white space and % comments.
        while self.i < len(self.text):
            c = self.text[self.i]
            if _is_space(c):
                self.advance()
            elif c == "%":
                while self.i < len(self.text) and self.text[self.i] != "\n":
                    self.advance()
            else:
                break
        start, line, col = self.i, self.line, self.col
        if self.i >= len(self.text):
            return Token("eof", None, line, col, start, start, line, col)
        kind, value = self.scan_one(line, col)
        return Token(kind, value, line, col, start, self.i, self.line, self.col)

    def scan_one(self, line: int, col: int) -> tuple[str, Any]:
        c = self.peek()
        if "0" <= c <= "9":
            return self.number(line, col)
        if _atom_start(c) or _var_start(c):
            start = self.i
            while self.i < len(self.text) and _name_char(self.text[self.i]):
                self.advance()
            name = self.text[start:self.i]
            if _var_start(c):
                return "var", name
            if len(name) > _MAX_ATOM:
                raise self.error(f"atom too long: an atom has at most {_MAX_ATOM} characters",
                                 line, col)
            return ("reserved" if name in RESERVED else "atom"), name
        if c == "'":
            name = self.quoted("'", line, col, "quoted atom")
            if len(name) > _MAX_ATOM:
                raise self.error(f"atom too long: an atom has at most {_MAX_ATOM} characters",
                                 line, col)
            return "atom", name
        if c == '"':
            return "string", self.quoted('"', line, col, "string")
        if c == "$":
            return "char", self.char(line, col)
        if c == ".":
            nxt = self.peek(1)
            self.advance()
            # erl_scan: a dot ends a term only before white space, % or the end of input.
            if nxt == "" or nxt == "%" or _is_space(nxt):
                return "dot", "."
            if nxt == ".":
                self.advance()
                if self.peek() == ".":
                    self.advance()
                    return "punct", "..."
                return "punct", ".."
            return "punct", "."
        for two in ("<<", ">>", "=>", ":=", "->", "::", "||"):
            if self.text.startswith(two, self.i):
                self.advance()
                self.advance()
                return "punct", two
        if c > "\xff":
            raise self.error(f"illegal character {c!r}: outside quotes, Erlang source is "
                             "Latin-1 (put it in \"a string\" or a 'quoted atom')", line, col)
        self.advance()
        return "punct", c

    def digits(self, base: int) -> str:
        """Digits of `base`, with single '_' between digits (1_000); '' if none."""
        start = self.i
        if _digit_value(self.peek()) >= base:
            return ""
        self.advance()
        while True:
            c = self.peek()
            if _digit_value(c) < base:
                self.advance()
            elif c == "_" and _digit_value(self.peek(1)) < base:
                self.advance()
                self.advance()
            else:
                return self.text[start:self.i].replace("_", "")

    def number(self, line: int, col: int) -> tuple[str, Any]:
        whole = self.digits(10)
        if self.peek() == "#":
            base = int(whole)
            if not 2 <= base <= 36:
                raise self.error(f"illegal base {base} in {whole}#...: a base is 2 to 36",
                                 line, col)
            self.advance()
            ds = self.digits(base)
            if not ds:
                raise self.error(f"illegal integer: '{base}#' must be followed by base-{base} "
                                 "digits", line, col)
            return "int", int(ds, base)
        # A float needs a digit after the dot: `1.` ends a term, `1.e5` is not a float.
        if self.peek() == "." and "0" <= self.peek(1) <= "9":
            self.advance()
            frac = self.digits(10)
            text = f"{whole}.{frac}"
            if self.peek() in ("e", "E"):
                self.advance()
                sign = ""
                if self.peek() in ("+", "-"):
                    sign = self.advance()
                exp = self.digits(10)
                if not exp:
                    raise self.error("illegal float: the exponent after 'e' needs digits, "
                                     "like 1.0e10", line, col)
                text += f"e{sign}{exp}"
            value = float(text)
            if value in (float("inf"), float("-inf")):
                raise self.error(f"illegal float: {text} is too big for a float", line, col)
            return "float", value
        return "int", int(whole)

    def escape(self, bline: int, bcol: int) -> int:
        """The character after a backslash (already consumed)."""
        if self.i >= len(self.text):
            raise self.error("a backslash at the end of the file", bline, bcol)
        c = self.advance()
        if "0" <= c <= "7":
            ds = c
            while len(ds) < 3 and "0" <= self.peek() <= "7":
                ds += self.advance()
            return int(ds, 8)
        if c == "x":
            if self.peek() == "{":
                self.advance()
                start = self.i
                while _digit_value(self.peek()) < 16:
                    self.advance()
                ds = self.text[start:self.i]
                if not ds or self.peek() != "}":
                    raise self.error("illegal character escape: write \\x{41} or \\x41", bline,
                                     bcol)
                self.advance()
                return int(ds, 16)
            if _digit_value(self.peek()) < 16 and _digit_value(self.peek(1)) < 16:
                return int(self.advance() + self.advance(), 16)
            raise self.error("illegal character escape: \\x needs two hex digits (\\x41) "
                             "or braces (\\x{41})", bline, bcol)
        if c == "^":
            if self.i >= len(self.text):
                raise self.error("a backslash at the end of the file", bline, bcol)
            return ord(self.advance()) & 31
        # \n, \t, ... and any other character stands for itself (\\, \', \").
        return _ESCAPES.get(c, ord(c))

    def quoted(self, q: str, line: int, col: int, what: str) -> str:
        self.advance()
        out: list[str] = []
        while True:
            if self.i >= len(self.text):
                raise self.error(f"unterminated {what}: the {q} here is never closed", line, col)
            c = self.advance()
            if c == q:
                return "".join(out)
            if c == "\\":
                bline, bcol = self.line, self.col - 1
                n = self.escape(bline, bcol)
                if not _legal_code_point(n):
                    raise self.error(f"illegal character: code point {n:#x} is not allowed",
                                     bline, bcol)
                out.append(chr(n))
            else:
                out.append(c)

    def char(self, line: int, col: int) -> int:
        self.advance()
        if self.i >= len(self.text):
            raise self.error("'$' needs a character after it, like $a", line, col)
        c = self.advance()
        n = self.escape(line, col) if c == "\\" else ord(c)
        if not _legal_code_point(n):
            raise self.error(f"illegal character: code point {n:#x} is not allowed", line, col)
        return n


# --------------------------------------------------------------------------- parser

@dataclass(slots=True)
class Loc:
    """Where a term is: its first line and column, its span in the text, and the
    places of its elements (tuple/list items; map keys and values, alternating)."""
    line: int
    col: int
    start: int
    end: int
    items: list["Loc"] = field(default_factory=list)


def _show(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _Parser:
    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.scanner = _Scanner(text, path)
        self.toks: list[Token] = []
        self.k = 0
        self.depth = 0

    def scan_term(self) -> None:
        """Scan the tokens of the next term, up to its dot, before parsing it.

        That is what file:consult does (erl_scan:tokens, then erl_parse), so when a
        term has both a scan error and a syntax error, the one reported is Erlang's.
        """
        while not self.toks or self.toks[-1].kind not in ("dot", "eof") or \
                len(self.toks) <= self.k:
            self.toks.append(self.scanner.next())

    @property
    def tok(self) -> Token:
        return self.toks[self.k]

    def take(self) -> Token:
        t = self.toks[self.k]
        if t.kind != "eof":
            self.k += 1
        return t

    def is_punct(self, *symbols: str) -> bool:
        return self.tok.kind == "punct" and self.tok.value in symbols

    def describe(self, t: Token) -> str:
        if t.kind == "eof":
            return "end of file"
        src = self.text[t.start:t.end]
        if t.kind == "string" or src.startswith("'"):
            return _show(src)
        return f"'{_show(src)}'"

    def fail(self, expected: str, t: Token | None = None, hint: str = ""):
        t = t or self.tok
        line, col = t.line, t.col
        if t.kind == "eof" and self.k > 0:
            # Point just after the last token: that is where the missing thing goes.
            last = self.toks[self.k - 1]
            line, col = last.end_line, last.end_col
        reason = f"expected {expected} but found {self.describe(t)}"
        hint = hint or self.hint(t)
        raise ConfigError(reason + (f"; {hint}" if hint else ""), self.path, line, col)

    def hint(self, t: Token) -> str:
        # `b@127.0.0.1` scans as the atom b@127 followed by '.': long node names
        # (and anything with '.' or '-') must be quoted.
        if self.k == 0:
            return ""
        prev = self.toks[self.k - 1]
        if (prev.kind == "atom" and not self.text.startswith("'", prev.start)
                and t.start == prev.end and t.kind in ("punct", "dot", "float", "int")
                and self.text[t.start] in ".-"):
            m = re.match(r"[A-Za-z0-9_@.\-]*[A-Za-z0-9_@]", self.text[prev.start:])
            name = m.group(0) if m else prev.value
            return (f"an atom with '.' or '-' in it, such as a long node name, must be "
                    f"quoted: '{name}'")
        if t.kind == "var" and t is self.tok:
            return (f"{t.value} is an Erlang variable, and a config file holds only values; "
                    f"for an atom, quote it: '{t.value}'")
        if t.kind == "reserved":
            return f"{t.value} is a reserved word; for an atom, quote it: '{t.value}'"
        return ""

    def expect(self, symbol: str, expected: str | None = None) -> Token:
        if not self.is_punct(symbol):
            self.fail(expected or f"'{symbol}'")
        return self.take()

    # --- terms

    def terms(self) -> list[tuple[Any, Loc]]:
        out = []
        while True:
            self.scan_term()
            if self.tok.kind == "eof":
                return out
            out.append(self.term())
            if self.tok.kind != "dot":
                self.fail("'.' after the term")
            self.take()

    def loc(self, first: Token, items=None) -> Loc:
        last = self.toks[self.k - 1]
        return Loc(first.line, first.col, first.start, last.end, items or [])

    def term(self) -> tuple[Any, Loc]:
        # Each nesting level costs Python frames: refuse absurd depths cleanly.
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise ConfigError(f"terms nested more than {MAX_DEPTH} deep", self.path,
                                  self.tok.line, self.tok.col)
            return self._term()
        finally:
            self.depth -= 1

    def _term(self) -> tuple[Any, Loc]:
        t = self.tok
        if t.kind in ("int", "float", "char"):
            self.take()
            return t.value, self.loc(t)
        if t.kind == "atom":
            self.take()
            v = t.value
            return (True if v == "true" else False if v == "false" else Atom(v)), self.loc(t)
        if t.kind == "string":
            return self.strings(), self.loc(t)
        if t.kind == "punct":
            if t.value in ("-", "+"):
                self.take()
                n = self.tok
                if n.kind not in ("int", "float", "char"):
                    self.fail(f"a number after '{t.value}'")
                self.take()
                return (-n.value if t.value == "-" else n.value), self.loc(t)
            if t.value == "{":
                return self.tuple_()
            if t.value == "[":
                return self.list_()
            if t.value == "#":
                return self.map_()
            if t.value == "<<":
                return self.binary()
            if t.value == "(":
                self.take()
                value, inner = self.term()
                self.expect(")")
                return value, inner
        self.fail("a term")

    def strings(self) -> str:
        # Adjacent strings are one string in Erlang: "abc" "def" is "abcdef".
        parts = []
        while self.tok.kind == "string":
            parts.append(self.take().value)
        return "".join(parts)

    def elements(self, close: str) -> tuple[list, list]:
        """Comma-separated terms up to `close` (the opening bracket is already taken)."""
        values, locs = [], []
        if not self.is_punct(close):
            while True:
                v, loc = self.term()
                values.append(v)
                locs.append(loc)
                if self.is_punct(","):
                    self.take()
                    continue
                if close == "]" and self.is_punct("|"):
                    raise ConfigError("improper lists [Head | Tail] are not supported in a "
                                      "config file; write the elements as [A, B, C]",
                                      self.path, self.tok.line, self.tok.col)
                if not self.is_punct(close):
                    self.fail(f"',' or '{close}'")
                break
        self.take()
        return values, locs

    def tuple_(self):
        first = self.take()
        values, locs = self.elements("}")
        return tuple(values), self.loc(first, locs)

    def list_(self):
        first = self.take()
        values, locs = self.elements("]")
        return values, self.loc(first, locs)

    def map_(self):
        first = self.take()
        if not self.is_punct("{"):
            if self.tok.kind == "atom":
                raise ConfigError("records (#name{...}) are not terms a config file can hold; "
                                  "use a map #{key => value} or a tuple",
                                  self.path, first.line, first.col)
            self.fail("'{' after '#' (a map is #{key => value})")
        self.take()
        pairs, locs = [], []
        if not self.is_punct("}"):
            while True:
                k, kloc = self.term()
                if self.is_punct(":="):
                    raise ConfigError("':=' updates a key of an existing map; to build a map "
                                      "write key => value", self.path, self.tok.line,
                                      self.tok.col)
                self.expect("=>", "'=>'")
                v, vloc = self.term()
                pairs.append((k, v))
                locs += [kloc, vloc]
                if self.is_punct(","):
                    self.take()
                    continue
                if not self.is_punct("}"):
                    self.fail("',' or '}'")
                break
        self.take()
        return _make_map(pairs), self.loc(first, locs)

    def binary(self):
        first = self.take()
        out = bytearray()
        if not self.is_punct(">>"):
            while True:
                self.segment(out)
                if self.is_punct(","):
                    self.take()
                    continue
                if not self.is_punct(">>"):
                    self.fail("',' or '>>'")
                break
        self.take()
        data = bytes(out)
        try:
            value: Any = data.decode("utf-8")
        except UnicodeDecodeError:
            value = data
        return value, self.loc(first)

    def segment(self, out: bytearray) -> None:
        t = self.tok
        if t.kind == "string":
            codes = [ord(c) for c in self.strings()]
        elif t.kind in ("int", "char"):
            codes = [self.take().value]
        elif self.is_punct("-", "+") and self.toks[self.k + 1].kind in ("int", "char"):
            sign = -1 if self.take().value == "-" else 1
            codes = [sign * self.take().value]
        else:
            self.fail("a string or an integer in the binary")
        utf8 = False
        if self.is_punct("/"):
            self.take()
            if not (self.tok.kind == "atom" and self.tok.value == "utf8"):
                raise ConfigError("clusterkit reads only the /utf8 type in a binary "
                                  "(<<\"text\"/utf8>>)", self.path, self.tok.line, self.tok.col)
            self.take()
            utf8 = True
        if self.is_punct(":"):
            raise ConfigError("clusterkit does not read sizes in binaries (<<X:16>>); "
                              "write the bytes, like <<0, 1>>", self.path, self.tok.line,
                              self.tok.col)
        for n in codes:
            if utf8:
                if not _legal_code_point(n):
                    raise ConfigError(f"{n} is not a Unicode code point for /utf8", self.path,
                                      t.line, t.col)
                out += chr(n).encode("utf-8")
            else:
                out.append(n & 0xFF)  # Erlang keeps the low 8 bits, as <<256>> is <<0>>


def _make_map(pairs: list) -> dict:
    m = {freeze(k): v for k, v in pairs}
    exact = {ExactKey(k) for k, _ in pairs}
    if len(exact) == len(m):
        return m
    # Python merged keys that Erlang keeps apart (the atom a and "a", 1 and 1.0):
    # those become ExactKey, like the ETF decoder does.
    groups: dict[Any, set] = {}
    for k, _ in pairs:
        groups.setdefault(freeze(k), set()).add(ExactKey(k))
    out: dict = {}
    for k, v in pairs:
        fk = freeze(k)
        out[ExactKey(k) if len(groups[fk]) > 1 else fk] = v
    return out


# --------------------------------------------------------------------------- reading

def _parse(text: str, path: str) -> list[tuple[Any, Loc]]:
    return _Parser(text, path).terms()


def parse_terms(text: str, path: str = "<string>") -> list:
    """Every dot-ended term in `text`, like file:consult/1 on a file holding it."""
    return [value for value, _ in _parse(text, path)]


def _read_text(path) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read sys.config: {e.strerror or e}: {os.fspath(path)}") \
            from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        # Erlang reads config as UTF-8 unless a `coding: latin-1` comment says otherwise.
        head = data.split(b"\n", 2)[:2]
        if any(re.search(rb"coding\s*[:=]\s*latin-1", line) for line in head):
            return data.decode("latin-1")
        before = data[:e.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise ConfigError("this file is not valid UTF-8; Erlang reads config files as UTF-8 "
                          "unless the first line says %% coding: latin-1",
                          os.fspath(path), line, col) from None


def consult(path) -> list:
    """The terms of a file, like Erlang's file:consult/1."""
    return parse_terms(_read_text(path), os.fspath(path))


_SHAPE = "[{Application, [{Key, Value}, ...]}, ...]."


def _check_sys_config(text: str, path: str):
    """Parse and check the shape Erlang's application controller checks.

    Returns [(app, [(key, value, key_loc, value_loc), ...], app_loc), ...].
    """
    def err(reason, loc: Loc):
        return ConfigError(reason, path, loc.line, loc.col)

    def src(loc: Loc) -> str:
        return _show(text[loc.start:loc.end])

    terms = _parse(text, path)
    if not terms:
        raise ConfigError(f"no term in the file: a sys.config is one list ended by a dot, "
                          f"like {_SHAPE}", path, 1, 1)
    if len(terms) > 1:
        raise err("a second term: a sys.config holds exactly one list ended by a dot "
                  "(Erlang: configuration file must contain ONE list ended by <dot>)",
                  terms[1][1])
    top, top_loc = terms[0]
    if type(top) is not list:
        raise err(f"expected a list {_SHAPE.rstrip('.')} but found {src(top_loc)}", top_loc)
    sections = []
    seen_apps: dict[str, Loc] = {}
    for entry, loc in zip(top, top_loc.items):
        if type(entry) is str:
            raise err(f"{src(loc)} names another config file; clusterkit does not read "
                      "included config files: copy their sections into this one", loc)
        if type(entry) is not tuple or len(entry) != 2:
            raise err(f"expected an {{Application, [{{Key, Value}}, ...]}} tuple but found "
                      f"{src(loc)}", loc)
        app, params = entry
        app_loc, params_loc = loc.items
        if type(app) is not Atom:
            raise err(f"application: {src(app_loc)}; application name must be an atom",
                      app_loc)
        if type(params) is not list:
            raise err(f"application: {app}; parameters must be a list [{{Key, Value}}, ...] "
                      f"but found {src(params_loc)}", params_loc)
        if app in seen_apps:
            raise err(f"duplicate application config: {app} (first at line "
                      f"{seen_apps[app].line})", app_loc)
        seen_apps[app] = app_loc
        checked = []
        seen_keys: dict[str, Loc] = {}
        for param, ploc in zip(params, params_loc.items):
            if type(param) is not tuple or len(param) != 2:
                raise err(f"application: {app}; invalid parameter: {src(ploc)} "
                          "(a parameter is a {Key, Value} tuple)", ploc)
            key, value = param
            key_loc, value_loc = ploc.items
            if type(key) is not Atom:
                raise err(f"application: {app}; invalid parameter name: {src(key_loc)} "
                          "(a name is an atom)", key_loc)
            if key in seen_keys:
                raise err(f"application: {app}; duplicate parameter: {key} (first at line "
                          f"{seen_keys[key].line})", key_loc)
            seen_keys[key] = key_loc
            checked.append((key, value, key_loc, value_loc))
        sections.append((app, checked, app_loc))
    return sections


def parse_sys_config(text: str, path: str = "sys.config") -> list[tuple[Atom, list]]:
    """A sys.config text, checked: [(app, [(key, value), ...]), ...]."""
    return [(app, [(k, v) for k, v, _, _ in params])
            for app, params, _ in _check_sys_config(text, path)]


def read_sys_config(path) -> list[tuple[Atom, list]]:
    """A sys.config file, checked: [(app, [(key, value), ...]), ...]."""
    return parse_sys_config(_read_text(path), os.fspath(path))


# --------------------------------------------------------------------------- kernel

# Kernel parameters Erlang knows; a key close to one of ours but not in this list
# is most likely a typo, which Erlang would silently ignore.
_ERLANG_KERNEL_KEYS = frozenset("""
    browser_cmd connect_all distributed dist_auto_connect dist_listen epmd_module
    erl_epmd_port error_logger error_logger_format_depth global_groups hidden
    inet_backend inet_default_connect_options inet_default_listen_options
    inet_dist_connect_options inet_dist_listen_max inet_dist_listen_min
    inet_dist_listen_options inet_dist_use_interface inet_parse_error_log inetrc
    logger logger_level logger_metadata logger_sasl_compatible net_setuptime
    net_tickintensity net_ticktime permissions prevent_overlapping_partitions
    shell_docs_ansi shell_history shell_history_drop shell_history_file_bytes
    shell_history_path shutdown_func shutdown_timeout source_search_rules
    standard_io_encoding start_boot_server start_ddll start_disk_log start_pg
    start_timer sync_nodes_mandatory sync_nodes_optional sync_nodes_timeout
    boot_server_slaves disk_log epmd_address os_cmd_shell
""".split())

_OURS = ("sync_nodes_optional", "sync_nodes_mandatory", "sync_nodes_timeout", "net_ticktime",
         "connect_all", "inet_dist_listen_min", "inet_dist_listen_max")


def kernel_settings(path) -> dict:
    """The kernel section of a sys.config, with the parameters clusterkit uses checked.

    Keys that are absent stay absent (KERNEL_DEFAULTS has Erlang's defaults); other
    kernel keys are kept as read; other applications' sections are ignored.
    """
    path_s = os.fspath(path)
    text = _read_text(path)
    sections = _check_sys_config(text, path_s)

    def err(key, reason, loc: Loc):
        return ConfigError(f"kernel parameter {key}: {reason}", path_s, loc.line, loc.col)

    def src(loc: Loc) -> str:
        return _show(text[loc.start:loc.end])

    settings: dict[str, Any] = {}
    locs: dict[str, Loc] = {}
    for app, params, _ in sections:
        if app != "kernel":
            continue
        for key, value, key_loc, value_loc in params:
            locs[key] = value_loc
            if key in ("sync_nodes_optional", "sync_nodes_mandatory"):
                value = _node_list(key, value, value_loc, err, src)
            elif key == "sync_nodes_timeout":
                if value == INFINITY and type(value) is Atom:
                    value = INFINITY
                elif type(value) is not int or value < 0:
                    raise err(key, f"expected milliseconds (a positive integer) or infinity "
                                   f"but found {src(value_loc)}", value_loc)
                elif value == 0:
                    raise err(key, "0 is not allowed: Erlang wants a positive number of "
                                   "milliseconds or infinity, and refuses to boot with "
                                   "{badopt,{sync_nodes_timeout,0}}; to not wait at all, "
                                   "leave sync_nodes_timeout out", value_loc)
            elif key == "net_ticktime":
                if type(value) is not int or value <= 0:
                    raise err(key, f"expected seconds (a positive integer) but found "
                                   f"{src(value_loc)}", value_loc)
            elif key == "connect_all":
                if type(value) is not bool:
                    raise err(key, f"expected true or false but found {src(value_loc)}",
                              value_loc)
            elif key in ("inet_dist_listen_min", "inet_dist_listen_max"):
                if type(value) is not int or not 0 <= value <= 65535:
                    raise err(key, f"expected a port number (0 to 65535) but found "
                                   f"{src(value_loc)}", value_loc)
            elif key not in _ERLANG_KERNEL_KEYS:
                close = difflib.get_close_matches(key, _OURS, n=1, cutoff=0.8)
                if close:
                    log.warning("%s:%d:%d: kernel parameter %s is not one Erlang knows, so it "
                                "is ignored; did you mean %s?", path_s, key_loc.line,
                                key_loc.col, key, close[0])
            settings[str(key)] = value
    lo, hi = settings.get("inet_dist_listen_min"), settings.get("inet_dist_listen_max")
    if lo is not None and hi is not None and lo > hi:
        raise err("inet_dist_listen_max", f"{hi} is below inet_dist_listen_min ({lo}), so "
                                          "no port is left to listen on",
                  locs["inet_dist_listen_max"])
    return settings


def _node_list(key, value, loc: Loc, err, src) -> list[Atom]:
    if type(value) is not list:
        raise err(key, f"expected a list of node names, like ['b@127.0.0.1'], but found "
                       f"{src(loc)}", loc)
    nodes = []
    for item, item_loc in zip(value, loc.items):
        if type(item) is str:
            raise err(key, f"{src(item_loc)} is a string, and node names are atoms: write "
                           f"'{item}' (single quotes)", item_loc)
        if type(item) is not Atom:
            raise err(key, f"expected a node name, like 'b@127.0.0.1', but found "
                           f"{src(item_loc)}", item_loc)
        try:
            parse_remote(str(item))
        except InvalidNodeName as e:
            raise err(key, str(e), item_loc) from None
        nodes.append(item)
    return nodes


# --------------------------------------------------------------------------- sync_nodes

def _local_connect(local_node) -> Callable[[str], bool]:
    def connect(name) -> bool:
        try:
            return bool(local_node.runtime.run(local_node.connect(Atom(name))))
        except (OSError, TimeoutError) as e:
            log.debug("sync_nodes: cannot connect to %s: %s", name, e)
            return False
    return connect


def _local_is_up(local_node) -> Callable[[str], bool]:
    def is_up(name) -> bool:
        name = Atom(name)
        if name == local_node.atom:
            return True
        conn = local_node.connections.get(name)
        return conn is not None and conn.up
    return is_up


def sync_nodes(node, settings: dict, *, connect: Callable[[str], bool] | None = None,
               is_up: Callable[[str], bool] | None = None,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> list[Atom]:
    """Wait for the sync_nodes_* nodes, as Erlang's kernel does at boot.

    Tries every listed node, then again every 0.1-0.5 s, until all are up or
    sync_nodes_timeout (ms) passes; a node that connects to us counts too. With
    infinity it waits until every listed node is up, optional ones included, as
    Erlang does. Without sync_nodes_timeout nothing happens, as in Erlang; a
    timeout of 0 (which Erlang's config refuses) means one attempt each.

    Returns the listed nodes that came up. Raises SyncNodesError when mandatory
    nodes are still missing at the end. `connect(name) -> bool` and
    `is_up(name) -> bool` default to the local node's.
    """
    mandatory = [Atom(n) for n in settings.get("sync_nodes_mandatory") or []]
    optional = [Atom(n) for n in settings.get("sync_nodes_optional") or []]
    timeout = settings.get("sync_nodes_timeout")
    if timeout is None or not (mandatory or optional):
        return []
    if connect is None:
        connect = _local_connect(node)
    if is_up is None:
        is_up = _local_is_up(node)
    wanted = list(dict.fromkeys(mandatory + optional))
    forever = timeout == INFINITY
    deadline = None if forever else clock() + int(timeout) / 1000
    up: set[Atom] = set()
    interval = 0.1
    log.debug("sync_nodes: waiting for %s (sync_nodes_timeout %s)", wanted, timeout)
    while True:
        for name in wanted:
            if name not in up and (is_up(name) or connect(name)):
                up.add(name)
        if len(up) == len(wanted):
            break
        if not forever:
            left = deadline - clock()
            if left <= 0:
                break
            sleep(min(interval, left))
        else:
            sleep(interval)
        interval = min(interval * 1.5, 0.5)
    missing = [n for n in mandatory if n not in up]
    if missing:
        raise SyncNodesError(missing, timeout)
    return [n for n in wanted if n in up]


def sync_nodes_for(local_node, settings: dict) -> list[Atom]:
    """sync_nodes for a started LocalNode: what ck.start(config=...) calls."""
    return sync_nodes(local_node, settings, connect=_local_connect(local_node),
                      is_up=_local_is_up(local_node))
