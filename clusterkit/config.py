"""sys.config: the kernel parameters clusterkit uses, and sync_nodes.

A release's `sys.config` is one Erlang term ended by a dot:

    [{kernel, [{sync_nodes_mandatory, ['b@127.0.0.1']},
               {sync_nodes_timeout, 5000}]}].

Erlang reads it with `file:consult/1`; `clusterkit.erlterm` reads the same syntax.
This module checks the shape Erlang's application controller checks and gives
clusterkit the kernel parameters it uses. `sync_nodes` then does what Erlang's kernel
does at boot with `sync_nodes_mandatory`, `sync_nodes_optional` and
`sync_nodes_timeout`.
"""
from __future__ import annotations

import difflib
import logging
import os
import time
from typing import Any, Callable

from .erlterm import (MAX_DEPTH, Loc, TermError, consult, parse_located, parse_terms,
                      read_text, show)
from .etf import Atom
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
    "MAX_DEPTH",
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


# A config file that cannot be read, or that Erlang would refuse: the term reader's
# error, so a syntax error and a bad kernel value are caught the same way.
ConfigError = TermError


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



_SHAPE = "[{Application, [{Key, Value}, ...]}, ...]."


def _check_sys_config(text: str, path: str):
    """Parse and check the shape Erlang's application controller checks.

    Returns [(app, [(key, value, key_loc, value_loc), ...], app_loc), ...].
    """
    def err(reason, loc: Loc):
        return ConfigError(reason, path, loc.line, loc.col)

    def src(loc: Loc) -> str:
        return show(text[loc.start:loc.end])

    terms = parse_located(text, path)
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
    return parse_sys_config(read_text(path, "sys.config"), os.fspath(path))


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
    text = read_text(path, "sys.config")
    sections = _check_sys_config(text, path_s)

    def err(key, reason, loc: Loc):
        return ConfigError(f"kernel parameter {key}: {reason}", path_s, loc.line, loc.col)

    def src(loc: Loc) -> str:
        return show(text[loc.start:loc.end])

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
