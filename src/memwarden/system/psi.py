"""Parse pressure stall information (PSI) files: /proc/pressure/memory and memory.pressure."""

from __future__ import annotations

import errno

from .procfs import read_text

_NO_PSI = (errno.ENOENT, errno.EOPNOTSUPP, errno.ENOTSUP)


def parse_pressure(text: str) -> dict[str, float]:
    """Return {"some": seconds, "full": seconds} from the `total=` microsecond counters."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for field in rest.split():
            if field.startswith("total="):
                try:
                    totals[kind] = int(field[6:]) / 1_000_000
                except ValueError:
                    pass
    return totals


def read_pressure(path: str) -> dict[str, float] | None:
    """Return the stall totals of a PSI file, or None where the kernel has no PSI.

    A kernel built without PSI has no file; one booted with psi=0 has the file but refuses
    to read it (EOPNOTSUPP). Both mean "no data", which is not an error; any other failure
    (permission denied, ...) is raised for the caller to report.
    """
    try:
        totals = parse_pressure(read_text(path))
    except OSError as error:
        if error.errno in _NO_PSI:
            return None
        raise
    return totals or None
