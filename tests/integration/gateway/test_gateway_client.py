"""The engine-side admin client against a real gateway process."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from juanie.engines.base import GoldenSignals
from juanie.engines.local.gateway import GatewayAdminError, GatewayClient
from tests.integration.gateway.gateway_helpers import Backend, GatewayProc, load, route


async def test_client_drives_routes_weights_faults_and_reads_signals(
    gateway: GatewayProc, backends: Callable[..., Backend]
) -> None:
    stable, canary = backends("stable"), backends("canary")
    async with GatewayClient.from_state_dir(gateway.state_dir) as client:
        assert await client.healthy()
        await client.put_routes(
            [
                route(
                    backends=[
                        {"version": "s1", "track": "stable", "weight": 100, "endpoints": [stable.endpoint]},
                        {"version": "c1", "track": "canary", "weight": 0, "endpoints": [canary.endpoint]},
                    ]
                )
            ]
        )
        assert [r["name"] for r in await client.get_routes()] == ["shop-dev/payment"]
        updated = await client.set_weights("shop-dev/payment", {"stable": 0, "canary": 100})
        assert [b["weight"] for b in updated["backends"]] == [0, 100]
        outcomes = await load(gateway.listen, "/shop-dev/payment/", total=40)
        assert {o.version for o in outcomes} == {"c1"}
        signals = await client.signals("shop-dev", "payment", 60)
        assert isinstance(signals["c1"], GoldenSignals)
        assert signals["c1"].requests == 40 and signals["c1"].error_ratio == 0.0
        assert await client.inflight(canary.endpoint) == 0
        assert await client.wait_drained(canary.endpoint, timeout=5)
        fault = await client.set_fault("shop-dev/payment", {"abort_percent": 100})
        assert fault["fault"]["abort_percent"] == 100
        assert "juanie_gateway_requests_total" in await client.metrics()
        with pytest.raises(GatewayAdminError, match="no route named") as err:
            await client.set_weights("shop-dev/nothing", {"stable": 1})
        assert err.value.status == 404
        with pytest.raises(GatewayAdminError, match="400"):
            await client.put_routes([{"name": "bad"}])
    async with GatewayClient(gateway.admin_url, "wrong-token") as bad:
        with pytest.raises(GatewayAdminError, match="401") as err:
            await bad.get_routes()
        assert "wrong-token" not in str(err.value)


async def test_client_reports_a_missing_gateway_clearly(tmp_path) -> None:
    with pytest.raises(GatewayAdminError, match="no running gateway"):
        GatewayClient.from_state_dir(tmp_path)
