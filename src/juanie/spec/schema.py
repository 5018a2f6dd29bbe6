"""The JSON Schema of `juanie.yaml`, for editors (yaml-language-server) and for `juanie schema`."""

from __future__ import annotations

from typing import Any

from .project import ProjectSpec

SCHEMA_ID = "https://juanie.dev/schemas/juanie.schema.json"


def json_schema() -> dict[str, Any]:
    """The schema as a dict; keys in a stable order so the exported file only changes when the model does."""
    schema = ProjectSpec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
