"""Replace a bundle under DIR as a whole or not at all, and never write outside DIR.

The bundle's files sit in several folders (rules/, alertmanager/, …) beside the
operator's own, so no single rename can swap it. A journal makes it one step instead:

1. `DIR/.memwarden-generate.journal` is written `prepared`: the files to stage, the
   folders to create, the leftovers to remove;
2. each new file is written beside its target as `.NAME.memwarden-new` (a name no
   `*.yaml`/`*.json` glob of Prometheus or Grafana matches) and fsynced, then its folder;
3. the journal is rewritten `committed` (temporary file, fsync, rename, fsync of DIR) —
   this rename is the one moment the bundle changes from old to new;
4. the staged files are renamed over their targets, the leftovers removed, the folders
   fsynced, and the journal deleted.

Killed before 3, the next run rolls back (deletes what was staged); after 3, it rolls
forward (renames what is left). Every `generate`, `--check` included, recovers first.
Folders are opened one name at a time with O_NOFOLLOW relative to their parent, so a
symlink put in place between the check and the write is an error, never a way out of DIR.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .check import BundleError, missing_folders, parts_of, unsafe_targets

JOURNAL = ".memwarden-generate.journal"
_JOURNAL_TEMPORARY = JOURNAL + ".tmp"
STAGED_SUFFIX = ".memwarden-new"
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def staged_name(name: str) -> str:
    return f".{name}{STAGED_SUFFIX}"


@dataclass(frozen=True)
class Plan:
    """What one generate changes, as the journal records it (paths relative to DIR)."""

    files: list[str]
    remove: list[str]
    folders: list[str]  # created by this generate, parents first; removed again on roll-back
    state: Literal["prepared", "committed"] = "prepared"


class _Tree:
    """DIR, opened once; the folders below it are opened name by name without following links."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open: dict[tuple[str, ...], int] = {(): os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)}

    @property
    def fd(self) -> int:
        return self._open[()]

    def folder(self, parts: tuple[str, ...], create: bool = False) -> int | None:
        """Return a descriptor of the folder DIR/parts, creating it if asked; None if it is absent."""
        if parts in self._open:
            return self._open[parts]
        parent = self.folder(parts[:-1], create)
        if parent is None:
            return None
        try:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(parts[-1], 0o755, dir_fd=parent)
            descriptor = os.open(parts[-1], _FOLDER, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as error:  # ELOOP: a symlink; ENOTDIR: a file where a folder belongs
            raise BundleError(f"{self.root.joinpath(*parts)}: not a folder inside {self.root} ({error.strerror})") from None
        self._open[parts] = descriptor
        return descriptor

    def close(self) -> None:
        for descriptor in self._open.values():
            os.close(descriptor)
        self._open.clear()


@contextmanager
def _opened(root: Path) -> Iterator[_Tree]:
    tree = _Tree(root)
    try:
        yield tree
    finally:
        tree.close()


def _write(folder: int, name: str, data: bytes, like: os.stat_result | None = None) -> None:
    """Write `data` to the new file `name` in `folder` and fsync it; an existing link there is an error.

    The file gets the mode, owner and group of `like` (the file it replaces) as far as we
    may — rules chowned to prometheus stay so — and 0644 when there is none.
    """
    descriptor = os.open(name, _NEW_FILE, 0o600, dir_fd=folder)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
        stream.flush()
        if like is not None and (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
            with suppress(PermissionError):
                os.fchown(descriptor, like.st_uid, like.st_gid)
        os.fchmod(descriptor, stat.S_IMODE(like.st_mode) if like is not None else 0o644)
        os.fsync(descriptor)


def _replaced(folder: int, name: str) -> os.stat_result | None:
    """The regular file `name` in `folder` that a new one replaces, if there is one."""
    try:
        status = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return status if stat.S_ISREG(status.st_mode) else None


def _save(tree: _Tree, plan: Plan) -> None:
    """Write the journal through a temporary file and a rename, durably: it is the commit point."""
    _write(tree.fd, _JOURNAL_TEMPORARY, (json.dumps(asdict(plan), indent=1) + "\n").encode())
    os.rename(_JOURNAL_TEMPORARY, JOURNAL, src_dir_fd=tree.fd, dst_dir_fd=tree.fd)
    os.fsync(tree.fd)


def _forget(tree: _Tree) -> None:
    for name in (_JOURNAL_TEMPORARY, JOURNAL):  # the temporary: a journal write that failed
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=tree.fd)
    os.fsync(tree.fd)


def _split(relative: str) -> tuple[tuple[str, ...], str]:
    parts = parts_of(relative)
    return parts[:-1], parts[-1]


def _roll_back(tree: _Tree, plan: Plan) -> None:
    """Undo a generate that had not committed: its staged files and the folders it made go."""
    for relative in plan.files:
        folder, name = _split(relative)
        descriptor = tree.folder(folder)
        if descriptor is not None:
            with suppress(FileNotFoundError):
                os.unlink(staged_name(name), dir_fd=descriptor)
    for relative in reversed(plan.folders):
        *parents, name = parts_of(relative)
        descriptor = tree.folder(tuple(parents))
        if descriptor is not None:
            with suppress(OSError):  # not empty (the operator put something there), or gone
                os.rmdir(name, dir_fd=descriptor)
    _forget(tree)


def _roll_forward(tree: _Tree, plan: Plan) -> None:
    """Finish a committed generate: rename what is still staged, remove the leftovers."""
    touched: set[tuple[str, ...]] = set()
    for relative in plan.files:
        folder, name = _split(relative)
        descriptor = tree.folder(folder)
        if descriptor is None:
            raise BundleError(f"{tree.root / relative}: its folder vanished before the new bundle was in place")
        with suppress(FileNotFoundError):  # renamed already, before a kill
            os.rename(staged_name(name), name, src_dir_fd=descriptor, dst_dir_fd=descriptor)
        touched.add(folder)
    for relative in plan.remove:
        folder, name = _split(relative)
        descriptor = tree.folder(folder)
        if descriptor is not None:
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=descriptor)
            touched.add(folder)
    for folder in sorted(touched):
        descriptor = tree.folder(folder)
        if descriptor is not None:
            os.fsync(descriptor)  # the renames are durable before the journal that could redo them goes
    _forget(tree)


