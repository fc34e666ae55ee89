"""clusterkit's EPMD keeps one registry per extra loopback address (127.0.0.2, ...)."""
from __future__ import annotations

import asyncio

from clusterkit import epmd
from clusterkit.epmd.daemon import EpmdDaemon
from clusterkit.dns import hosts


def test_one_name_on_several_loopback_addresses():
    async def scenario():
        daemon = EpmdDaemon(0, None)          # every address, like the real daemon
        await daemon.start()
        port = daemon.port
        try:
            regs = [await epmd.register("app", 40000 + i, epmd_port=port, host=f"127.0.0.{i}")
                    for i in (2, 3)]
            main = await epmd.register("app", 40001, epmd_port=port)          # 127.0.0.1
            for i in (2, 3):
                info = await epmd.port_please(f"127.0.0.{i}", "app", port)
                assert info.port == 40000 + i
            assert (await epmd.port_please("127.0.0.1", "app", port)).port == 40001
            assert await epmd.names("127.0.0.3", port) == (port, [("app", 40003)])
            try:
                await epmd.register("app", 40009, epmd_port=port, host="127.0.0.2")
            except epmd.NameInUse as exc:
                assert "epmd -address 127.0.0.2" in str(exc)
            else:
                raise AssertionError("a second app on 127.0.0.2 was accepted")
            for r in (*regs, main):
                await r.close()
        finally:
            daemon.close()
            await daemon.wait_closed()
    asyncio.run(scenario())


def test_listen_and_register_addresses():
    assert hosts.listen_address("127.0.0.2") == "127.0.0.2"
    assert hosts.epmd_host("127.0.0.2") == "127.0.0.2"
    assert hosts.listen_address("10.1.0.95") == "0.0.0.0"
    assert hosts.epmd_host("0.0.0.0") == "127.0.0.1"
    assert hosts.listen_address("convoy2.railway.internal",
                                lambda h: "127.0.0.6") == "127.0.0.6"
    assert hosts.inetrc(("127.0.0.1", 8053)) == (
        "{lookup, [file, dns]}.\n{resolv_conf, []}.\n{nameserver, {127,0,0,1}, 8053}.\n")
