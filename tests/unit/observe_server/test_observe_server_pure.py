"""The pure parts of observe in the server: who owns a namespace, process samples and scrape targets, rules from
juanie.yaml, the ownership route, channel validation and sealing, silences from requests, the CLI sparkline."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from juanie.api.routes.observe import SilenceIn, build_silence
from juanie.cli.observe_cmds import sparkline
from juanie.controllers.observe import ConfigError, ObserveConfig
from juanie.controllers.observe_channels import ChannelError, build_channel, seal, validate_channel
from juanie.controllers.observe_collect import identify, process_samples, scrape_targets, service_of
from juanie.controllers.observe_rules import PROJECT_RECEIVER, Timing, owners, route_for, rules_for_spec
from juanie.domain.errors import Invalid
from juanie.observe.alerts.route import match_routes
from juanie.observe.alerts.rules import AlertRule
from juanie.observe.notify.channels import EmailChannel, HttpChannel
from juanie.spec import load_spec
from juanie.store.crypto import SecretBox, SecretKeyError

MICROSHOP = Path(__file__).resolve().parents[3] / "examples" / "microshop"


@dataclass
class Workload:
    name: str
    instances: list[dict[str, Any]] = field(default_factory=list)


def _instance(name: str, port: int, pid: int | None, ready: bool, track: str = "stable", restarts: int = 0) -> dict:
    return {
        "name": name,
        "port": port,
        "pid": pid,
        "ready": ready,
        "track": track,
        "version": "v1",
        "restarts": restarts,
        "cpu_cores": 0.25,
    }


def test_a_namespace_belongs_to_the_project_whose_environment_has_it_even_for_direct_applies() -> None:
    known = {"shop-dev": ("shop", "dev")}
    assert identify("shop-dev", known, "direct") == identify("shop-dev", known, "shop")
    assert identify("shop-dev", known, "direct").project == "shop"
    unknown = identify("scratch", known, "direct")
    assert (unknown.project, unknown.env, unknown.namespace) == ("direct", "scratch", "scratch")


def test_canary_workloads_count_for_their_service() -> None:
    assert service_of("payment-canary", "canary") == "payment"
    assert service_of("payment", "stable") == "payment"
    assert service_of("payment-preview", "canary") == "payment-preview"


def test_process_samples_label_each_replica_and_skip_memory_of_stopped_ones() -> None:
    ident = identify("shop-dev", {"shop-dev": ("shop", "dev")})
    workloads = [
        Workload("api", [_instance("api-1", 9001, 41, True, restarts=2), _instance("api-2", 9002, None, False)])
    ]
    samples = process_samples(ident, workloads, {41: 5_000_000}, 100.0)
    by = {(s.name, s.labels["instance"]): s for s in samples}
    assert by[("juanie_process_up", "api-1")].value == 1.0 and by[("juanie_process_up", "api-2")].value == 0.0
    assert by[("juanie_process_restarts_total", "api-1")].value == 2.0
    assert by[("juanie_process_memory_bytes", "api-1")].value == 5_000_000.0
    assert ("juanie_process_memory_bytes", "api-2") not in by
    labels = by[("juanie_process_up", "api-1")].labels
    assert labels == {
        "project": "shop",
        "env": "shop-dev",
        "service": "api",
        "version": "v1",
        "track": "stable",
        "instance": "api-1",
    }


def test_scrape_targets_use_the_project_as_job_and_honour_metrics_paths() -> None:
    ident = identify("shop-dev", {"shop-dev": ("shop", "dev")})
    workloads = [
        Workload("api", [_instance("api-1", 9001, 41, True)]),
        Workload("quiet", [_instance("q-1", 9003, 5, True)]),
    ]
    targets = scrape_targets(ident, workloads, {"api": "/stats", "quiet": None}, interval=5, timeout=10)
    assert [t.url for t in targets] == ["http://127.0.0.1:9001/stats"]
    assert targets[0].timeout == 5  # never longer than the interval
    assert targets[0].target_labels == {
        "project": "shop",
        "env": "shop-dev",
        "service": "api",
        "version": "v1",
        "job": "shop",
        "instance": "127.0.0.1:9001",
    }


def test_microshop_rules_are_the_rendered_ones_with_local_meanings_for_container_metrics() -> None:
    spec = load_spec(MICROSHOP)
    embedded = rules_for_spec(spec, embedded=True)
    names = [r.name for r in embedded.rules]
    assert names == [
        "ServiceDown",
        "HighErrorRate",
        "HighLatency",
        "HighCPU",
        "FrequentRestarts",
        "PaymentProviderErrors",
    ]
    cpu = next(r for r in embedded.rules if r.name == "HighCPU")
    assert isinstance(cpu, AlertRule) and "juanie_process_cpu_ratio" in cpu.expr and cpu.for_seconds == 900
    assert set(embedded.errors) == {"HighMemory"} and "Prometheus URL" in embedded.errors["HighMemory"]
    error_rate = next(r for r in embedded.rules if r.name == "HighErrorRate")
    assert error_rate.severity == "P1" and error_rate.labels["project"] == "microshop"
    with_prometheus = rules_for_spec(spec, embedded=False)
    assert "HighCPU" in with_prometheus.errors and "HighCPU" not in [r.name for r in with_prometheus.rules]


def test_team_alerts_reach_the_team_and_the_project_others_only_the_project() -> None:
    route = route_for(["alertname", "env"], ["web"], Timing(1, 2, 3))
    team_alert = [r.receiver for r in match_routes(route, {"alertname": "X", "team": "web", "env": "a"})]
    assert team_alert == ["team:web", PROJECT_RECEIVER]
    assert [r.receiver for r in match_routes(route, {"alertname": "X", "team": "ops"})] == [PROJECT_RECEIVER]
    routed = match_routes(route, {"alertname": "X", "team": "web", "env": "a"})[0]
    assert (routed.group_wait, routed.group_interval, routed.repeat_interval) == (1, 2, 3)
    assert owners(load_spec(MICROSHOP)) == dict.fromkeys(("user", "product", "order", "payment"), "shop-platform")


def test_channel_secrets_are_sealed_and_shown_redacted() -> None:
    box = SecretBox(b"k" * 32)
    spec = validate_channel(
        {
            "name": "ding",
            "kind": "dingtalk",
            "url": "https://oapi.dingtalk.com/robot/send?access_token=SECRET1",
            "secret": "SIGN2",
        }
    )
    assert "SECRET1" not in json.dumps(spec.shown) and "access_token=***" in spec.shown["target"]
    sealed = seal(box, spec, "shop", "")
    assert b"SECRET1" not in sealed and b"SIGN2" not in sealed
    channel = build_channel(box, project="shop", team="", name="ding", kind="dingtalk", shown=spec.shown, sealed=sealed)
    assert isinstance(channel, HttpChannel) and channel.secret == "SIGN2" and channel.url.endswith("SECRET1")
    with pytest.raises(SecretKeyError):  # a blob cannot be moved to another channel's row
        build_channel(box, project="other", team="", name="ding", kind="dingtalk", shown=spec.shown, sealed=sealed)


def test_email_channels_keep_the_password_sealed() -> None:
    box = SecretBox(b"k" * 32)
    spec = validate_channel(
        {
            "name": "mail",
            "kind": "email",
            "host": "smtp.example.com",
            "port": 587,
            "sender": "j@example.com",
            "recipients": ["a@example.com"],
            "password": "pw",
        }
    )
    assert "pw" not in json.dumps(spec.shown)
    channel = build_channel(
        box, project="", team="web", name="mail", kind="email", shown=spec.shown, sealed=seal(box, spec, "", "web")
    )
    assert isinstance(channel, EmailChannel) and channel.password == "pw" and channel.recipients == ("a@example.com",)


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"name": "Bad Name", "kind": "webhook", "url": "http://x"}, "name"),
        ({"name": "a", "kind": "pager", "url": "http://x"}, "kind"),
        ({"name": "a", "kind": "slack", "url": "ftp://x"}, "url"),
        ({"name": "a", "kind": "slack", "url": "http://x", "secret": "s"}, "secret"),
        ({"name": "a", "kind": "email", "host": "h", "sender": "j@x.org", "recipients": []}, "recipients"),
        ({"name": "a", "kind": "email", "host": "h", "port": 70000, "sender": "j@x.org"}, "port"),
    ],
)
def test_bad_channels_name_the_field(body: dict[str, Any], location: str) -> None:
    with pytest.raises(ChannelError) as caught:
        validate_channel(body)
    assert caught.value.location == location and str(caught.value).startswith(location)


def test_silences_from_requests_take_matcher_strings_and_durations() -> None:
    body = SilenceIn(project="shop", matchers="alertname=HighErrorRate service=payment", duration="2h", comment="x")
    silence = build_silence(body, "ana", 1000.0, "id1")
    assert [str(m) for m in silence.matchers] == ['alertname="HighErrorRate"', 'service="payment"']
    assert (silence.starts_at, silence.ends_at, silence.created_by) == (1000.0, 1000.0 + 7200, "ana")
    with pytest.raises(Invalid, match="at least one matcher must not match an empty label"):
        build_silence(SilenceIn(project="s", matchers=['env=~".*"'], duration="1h", comment="x"), "a", 0, "i")
    with pytest.raises(Invalid, match="exactly one of ends_at or duration"):
        build_silence(SilenceIn(project="s", matchers=["a=b"], comment="x"), "a", 0, "i")
    with pytest.raises(Invalid, match="duration"):
        build_silence(SilenceIn(project="s", matchers=["a=b"], duration="soon", comment="x"), "a", 0, "i")


def test_observe_config_reads_numbers_and_refuses_nonsense() -> None:
    config = ObserveConfig.from_env({"JUANIE_OBSERVE_INTERVAL": "2", "JUANIE_ALERT_GROUP_WAIT": "0"}, "http://j")
    assert (config.interval, config.eval_interval, config.group_wait, config.external_url) == (2, 2, 0, "http://j")
    with pytest.raises(ConfigError, match="JUANIE_OBSERVE_INTERVAL: expected a number"):
        ObserveConfig.from_env({"JUANIE_OBSERVE_INTERVAL": "fast"})


def test_sparkline_scales_values_and_shows_gaps() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1.0, math.nan, 1.0]) == "▅ ▅"
    assert len(sparkline([float(i) for i in range(1000)], width=40)) == 40
    assert sparkline([]) == ""
