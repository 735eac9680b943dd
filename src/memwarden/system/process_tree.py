"""A pidfile's process and all its descendants: a pidfile names a service's main process, its workers are its children.

The tree is walked through /proc/<pid>/task/*/children where the kernel has those files,
else through a parent map that reads the stat of new pids only. A missing, empty or stale
pidfile means no processes; that is not an error.
"""

from __future__ import annotations

import os

from . import procfs


class PidfileTrees:
    """Walks pidfiles' process trees; keep one across scrapes (it caches each process's parent)."""

    def __init__(self, proc_root: str, read: procfs.Read = procfs.read_bytes) -> None:
        self.proc_root = proc_root
        self._read = read  # for files re-read every scrape (children); the exporter passes a FileReader's
        self._parents_of: dict[int, tuple[int, int]] = {}  # pid -> (inode, ppid), without children files
        self._children_files: bool | None = None  # does this kernel have /proc/<pid>/task/*/children?

    def pids(self, pidfile: str, entries: list[tuple[int, int]] | None) -> tuple[int, ...]:
        """Return the pidfile's process and its descendants, sorted; `entries` is the scrape's /proc listing, if taken."""
        try:
            # non-blocking and regular files only: a FIFO named as the pidfile must not hang a scrape
            token = procfs.read_small_file(pidfile, 64).split()[0]
            root = int(token)
        except (OSError, IndexError, ValueError):
            return ()
        if root <= 0 or not os.path.isdir(f"{self.proc_root}/{root}"):
            return ()
        if self._children_files is not False:
            tree = self._subtree(root)
            if tree is not None:
                self._children_files = True
                return tree
            self._children_files = False
        if entries is None:
            entries = list(procfs.process_entries(self.proc_root))
        children = self._parent_map(entries)
        found, queue = {root}, [root]
        while queue:
            for child in children.get(queue.pop(), ()):
                if child not in found:
                    found.add(child)
                    queue.append(child)
        return tuple(sorted(found))

    def _subtree(self, root: int) -> tuple[int, ...] | None:
        """The pidfile's process and its descendants through the children files; None without them."""
        tree, queue = {root}, [root]
        while queue:
            below = procfs.children(self.proc_root, queue.pop(), self._read)
            if below is None:
                return None
            for child in below:
                if child not in tree:
                    tree.add(child)
                    queue.append(child)
        return tuple(sorted(tree))

    def _parent_map(self, entries: list[tuple[int, int]]) -> dict[int, list[int]]:
        """pid -> children from the stat of each process, read once per process (keyed like the cmdline cache).

        A parent is cached for the process's life: a reparented orphan keeps its first parent,
        whose pid has gone from the listing, so it falls out of the tree as it should.
        """
        cache, known = self._parents_of, {}
        children: dict[int, list[int]] = {}
        for pid, inode in entries:
            cached = cache.get(pid)
            if cached is not None and cached[0] == inode:
                parent = cached[1]
            else:
                read = procfs.parent_pid(self.proc_root, pid)
                if read is None:
                    continue  # gone
                parent = read
            known[pid] = (inode, parent)
            children.setdefault(parent, []).append(pid)
        self._parents_of = known
        return children
