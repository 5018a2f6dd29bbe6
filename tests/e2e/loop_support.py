"""The whole loop's parts that are not Juanie: microshop's real PostgreSQL database, Redis prefix and RabbitMQ
exchange; its juanie.yaml as the test shapes it; a signed GitHub push; the `juanie` CLI; and the rule that says
which load answers may fail. (The gateway's fault injection is `tests.observe_support.inject_fault`.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from juanie.gitops.webhooks import sign_github
from tests.delivery_support import faster_canary
from tests.load_support import Answer
from tests.observe_support import fault_rule
from tests.server_support import Server, git

PG_HOST = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass
class Backing:
    """microshop's backing services on this machine, unique to one test: a fresh PostgreSQL database, a Redis key
    prefix, and a RabbitMQ topic exchange with a queue bound to it (declared first, so no order event is lost)."""

    name: str

    @classmethod
    def create(cls) -> Backing:
        import pika
        import psycopg

        backing = cls(f"microshop_e2e_{uuid.uuid4().hex[:10]}")
        with psycopg.connect(f"{PG_HOST}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{backing.name}"')
        with pika.BlockingConnection(pika.URLParameters(AMQP_URL)) as connection:
            channel = connection.channel()
            # The same declaration as microshop's publisher, so whichever comes first, the other agrees.
            channel.exchange_declare(exchange=backing.exchange, exchange_type="topic", durable=True)
            channel.queue_declare(queue=backing.queue)
            channel.queue_bind(queue=backing.queue, exchange=backing.exchange, routing_key="order.*")
        return backing

    @property
    def database_url(self) -> str:
        return f"{PG_HOST}/{self.name}"

    @property
    def redis_prefix(self) -> str:
        return f"{self.name}:"

    @property
    def exchange(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return f"{self.name}.orders"

    def secrets(self) -> dict[str, str]:
        """What Juanie hands microshop as `DATABASE_URL`, `REDIS_URL` and `AMQP_URL` (project secrets)."""
        return {"DATABASE_URL": self.database_url, "REDIS_URL": REDIS_URL, "AMQP_URL": AMQP_URL}

    def rows(self, sql: str, *params: object) -> list[dict[str, Any]]:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(sql, params).fetchall()

    def redis_keys(self) -> list[str]:
        import redis

        with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
            return sorted(client.scan_iter(match=self.redis_prefix + "*"))

    def messages(self) -> list[dict[str, Any]]:
        """Take every message waiting in the bound queue (each as its JSON body plus its routing key)."""
        import pika

        taken = []
        with pika.BlockingConnection(pika.URLParameters(AMQP_URL)) as connection:
            channel = connection.channel()
            while True:
                method, _props, body = channel.basic_get(queue=self.queue, auto_ack=True)
                if method is None:
                    return taken
                taken.append({"routing_key": method.routing_key, **json.loads(body)})

    def drop(self) -> None:
        import pika
        import psycopg
        import redis

        with psycopg.connect(f"{PG_HOST}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        with redis.Redis.from_url(REDIS_URL) as client:
            keys = list(client.scan_iter(match=self.redis_prefix + "*"))
            if keys:
                client.delete(*keys)
        with pika.BlockingConnection(pika.URLParameters(AMQP_URL)) as connection:
            channel = connection.channel()
            channel.queue_delete(queue=self.queue)
            channel.exchange_delete(exchange=self.exchange)


def shape_source(source: Path, backing: Backing) -> None:
    """The test's juanie.yaml: the faster staging canary of the delivery tests, a short canary on prod too, one
    replica per service in staging and prod (every canary step starts and stops a whole set of processes on a
    2-core machine), the product cache's Redis prefix and the order events' exchange for this test, and a fast
    HighErrorRate alert."""
    faster_canary(source)
    path = source / "juanie.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["environments"]["prod"]["strategy"] = {
        "type": "canary", "steps": [{"weight": 50, "pause": "2s"}, {"weight": 100, "pause": "0s"}]}
    for env in ("staging", "prod"):
        spec["environments"][env].update(replicas=1, autoscale=False)
    spec["services"]["product"]["env"]["REDIS_PREFIX"] = backing.redis_prefix
    spec["services"]["order"]["env"]["AMQP_EXCHANGE"] = backing.exchange
    spec["alerts"] = [fault_rule(for_="4s"), *spec["alerts"]]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    git(source, "commit", "-qam", "ci: this machine's backing services, a short prod canary, a fast error alert")


def push(server: Server, source: Path, secret: str, branch: str, before: str) -> httpx.Response:
    """Deliver the webhook GitHub would send for a push of `branch` (from `before` to its head), signed."""
    after = git(source, "rev-parse", branch)
    body = json.dumps({
        "ref": f"refs/heads/{branch}", "before": before, "after": after,
        "repository": {"clone_url": str(source), "html_url": str(source)},
        "pusher": {"name": "dev"},
        "commits": [{"id": after, "message": git(source, "log", "-1", "--format=%s", after),
                     "author": {"name": "Dev", "email": "dev@example.com"}}],
    }).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
               "X-Hub-Signature-256": sign_github(secret, body)}
    return httpx.post(server.url + "/api/hooks/git", content=body, headers=headers, timeout=30)


def juanie(server: Server, gateway_port: int, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the `juanie` CLI against `server`, as a person on this machine would."""
    env = {**os.environ, "JUANIE_URL": server.url, "JUANIE_TOKEN": server.token,
           "JUANIE_GATEWAY_PORT": str(gateway_port), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "juanie.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@dataclass(frozen=True)
class Window:
    """A stretch of monotonic time in which some answers may fail, and which ones."""

    start: float
    end: float
    may_fail: Callable[[Answer], bool]

    def allows(self, answer: Answer) -> bool:
        return self.start <= answer.t <= self.end and self.may_fail(answer)


def unexpected_failures(answers: Iterable[Answer], windows: Iterable[Window] = ()) -> list[Answer]:
    """Every answer that is not a 2xx and that no window allows."""
    windows = list(windows)
    return [a for a in answers if not a.outcome.startswith("2") and not any(w.allows(a) for w in windows)]
