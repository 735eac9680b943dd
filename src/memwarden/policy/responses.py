"""The `responses` section: which actions the responder may take for which alerts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ResponsesSection(BaseModel):
    """Allow-listed responses; empty means the responder only records what it receives."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, validate_default=True)

    dry_run: bool = False
    rules: list[dict] = Field(default_factory=list)
