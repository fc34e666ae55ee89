"""Distribution capability flags (erts/doc, "Distribution Flags").

The values are OTP's. Note that DFLAG_MANDATORY_25_DIGEST is bit 26: one version of the
protocol document says bit 36, but OTP's dist.hrl and erts both use 0x4000000.
"""
from __future__ import annotations

PUBLISHED = 0x1
ATOM_CACHE = 0x2
EXTENDED_REFERENCES = 0x4
DIST_MONITOR = 0x8
FUN_TAGS = 0x10
DIST_MONITOR_NAME = 0x20
HIDDEN_ATOM_CACHE = 0x40
NEW_FUN_TAGS = 0x80
EXTENDED_PIDS_PORTS = 0x100
EXPORT_PTR_TAG = 0x200
BIT_BINARIES = 0x400
NEW_FLOATS = 0x800
UNICODE_IO = 0x1000
DIST_HDR_ATOM_CACHE = 0x2000
SMALL_ATOM_TAGS = 0x4000
UTF8_ATOMS = 0x10000
MAP_TAG = 0x20000
BIG_CREATION = 0x40000
SEND_SENDER = 0x80000
BIG_SEQTRACE_LABELS = 0x100000
EXIT_PAYLOAD = 0x400000
FRAGMENTS = 0x800000
HANDSHAKE_23 = 0x1000000
UNLINK_ID = 0x2000000
MANDATORY_25_DIGEST = 0x4000000
SPAWN = 1 << 32
NAME_ME = 1 << 33
V4_NC = 1 << 34
ALIAS = 1 << 35

NAMES = {
    PUBLISHED: "PUBLISHED", ATOM_CACHE: "ATOM_CACHE",
    EXTENDED_REFERENCES: "EXTENDED_REFERENCES", DIST_MONITOR: "DIST_MONITOR",
    FUN_TAGS: "FUN_TAGS", DIST_MONITOR_NAME: "DIST_MONITOR_NAME",
    HIDDEN_ATOM_CACHE: "HIDDEN_ATOM_CACHE", NEW_FUN_TAGS: "NEW_FUN_TAGS",
    EXTENDED_PIDS_PORTS: "EXTENDED_PIDS_PORTS", EXPORT_PTR_TAG: "EXPORT_PTR_TAG",
    BIT_BINARIES: "BIT_BINARIES", NEW_FLOATS: "NEW_FLOATS", UNICODE_IO: "UNICODE_IO",
    DIST_HDR_ATOM_CACHE: "DIST_HDR_ATOM_CACHE", SMALL_ATOM_TAGS: "SMALL_ATOM_TAGS",
    UTF8_ATOMS: "UTF8_ATOMS", MAP_TAG: "MAP_TAG", BIG_CREATION: "BIG_CREATION",
    SEND_SENDER: "SEND_SENDER", BIG_SEQTRACE_LABELS: "BIG_SEQTRACE_LABELS",
    EXIT_PAYLOAD: "EXIT_PAYLOAD", FRAGMENTS: "FRAGMENTS", HANDSHAKE_23: "HANDSHAKE_23",
    UNLINK_ID: "UNLINK_ID", MANDATORY_25_DIGEST: "MANDATORY_25_DIGEST", SPAWN: "SPAWN",
    NAME_ME: "NAME_ME", V4_NC: "V4_NC", ALIAS: "ALIAS",
}

# What OTP 25 refuses to connect without (0x1070F94), and what OTP 26 adds.
MANDATORY_25 = (EXTENDED_REFERENCES | FUN_TAGS | EXTENDED_PIDS_PORTS | NEW_FUN_TAGS
                | EXPORT_PTR_TAG | BIT_BINARIES | NEW_FLOATS | UTF8_ATOMS | MAP_TAG
                | BIG_CREATION | HANDSHAKE_23)
MANDATORY_26 = MANDATORY_25 | V4_NC | UNLINK_ID

# What a clusterkit node offers. Only what the runtime implements: no atom cache and no
# fragments (both optional), no ALIAS (we never hand out aliases; replies to Erlang's
# aliased calls go to the pid). SPAWN is offered because OTP 25's rpc:call is erpc, which
# spawns `erpc:execute_call/4` on the target; we serve that one spawn (see rex.py).
OFFERED = (MANDATORY_26 | MANDATORY_25_DIGEST | DIST_MONITOR | DIST_MONITOR_NAME
           | UNICODE_IO | SMALL_ATOM_TAGS | SEND_SENDER | BIG_SEQTRACE_LABELS
           | EXIT_PAYLOAD | SPAWN)

# What we require of a peer: OTP 25's mandatory set (a real OTP 25 node has it).
REQUIRED = MANDATORY_25


def expand(flags: int) -> int:
    """A peer's flags as OTP 25's dist_util reads them (expand_mandatory_25_flag): from
    OTP 25 on, MANDATORY_25_DIGEST alone stands for every flag of MANDATORY_25."""
    return flags | MANDATORY_25 if flags & MANDATORY_25_DIGEST else flags


def names_of(flags: int) -> list[str]:
    """The names of the bits set in `flags`, lowest first (unknown bits as hex)."""
    out = []
    bit = 1
    while bit <= flags:
        if flags & bit:
            out.append(NAMES.get(bit, f"UNKNOWN<{bit:X}>"))
        bit <<= 1
    return out


def missing(required: int, offered: int) -> list[str]:
    """Names of the required flags that `offered` lacks, in OTP's order (highest first)."""
    return list(reversed(names_of(required & ~offered)))
