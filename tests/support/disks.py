"""A real small filesystem for tests of what a full or read-only disk does: a tmpfs mounted for one test."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class SmallDisk:
    """A real tmpfs of 8 MiB (SQLite's WAL grows to ~4 MiB before it checkpoints), mounted for one test; `fill()` takes its last byte."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self._filler = mount / ".filler"
        self._filler.touch()

    def fill(self) -> None:
        fd = os.open(self._filler, os.O_WRONLY | os.O_APPEND)
        try:
            for size in (65536, 4096, 512, 1):
                try:
                    while os.write(fd, b"\0" * size):
                        pass
                except OSError as error:
                    assert error.errno == errno.ENOSPC
        finally:
            os.close(fd)
        # A full page-granular tmpfs: a new file cannot take one byte.
        with pytest.raises(OSError):
            (self.mount / ".probe").write_bytes(b"x")

    def free(self) -> None:
        self._filler.unlink()
        (self.mount / ".probe").unlink(missing_ok=True)

    def read_only(self) -> None:
        """Remount it read-only, as a disk with errors or a read-only volume is."""
        subprocess.run(["mount", "-o", "remount,ro", str(self.mount)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
