"""What every request handler may reach: settings, the database, the secret box, metrics, the controller runner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from juanie.controllers.runner import ControllerRunner
from juanie.settings import Settings
from juanie.store.crypto import SecretBox
from juanie.store.db import Database
from juanie.telemetry import ServerMetrics


@dataclass
class AppState:
    settings: Settings
    db: Database
    box: SecretBox
    metrics: ServerMetrics
    runner: ControllerRunner
    server_id: str
    ready: bool = False
    pipelines: Any = None  # juanie.controllers.pipelines.PipelineService
    gitops: Any = None  # juanie.controllers.gitops.GitOpsRepos
    specs: Any = None  # juanie.controllers.specs.SpecCache
    engine: Any = None  # juanie.engines.base.Engine, or None without an engine
    sandbox: Any = None  # juanie.sandbox.Sandbox: what isolates projects' code on this server
    stop_data_plane: bool = False  # `juanie down`: stop the application processes and the gateway too


def app_state(request: Request) -> AppState:
    return request.app.state.juanie
