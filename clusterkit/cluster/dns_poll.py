"""libcluster's Cluster.Strategy.DNSPoll: nodes are `basename@ip` for each A/AAAA answer.

    ck.cluster.start({"dns": {"strategy": "dns_poll", "config": {
        "query": "app.lab.internal", "node_basename": "app",
        "resolver": ("127.0.0.1", 5353)}}})

Keys (libcluster 3.5): `query`, `node_basename`, `polling_interval` (ms, 5000), and
`resolver`: a nameserver address, or a function from the query to a list of addresses
(libcluster's `resolver`). Added: `node_basename` may be a list (libcluster #191);
`prune=False` keeps nodes that leave the answer (libcluster #190); `hostname=True`
names nodes by the PTR name of each address, `basename@host` (the Convoy/Railway text's
host-name mode). libcluster's doc says `poll_interval`; its code reads
`polling_interval`, and so does this.
"""
from __future__ import annotations

from ..dns.client import LookupFailed, Nameserver
from .base import REQUIRED, STRATEGIES
from ._dns_polling import DnsPolling, basenames, need_text


class DNSPoll(DnsPolling):
    name = "dns_poll"
    defaults = {"query": REQUIRED, "node_basename": REQUIRED, "polling_interval": 5000,
                "resolver": None, "prune": True, "hostname": False}
    aliases = {"poll_interval": "polling_interval", "basename": "node_basename",
               "node_base_name": "node_basename", "nameserver": "resolver"}

    def validate(self) -> None:
        need_text(self, "query")
        self.basenames = basenames(self, "node_basename")
        for key in ("prune", "hostname"):
            if not isinstance(self.config[key], bool):
                raise self.config_error(f"{key} is True or False, not {self.config[key]!r}",
                                        key)
        super().validate()
        if self.config["hostname"] and not isinstance(self.resolver, Nameserver):
            raise self.config_error("hostname=True asks the nameserver for PTR records, so "
                                    "resolver must be a nameserver address; a resolver "
                                    "function can return host names itself", "hostname")

    def names(self) -> list[str]:
        hosts = self.addresses(self.config["query"])
        if self.config["hostname"]:
            hosts = self._host_names(hosts)
        return [f"{base}@{host}" for host in sorted(set(hosts)) for base in self.basenames]

    def _host_names(self, addresses) -> list[str]:
        import dns.reversename
        out = []
        for address in addresses:
            try:
                ptr = self.resolver.query(str(dns.reversename.from_address(address)), "PTR")
            except LookupFailed as exc:
                self.debug(f"no PTR name for {address}: {exc.reason}")
                continue
            out += [r.target.to_text(omit_final_dot=True) for r in ptr]
        return out


STRATEGIES[DNSPoll.name] = DNSPoll