def _pending(tree: _Tree) -> Plan | None:
    """Read the journal an interrupted generate left; None when there is none."""
    with suppress(FileNotFoundError):  # stat first: on a read-only disk, unlinking nothing is EROFS
        os.stat(_JOURNAL_TEMPORARY, dir_fd=tree.fd, follow_symlinks=False)
        os.unlink(_JOURNAL_TEMPORARY, dir_fd=tree.fd)  # a journal write that never reached its rename
    path = tree.root / JOURNAL
    try:
        descriptor = os.open(JOURNAL, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tree.fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BundleError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        with os.fdopen(descriptor, "rb") as stream:
            data = json.loads(stream.read(1 << 20))
        plan = Plan(**data)
        if plan.state not in ("prepared", "committed"):
            raise ValueError(f"state {plan.state!r}")
        for relative in (*plan.files, *plan.remove, *plan.folders):
            parts_of(relative)
    except (ValueError, TypeError, BundleError) as error:
        raise BundleError(
            f"{path}: an interrupted generate's journal that cannot be read ({error}); "
            "look at the files it names, then remove it and run generate again"
        ) from None
    return plan


def recover(root: Path) -> str | None:
    """Finish or undo a generate that was killed under `root`; say which, or None if none was."""
    if not root.is_dir():
        return None
    try:
        with _opened(root) as tree:
            plan = _pending(tree)
            if plan is None:
                return None
            if plan.state == "committed":
                _roll_forward(tree, plan)
                return f"finished an interrupted generate under {root}: the new bundle ({len(plan.files)} file(s)) is in place"
            _roll_back(tree, plan)
            return f"undid an interrupted generate under {root}: the bundle there is the one it had before"
    except OSError as error:
        raise BundleError(f"cannot recover the interrupted generate under {root}: {error}") from None


def replace_bundle(root: Path, files: Mapping[str, str], remove: Iterable[str] = ()) -> None:
    """Make `files` the bundle under `root` and delete `remove`, all of it or — on any error — none."""
    remove = sorted(remove)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BundleError(f"cannot create {root}: {error.strerror}; nothing was written") from None
    recover(root)
    if problems := unsafe_targets(root, [*files, *remove]):
        raise BundleError("\n".join(problems) + "\nnothing was written")
    plan = Plan(sorted(files), remove, missing_folders(root, files))
    with _opened(root) as tree:
        try:
            _save(tree, plan)
            _stage(tree, files)
            _save(tree, Plan(plan.files, plan.remove, plan.folders, "committed"))
        except (OSError, BundleError) as error:
            with suppress(OSError, BundleError):  # left for the next run's roll-back if this fails too
                _roll_back(tree, plan)
            reason = error if isinstance(error, BundleError) else f"cannot write to {root}: {error}"
            raise BundleError(f"{reason}; the bundle there is unchanged") from None
        try:
            _roll_forward(tree, plan)
        except OSError as error:
            raise BundleError(
                f"the new bundle under {root} is committed but not all in place ({error}); "
                "run `memwarden generate` again to finish it"
            ) from None


def _stage(tree: _Tree, files: Mapping[str, str]) -> None:
    """Write every new file beside its target, then fsync the folders that hold them."""
    folders = set()
    for relative, text in sorted(files.items()):
        folder, name = _split(relative)
        descriptor = tree.folder(folder, create=True)
        assert descriptor is not None  # created just now
        _write(descriptor, staged_name(name), text.encode("utf-8"), _replaced(descriptor, name))
        folders.add(folder)
    for folder in sorted(folders, key=len, reverse=True):
        descriptor = tree.folder(folder)
        assert descriptor is not None
        os.fsync(descriptor)
    if any(folder for folder in folders):
        os.fsync(tree.fd)  # new folders' entries in DIR
