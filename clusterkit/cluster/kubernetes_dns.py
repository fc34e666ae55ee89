"""libcluster's Cluster.Strategy.Kubernetes.DNS: the A records of a headless service.

    {"strategy": "kubernetes_dns", "config": {
        "service": "myapp-headless.default.svc.cluster.local",
        "application_name": "myapp", "resolver": ("127.0.0.1", 5353)}}

Each address is one pod; the nodes are `application_name@ip`. Keys: `service`,
`application_name`, `polling_interval` (ms, 5000), and `resolver` as in dns_poll.
libcluster asks A records only, and so does this.
"""
from __future__ import annotations

from ..dns.client import Nameserver
from .base import REQUIRED, STRATEGIES
from ._dns_polling import DnsPolling, _host_text, need_text


class KubernetesDNS(DnsPolling):
    name = "kubernetes_dns"
    defaults = {"service": REQUIRED, "application_name": REQUIRED, "polling_interval": 5000,
                "resolver": None}
    aliases = {"poll_interval": "polling_interval", "app_name": "application_name",
               "node_basename": "application_name", "query": "service"}

    def validate(self) -> None:
        need_text(self, "service")
        need_text(self, "application_name")
        super().validate()

    def names(self) -> list[str]:
        service = self.config["service"]
        if isinstance(self.resolver, Nameserver):
            ips = [r.address for r in self.resolver.query(service, "A")]
        else:
            ips = [_host_text(a) for a in self.resolver(service)]
        app = self.config["application_name"]
        return [f"{app}@{ip}" for ip in sorted(set(ips))]


STRATEGIES[KubernetesDNS.name] = KubernetesDNS
