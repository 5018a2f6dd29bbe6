"""The common base of every `juanie.yaml` model: unknown keys are errors, values are immutable once loaded."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """Strict about keys (a typo must not be silently ignored) and frozen (a loaded spec is a value)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
