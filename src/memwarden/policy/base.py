"""The one pydantic configuration every policy section shares."""

from __future__ import annotations

from pydantic import ConfigDict

# Unknown keys are errors and values immutable. Strict: YAML already gives real types, and
# lax coercion let `warning: true` through as 1 (and "90" as 90). No NaN or infinity:
# `.nan` compares false with everything, so it slipped past every range check.
SECTION_CONFIG = ConfigDict(
    extra="forbid", frozen=True, populate_by_name=True, validate_default=True, strict=True, allow_inf_nan=False
)
