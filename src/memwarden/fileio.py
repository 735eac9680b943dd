"""Write files so a reader never sees half of one, and a failure leaves the old file whole."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write_tree(root: Path, files: Mapping[str, str]) -> list[Path]:
    """Write every relative path in `files` below `root`, each atomically; return what was written."""
    written = []
    for relative, text in sorted(files.items()):
        target = root / relative
        write_atomic(target, text)
        written.append(target)
    return written


def stale_files(root: Path, files: Mapping[str, str]) -> list[str]:
    """Return the relative paths whose content under `root` differs from `files` (or is missing)."""
    stale = []
    for relative, text in sorted(files.items()):
        target = root / relative
        try:
            current = target.read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
            stale.append(relative)
            continue
        if current != text:
            stale.append(relative)
    return stale


def leftover_files(root: Path, files: Mapping[str, str], was_generated: Callable[[str], bool]) -> list[str]:
    """Return files an earlier render left in the folders `files` write into, that this one no longer makes.

    Only files `was_generated` recognises by their content count, so a file of the
    operator's own beside the generated ones is never reported or removed.
    """
    folders = {Path(relative).parent for relative in files}
    leftovers = []
    for folder in sorted(folders):
        directory = root / folder
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            relative = (folder / entry.name).as_posix()
            if relative in files or not entry.is_file() or entry.name.startswith("."):
                continue
            try:
                text = entry.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if was_generated(text):
                leftovers.append(relative)
    return leftovers
