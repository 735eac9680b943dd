"""promtool unit tests generated from the same policy as the rules they test.

Every tier is checked at the four moments the mixins check: not firing just before the
threshold and `for`, firing at it, still firing inside the hysteresis band, still firing
(with usage's own value) just before `keep_firing_for` below it has run out, cleared once it has. The expected annotations are rendered here from
the policy, so a template that renders wrongly fails the test.

One module per alert family (tiers, prediction, pressure, source, slo, recording);
`inputs` holds what they share, `expected` the annotation rendering.
"""

from __future__ import annotations

from ...policy import Policy
from ..content import Yaml
from .inputs import promtool_test_file, selector_labels
from .prediction import prediction_tests
from .pressure import pressure_tests
from .recording import recording_tests
from .slo import slo_tests
from .source import source_tests
from .tiers import tier_tests

__all__ = ["promtool_test_file", "render", "selector_labels"]

TESTS_DIR = "rules/tests"


def render(policy: Policy) -> dict[str, Yaml]:
    """Return rules/tests/*.yaml for `promtool test rules`."""
    files = {
        "tiers.yaml": tier_tests(policy),
        "recording.yaml": recording_tests(policy),
        "source.yaml": source_tests(policy),
    }
    if policy.prediction.enabled:
        files["prediction.yaml"] = prediction_tests(policy)
    pressure = pressure_tests(policy)
    if pressure["tests"]:
        files["pressure.yaml"] = pressure
    if policy.slo.enabled:
        files["slo.yaml"] = slo_tests(policy)
    return {f"{TESTS_DIR}/{name}": Yaml((document,)) for name, document in files.items()}
