"""Erlang term syntax: what file:consult/1 reads (sys.config, .hosts.erlang).

A small hand-written tokenizer and recursive-descent parser: there is no maintained
Python library for Erlang term syntax, and a hand-written one can report errors as a
learner needs them, with `path:line:column:`, what was expected and what was found.
Lines and columns count the way erl_scan counts them (both from 1, a tab is one
column), so a position here is the position Erlang reports.

Terms map to clusterkit's types: atoms -> Atom (true/false -> bool), integers and
`$c` characters -> int, floats -> float, "strings" -> str (Erlang char lists,
used as strings in config), <<"binaries">> -> str when valid UTF-8, else bytes,
tuples -> tuple, lists -> list, #{maps} -> dict.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from .etf import Atom, ExactKey, freeze

__all__ = ["TermError", "Loc", "parse_terms", "parse_located", "consult", "read_text",
           "show", "MAX_DEPTH"]


class TermError(ValueError):
    """Text that is not Erlang terms, or a file that cannot be read.

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
        return TermError(reason, self.path, line, col)

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


def show(text: str, limit: int = 40) -> str:
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
            return show(src)
        return f"'{show(src)}'"

    def fail(self, expected: str, t: Token | None = None, hint: str = ""):
        t = t or self.tok
        line, col = t.line, t.col
        if t.kind == "eof" and self.k > 0:
            # Point just after the last token: that is where the missing thing goes.
            last = self.toks[self.k - 1]
            line, col = last.end_line, last.end_col
        reason = f"expected {expected} but found {self.describe(t)}"
        hint = hint or self.hint(t)
        raise TermError(reason + (f"; {hint}" if hint else ""), self.path, line, col)

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
                raise TermError(f"terms nested more than {MAX_DEPTH} deep", self.path,
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
                    raise TermError("improper lists [Head | Tail] are not supported in a "
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
                raise TermError("records (#name{...}) are not terms a config file can hold; "
                                  "use a map #{key => value} or a tuple",
                                  self.path, first.line, first.col)
            self.fail("'{' after '#' (a map is #{key => value})")
        self.take()
        pairs, locs = [], []
        if not self.is_punct("}"):
            while True:
                k, kloc = self.term()
                if self.is_punct(":="):
                    raise TermError("':=' updates a key of an existing map; to build a map "
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
                raise TermError("clusterkit reads only the /utf8 type in a binary "
                                  "(<<\"text\"/utf8>>)", self.path, self.tok.line, self.tok.col)
            self.take()
            utf8 = True
        if self.is_punct(":"):
            raise TermError("clusterkit does not read sizes in binaries (<<X:16>>); "
                              "write the bytes, like <<0, 1>>", self.path, self.tok.line,
                              self.tok.col)
        for n in codes:
            if utf8:
                if not _legal_code_point(n):
                    raise TermError(f"{n} is not a Unicode code point for /utf8", self.path,
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

def parse_located(text: str, path: str = "<string>") -> list[tuple[Any, Loc]]:
    """Every term with its Loc, for callers that check shapes and point at a place."""
    return _Parser(text, path).terms()


def parse_terms(text: str, path: str = "<string>") -> list:
    """Every dot-ended term in `text`, like file:consult/1 on a file holding it."""
    return [value for value, _ in parse_located(text, path)]


def read_text(path, what: str = "file") -> str:
    """A file's text as Erlang reads it: UTF-8 (or latin-1 when its first lines say so)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TermError(f"cannot read {what}: {e.strerror or e}: {os.fspath(path)}") \
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
        raise TermError("this file is not valid UTF-8; Erlang reads config files as UTF-8 "
                          "unless the first line says %% coding: latin-1",
                          os.fspath(path), line, col) from None


def consult(path, what: str = "file") -> list:
    """The terms of a file, like Erlang's file:consult/1."""
    return parse_terms(read_text(path, what), os.fspath(path))
