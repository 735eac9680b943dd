"""YAML as the tests read what memwarden writes: PyYAML's safe loader on libyaml's C parser.

The pure-Python parser was most of the quick suite's time where tests read the bundle back
(57 s of the Kubernetes tests' 90 under cProfile); the C one builds the same Python objects
from the same safe tags. Without libyaml it falls back to the pure-Python loader.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """yaml.safe_load, on the C parser."""
    return yaml.load(text, Loader=Loader)


def load_all(text: str) -> Iterator[Any]:
    """yaml.safe_load_all, on the C parser."""
    return yaml.load_all(text, Loader=Loader)
