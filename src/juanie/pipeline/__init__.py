"""Pipelines: the model (stages, steps, plan, states, masking), the local executor and its logs.

Release artifacts live in `juanie.pipeline.package`, imported on its own because it also runs as
`python -m juanie.pipeline.package` inside package steps.
"""

from juanie.pipeline.executor import Executor, RunResult, StepChange, StepResult
from juanie.pipeline.logs import LogLine, LogStore, RunLogWriter
from juanie.pipeline.model import (
    DEFAULT_STAGES,
    PipelineError,
    PipelineSpec,
    Stage,
    Step,
    mask,
    plan,
    spec_from_mapping,
)
from juanie.pipeline.workspace import RecoveredRun

__all__ = [
    "DEFAULT_STAGES",
    "Executor",
    "LogLine",
    "LogStore",
    "PipelineError",
    "PipelineSpec",
    "RecoveredRun",
    "RunLogWriter",
    "RunResult",
    "Stage",
    "Step",
    "StepChange",
    "StepResult",
    "mask",
    "plan",
    "spec_from_mapping",
]
