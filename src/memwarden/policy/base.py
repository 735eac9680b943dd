"""What every policy section shares: the pydantic configuration, its base class, the name patterns."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Unknown keys are errors and values immutable. Strict: YAML already gives real types, and
# lax coercion let `warning: true` through as 1 (and "90" as 90). No NaN or infinity:
# `.nan` compares false with everything, so it slipped past every range check.
SECTION_CONFIG = ConfigDict(
    extra="forbid", frozen=True, populate_by_name=True, validate_default=True, strict=True, allow_inf_nan=False
)

# A component's name becomes a label value and part of rule names; the policy model and the
# responses that refer to components both check it with this one pattern.
COMPONENT_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_.-]{0,62}$"
# Where a response names a component (the components section's own names are ComponentName).
ComponentRef = Annotated[str, Field(pattern=COMPONENT_NAME_PATTERN)]

# A Prometheus label name.
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
# Percent of memory (or of time). The range is checked in policy/checks/ with messages of
# our own; here it only tells editors (yaml-language-server) what fits.
Percent = Annotated[float, Field(json_schema_extra={"exclusiveMinimum": 0, "maximum": 100})]


class Section(BaseModel):
    """Base of every policy section: unknown keys are errors, values are immutable."""

    model_config = SECTION_CONFIG
