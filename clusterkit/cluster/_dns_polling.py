"""What the DNS strategies share: a poll every `polling_interval` ms, libcluster's diff
(disconnect the names that left the answer, connect the ones in it), and one log line
per change of DNS health, not one per poll.

A subclass gives `defaults` and `names()` (the node names the DNS answer means now,
raising LookupFailed on a DNS failure). The resolver comes from the `resolver` key:
a nameserver address, or a function (libcluster's `resolver`), so tests replace it.
"""
from __future__ import annotations

from ..dns.client import LookupFailed, Nameserver, resolver_from
from ..etf import Atom
from .base import Strategy


class DnsPolling(Strategy):
    prune_key = None        # the config key that turns pruning off, when there is one

    def validate(self) -> None:
        interval = self.config["polling_interval"]
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise self.config_error(f"polling_interval is in milliseconds, a number above 0; "
                                    f"not {interval!r}", "polling_interval")
        value = self.config.get("resolver")
        if callable(value) and not isinstance(value, Nameserver):
            self.resolver = value
        else:
            try:
                self.resolver = resolver_from(value)
            except ValueError as exc:
                raise self.config_error(str(exc), "resolver") from None
        self.meta: set[Atom] = set()
        self._failure: str | None = None
        self._timer = None

    # -- the loop

    def init(self) -> None:
        self.poll()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().stop()

    def poll(self) -> None:
        try:
            self._poll_once()
        finally:
            if self.running:
                self._timer = self.call_later(self.config["polling_interval"] / 1000, self.poll)

    def _poll_once(self) -> None:
        try:
            found = {Atom(n) for n in self.names()} - {self.self_node}
        except LookupFailed as exc:
            self._dns_failed(exc.reason, str(exc))
            return
        except Exception as exc:     # a resolver function that raised
            self._dns_failed(type(exc).__name__, f"resolver failed: {exc!r}")
            return
        if self._failure is not None:
            self.info(f"DNS answers again for {self.describe()}")
            self._failure = None
        # meta is the last answer (libcluster keeps only the nodes it connected itself,
        # so a node that connected to us first and then left the answer stayed).
        new = set(found)
        removed = self.meta - found
        if removed and self.config.get("prune", True):
            for node, _ in self.disconnect_nodes(sorted(removed)):
                new.add(node)          # libcluster: try again at the next poll
        # Every poll asks for every node: one that dropped comes back (libcluster #148).
        self.connect_nodes(sorted(found))
        self.meta = new

    def _dns_failed(self, reason: str, text: str) -> None:
        if self._failure != reason:    # one line per change of state, then quiet
            self.warn(f"lookup of {self.describe()} failed: {text}; polling goes on")
            self._failure = reason

    # -- for subclasses

    def describe(self) -> str:
        return repr(self.config.get("query") or self.config.get("service"))

    def names(self) -> list:
        raise NotImplementedError

    def addresses(self, query: str) -> list[str]:
        """A and AAAA, through the configured resolver (or the function's answer)."""
        if isinstance(self.resolver, Nameserver):
            return self.resolver.addresses(query)
        return [_host_text(a) for a in self.resolver(query)]

    def status(self) -> dict:
        out = super().status()
        out["dns"] = "ok" if self._failure is None else self._failure
        return out


def _host_text(value) -> str:
    """An address as a resolver function may give it: text, bytes, or Erlang's tuple."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, tuple) and len(value) == 4:
        return ".".join(str(x) for x in value)
    if isinstance(value, tuple) and len(value) == 8:
        import ipaddress
        return str(ipaddress.IPv6Address(b"".join(int(x).to_bytes(2, "big") for x in value)))
    return str(value).rstrip(".")


def basenames(strategy, key: str) -> list[str]:
    """A basename, or several (libcluster #191), each checked."""
    value = strategy.config[key]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise strategy.config_error(f"{key} is a node name's part before the @, or a list of "
                                    f"them; not {value!r}", key)
    for name in names:
        if not isinstance(name, str) or not name or "@" in name:
            raise strategy.config_error(f"{key}: {name!r} is not a name part before the @ "
                                        f"(like \"app\")", key)
    return list(names)


def need_text(strategy, key: str) -> str:
    value = strategy.config[key]
    if not isinstance(value, str) or not value.strip():
        raise strategy.config_error(f"{key} must be a non-empty string, not {value!r}", key)
    return value
