"""Container awareness on this machine's real kernel: a container without a cgroup namespace.

Docker on v1/hybrid hosts (and Kubernetes on v1) gives a container its own PID and mount
namespaces but not a cgroup namespace: /proc/self/cgroup names the host path of its cgroup
while /sys/fs/cgroup/memory (or /sys/fs/cgroup on v2) is a bind mount of that very cgroup.
This test builds exactly that with unshare and a bind mount (root only) and runs the
exporter's collectors inside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from memwarden.system import Hierarchy

MiB = 1024 * 1024

INSIDE = textwrap.dedent(
    """
    import json
    from memwarden.exporter import build_registry
    found = {}
    for mode in ("auto", "cgroup"):
        registry = build_registry([], scope_mode=mode)
        value = registry.get_sample_value
        scope = next(s for m in registry.collect() for s in m.samples if s.name == "memwarden_memory_scope_info")
        found[mode] = {
            "scope": scope.labels["scope"],
            "cgroup": scope.labels["cgroup"],
            "total": value("memwarden_memory_total_bytes"),
            "success": value("memwarden_collector_success", {"collector": "meminfo"}),
        }
    print(json.dumps(found))
    """
)


def _container_cgroup() -> tuple[Path, Path, str]:
    """Return (the memory tree, a new child cgroup of ours in it, its limit file); skip when impossible."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a cgroup and bind-mounts it in a new mount namespace")
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) from util-linux")
    hierarchy = Hierarchy.detect("/sys/fs/cgroup")
    tree = hierarchy.unified if hierarchy.memory_on_unified else hierarchy.memory_v1
    own = hierarchy.own_cgroup("/proc")
    if tree is None or own is None or own.memory is None:
        pytest.skip("no writable memory cgroup tree on this machine")
    limit_file = "memory.max" if hierarchy.memory_on_unified else "memory.limit_in_bytes"
    child = own.memory / f"memwarden-e2e-{uuid.uuid4().hex[:8]}"
    try:
        child.mkdir()
        (child / limit_file).write_text(f"{256 * MiB}\n")
    except OSError as error:
        if child.exists():
            child.rmdir()
        pytest.skip(f"cannot create a limited cgroup below {own.memory}: {error}")
    return tree, child, limit_file


def test_a_container_without_a_cgroup_namespace_reports_its_own_limit() -> None:
    tree, child, _ = _container_cgroup()
    # move into the cgroup ("0" is the writer itself), then a new PID + mount namespace whose
    # cgroup tree is a bind mount of the container's cgroup: Docker's layout without cgroupns
    script = (
        f'echo 0 > "{child}/cgroup.procs" && exec unshare --pid --fork --mount --mount-proc --propagation private '
        f'sh -c \'mount --bind "{child}" "{tree}" && exec "$0" -c "$1"\' "{sys.executable}" "$INSIDE"'
    )
    try:
        result = subprocess.run(
            ["sh", "-c", script], env={**os.environ, "INSIDE": INSIDE}, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0 and result.stderr.startswith("unshare:"):
            # unshare(1) itself could not build the namespaces (not permitted, or a chroot
            # whose root is no mount point): the machine cannot stage a container.
            pytest.skip(f"cannot make the namespaces here: {result.stderr.strip()}")
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        deadline = time.monotonic() + 10
        while child.exists():
            try:
                child.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # the namespace's last process is still being reaped
    # /proc/self/cgroup says ".../memwarden-e2e-x" from the host's root; the cgroup is found anyway
    for mode in ("auto", "cgroup"):
        assert found[mode] == {"scope": "cgroup", "cgroup": found[mode]["cgroup"], "total": 256 * MiB, "success": 1}, mode
        assert found[mode]["cgroup"].endswith("/" + child.name), mode
