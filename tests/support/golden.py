"""Compare generated files with checked-in goldens; MEMWARDEN_UPDATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import difflib
import os
from pathlib import Path


def check_tree(expected_root: Path, files: dict[str, str]) -> None:
    """Assert `files` equals the golden tree under `expected_root` (no missing or extra files)."""
    if os.environ.get("MEMWARDEN_UPDATE_GOLDEN") == "1":
        for stale in expected_root.rglob("*"):
            if stale.is_file() and str(stale.relative_to(expected_root)) not in files:
                stale.unlink()
        for relative, text in files.items():
            target = expected_root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return
    present = {str(path.relative_to(expected_root)) for path in expected_root.rglob("*") if path.is_file()}
    assert present == set(files), (
        f"golden files differ: missing {sorted(set(files) - present)}, extra {sorted(present - set(files))}"
    )
    for relative, text in files.items():
        golden = (expected_root / relative).read_text()
        if golden != text:
            diff = "".join(
                difflib.unified_diff(golden.splitlines(True), text.splitlines(True), f"golden/{relative}", f"rendered/{relative}")
            )
            raise AssertionError(f"{relative} differs from its golden (MEMWARDEN_UPDATE_GOLDEN=1 rewrites):\n{diff[:6000]}")
