"""libcluster's Cluster.Strategy.Kubernetes.DNSSRV: the SRV records of a headless
service, one per pod of a StatefulSet.

    {"strategy": "kubernetes_dnssrv", "config": {
        "service": "myapp", "namespace": "default", "application_name": "myapp",
        "resolver": ("127.0.0.1", 5353)}}

It asks SRV for `service.namespace.svc.cluster.local.` and names each node
`application_name@<SRV target>` (the pod's stable host name, without the final dot).
`cluster_domain` (default "cluster.local") changes the domain, for clusters set up with
another one; `resolver` is a nameserver address or a function from the query to a list
of target names.
"""
from __future__ import annotations

from ..dns.client import Nameserver
from .base import REQUIRED, STRATEGIES
from ._dns_polling import DnsPolling, _host_text, need_text


class KubernetesDNSSRV(DnsPolling):
    name = "kubernetes_dnssrv"
    defaults = {"service": REQUIRED, "namespace": REQUIRED, "application_name": REQUIRED,
                "polling_interval": 5000, "resolver": None, "cluster_domain": "cluster.local"}
    aliases = {"poll_interval": "polling_interval", "app_name": "application_name",
               "kubernetes_namespace": "namespace", "domain": "cluster_domain"}

    def validate(self) -> None:
        for key in ("service", "namespace", "application_name", "cluster_domain"):
            need_text(self, key)
        super().validate()

    def query(self) -> str:
        c = self.config
        return f"{c['service']}.{c['namespace']}.svc.{c['cluster_domain'].strip('.')}."

    def describe(self) -> str:
        return repr(self.query())

    def names(self) -> list[str]:
        if isinstance(self.resolver, Nameserver):
            targets = [r.target.to_text(omit_final_dot=True)
                       for r in self.resolver.query(self.query(), "SRV")]
        else:
            targets = [_host_text(t) for t in self.resolver(self.query())]
        app = self.config["application_name"]
        return [f"{app}@{t}" for t in sorted(set(targets))]


STRATEGIES[KubernetesDNSSRV.name] = KubernetesDNSSRV
