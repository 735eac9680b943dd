"""The one pydantic configuration every policy section shares."""

from __future__ import annotations

from pydantic import ConfigDict

# Unknown keys are errors and values immutable. Strict: YAML already gives real types, and
# lax coercion let `warning: true` through as 1 (and "90" as 90). No NaN or infinity:
# `.nan` compares false with everything, so it slipped past every range check.
SECTION_CONFIG = ConfigDict(
    extra="forbid", frozen=True, populate_by_name=True, validate_default=True, strict=True, allow_inf_nan=False
)

# A component's name becomes a label value and part of rule names; the policy model and the
# responses that refer to components both check it with this one pattern.
COMPONENT_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_.-]{0,62}$"
