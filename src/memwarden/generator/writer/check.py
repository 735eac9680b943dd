"""Compare a folder with a fresh render, and find what `generate` must not write through.

Read-only: `generate --check` uses all of it, `generate` the same before it writes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath


class BundleError(Exception):
    """The bundle cannot be written, or an interrupted one cannot be recovered; the text says why and where."""


def parts_of(relative: str) -> tuple[str, ...]:
    """Split a bundle path into its names; refuse one that could leave the output folder."""
    path = PurePosixPath(relative)
    if path.is_absolute() or not path.parts or any(part in ("", ".", "..") for part in path.parts):
        raise BundleError(f"{relative!r}: not a path inside the output folder")
    return path.parts


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _symlink(path: Path) -> str:
    target = os.readlink(path)
    dangling = "" if path.exists() else ", which does not exist"
    return (
        f"{path}: a symlink to {target}{dangling}; generate writes only regular files inside the output "
        "folder and never through a link: remove the link, or pass the folder you meant as -o"
    )


def unsafe_targets(root: Path, relatives: Iterable[str]) -> list[str]:
    """Return one problem per path under `root` that writing `relatives` would follow out of `root`.

    A folder on the way must be a real folder (or absent: it is created); the file a
    regular file (or absent). A symlink anywhere below `root` is refused, dangling or
    not, rather than replaced: it is the operator's, and whatever it points at may be
    theirs too. `root` itself may be a link: it is the folder the operator named.
    """
    problems: dict[Path, str] = {}
    for relative in relatives:
        parts = parts_of(relative)
        here = root
        for index, name in enumerate(parts):
            here = here / name
            last = index == len(parts) - 1
            status = _lstat(here)
            if status is None:
                break
            if stat.S_ISLNK(status.st_mode):
                problems[here] = _symlink(here)
                break
            if not last and not stat.S_ISDIR(status.st_mode):
                problems[here] = f"{here}: not a folder, but the bundle puts files in it"
                break
            if last and not stat.S_ISREG(status.st_mode):
                problems[here] = f"{here}: not a regular file, so generate will not replace it"
    return [problems[path] for path in sorted(problems)]


def missing_folders(root: Path, relatives: Iterable[str]) -> list[str]:
    """Return the folders (relative, parents first) that writing `relatives` has to create."""
    missing: set[str] = set()
    for relative in relatives:
        folders = parts_of(relative)[:-1]
        for depth in range(1, len(folders) + 1):
            if _lstat(root.joinpath(*folders[:depth])) is None:
                missing.add("/".join(folders[:depth]))
    return sorted(missing, key=lambda folder: (folder.count("/"), folder))


def stale_files(root: Path, files: Mapping[str, str]) -> list[str]:
    """Return the relative paths whose content under `root` differs from `files` (or is missing)."""
    stale = []
    for relative, text in sorted(files.items()):
        target = root / relative
        try:
            current = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            stale.append(relative)
            continue
        if current != text:
            stale.append(relative)
    return stale


def leftover_files(root: Path, files: Mapping[str, str], was_generated: Callable[[str], bool]) -> list[str]:
    """Return files an earlier render left in the folders `files` write into, that this one no longer makes.

    Only regular files `was_generated` recognises by their content count, so a file of
    the operator's own beside the generated ones is never reported or removed; links and
    folders reached through links are not looked into at all.
    """
    folders = {PurePosixPath(relative).parent for relative in files}
    leftovers = []
    for folder in sorted(folders):
        directory = root.joinpath(*folder.parts)
        if any(_is_link(root.joinpath(*folder.parts[: depth + 1])) for depth in range(len(folder.parts))):
            continue
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            relative = (folder / entry.name).as_posix()
            if relative in files or entry.name.startswith(".") or entry.is_symlink() or not entry.is_file():
                continue
            try:
                text = entry.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if was_generated(text):
                leftovers.append(relative)
    return leftovers


def _is_link(path: Path) -> bool:
    status = _lstat(path)
    return status is not None and stat.S_ISLNK(status.st_mode)
