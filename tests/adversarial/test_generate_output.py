"""`memwarden generate -o DIR` against links, kills, a full disk and a read-only one: nothing outside DIR, a bundle whole."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memwarden.cli import main
from memwarden.generator import render_bundle
from memwarden.generator.writer import BundleError, recover, replace_bundle
from memwarden.generator.writer import replace as writer
from memwarden.generator.writer.replace import JOURNAL, STAGED_SUFFIX, _Tree
from memwarden.policy import load_policy
from support.disks import SmallDisk
from support.forkrun import ForkRunner

# Renders differently from the built-in default: other thresholds, and no prediction or
# SLO, so rules/tests/prediction.yaml and slo.yaml come and go between the two bundles.
LEAN = "version: memwarden/v1\nthresholds: {warning: 70, high: 80}\nprediction: {enabled: false}\nslo: {enabled: false}\n"
SENTINEL = b"the operator's own file, outside the output folder\n"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below `root`, hidden ones included, with its bytes (links by their target)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            files[path.relative_to(root).as_posix()] = (
                b"-> " + os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            )
    return files


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "sentinel.yaml").write_bytes(SENTINEL)
    return folder


def test_a_symlinked_folder_in_the_output_is_refused_and_nothing_is_written(tmp_path, outside, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "rules").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside), sorted(os.listdir(out))
    code, err = run(["generate", "-o", str(out)], capsys)
    assert code == 1
    assert f"{out / 'rules'}: a symlink to {outside}" in err and "nothing was written" in err
    assert (snapshot(outside), sorted(os.listdir(out))) == before  # not even alertmanager/ was made


def test_a_symlinked_file_is_refused_and_its_target_stays_byte_identical(tmp_path, outside, capsys) -> None:
    out = tmp_path / "out"
    assert run(["generate", "-o", str(out)], capsys)[0] == 0
    alerts = out / "rules" / "memwarden.alerts.yaml"
    alerts.unlink()
    alerts.symlink_to(outside / "sentinel.yaml")
    bundle = snapshot(out)
    code, err = run(["generate", "-p", _lean(tmp_path), "-o", str(out)], capsys)
    assert code == 1 and f"{alerts}: a symlink to {outside / 'sentinel.yaml'};" in err
    assert (outside / "sentinel.yaml").read_bytes() == SENTINEL
    assert snapshot(out) == bundle  # the other 19 files were not replaced either
    code, err = run(["generate", "--check", "-o", str(out)], capsys)
    assert code == 1 and f"unsafe: {alerts}: a symlink" in err


def test_a_dangling_symlink_is_refused_and_its_target_is_not_created(tmp_path, outside, capsys) -> None:
    out = tmp_path / "out"
    (out / "alertmanager").mkdir(parents=True)
    (out / "alertmanager" / "alertmanager.yml").symlink_to(outside / "created-by-memwarden.yml")
    code, err = run(["generate", "-o", str(out)], capsys)
    assert code == 1 and "which does not exist" in err and str(out / "alertmanager" / "alertmanager.yml") in err
    assert not (outside / "created-by-memwarden.yml").exists()
    assert sorted(os.listdir(outside)) == ["sentinel.yaml"]


def test_a_symlinked_leftover_is_neither_read_nor_removed(tmp_path, outside, capsys) -> None:
    out = tmp_path / "out"
    assert run(["generate", "-o", str(out)], capsys)[0] == 0
    generated_elsewhere = outside / "old.yaml"
    generated_elsewhere.write_text((out / "rules" / "tests" / "tiers.yaml").read_text())
    (out / "rules" / "tests" / "old.yaml").symlink_to(generated_elsewhere)
    code, err = run(["generate", "-o", str(out)], capsys)
    assert code == 0 and "old.yaml" not in err
    assert (out / "rules" / "tests" / "old.yaml").is_symlink() and generated_elsewhere.exists()


def test_a_folder_swapped_for_a_link_after_the_check_is_not_followed(tmp_path, outside) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "rules").symlink_to(outside, target_is_directory=True)
    tree = _Tree(out)
    try:
        with pytest.raises(BundleError, match="not a folder inside"):
            tree.folder(("rules",), create=True)
    finally:
        tree.close()
    assert snapshot(outside) == {"sentinel.yaml": SENTINEL}


def test_a_replaced_file_keeps_its_mode_and_owner(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert run(["generate", "-o", str(out)], capsys)[0] == 0
    rules = out / "rules" / "memwarden.rules.yaml"
    rules.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(rules, 65534, 65534)  # as an operator hands the rules to prometheus
    owner = rules.stat().st_uid, rules.stat().st_gid
    assert run(["generate", "-p", _lean(tmp_path), "-o", str(out)], capsys)[0] == 0
    assert rules.read_text().startswith("# generated by memwarden from lean.yaml")  # the new content
    status = rules.stat()
    assert (status.st_mode & 0o777, (status.st_uid, status.st_gid)) == (0o640, owner)
    assert (out / "rules" / "memwarden.alerts.yaml").stat().st_mode & 0o777 == 0o644


def _lean(tmp_path: Path) -> str:
    path = tmp_path / "lean.yaml"
    path.write_text(LEAN)
    return str(path)


def _bundles(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    default, lean = load_policy()[0], load_policy(_lean(tmp_path))[0]
    return render_bundle(default, "<built-in default policy>"), render_bundle(lean, "lean.yaml")


def _as_bytes(files: dict[str, str]) -> dict[str, bytes]:
    return {relative: text.encode() for relative, text in files.items()}


def test_a_full_disk_mid_write_is_an_error_and_leaves_the_old_bundle(small_disk: SmallDisk, tmp_path, capsys) -> None:
    out = small_disk.mount / "out"
    old, _ = _bundles(tmp_path)
    assert run(["generate", "-o", str(out)], capsys)[0] == 0
    small_disk.fill()
    code, err = run(["generate", "-p", _lean(tmp_path), "-o", str(out)], capsys)
    assert code == 1 and "No space left on device" in err and "the bundle there is unchanged" in err
    assert snapshot(out) == _as_bytes(old)  # nothing staged is left behind either
    small_disk.free()
    assert run(["generate", "-p", _lean(tmp_path), "-o", str(out)], capsys)[0] == 0


def test_a_read_only_output_folder_is_an_error_and_leaves_the_old_bundle(small_disk: SmallDisk, tmp_path, capsys) -> None:
    out = small_disk.mount / "out"
    old, _ = _bundles(tmp_path)
    assert run(["generate", "-o", str(out)], capsys)[0] == 0
    small_disk.read_only()
    code, err = run(["generate", "-p", _lean(tmp_path), "-o", str(out)], capsys)
    assert code == 1 and "Read-only file system" in err and str(out) in err
    assert snapshot(out) == _as_bytes(old)
    assert run(["generate", "--check", "-o", str(out)], capsys)[0] == 0  # checking a read-only bundle still works


def test_an_interrupted_generate_is_finished_or_undone_by_the_next(tmp_path, capsys) -> None:
    old, new = _bundles(tmp_path)
    out = tmp_path / "out"
    replace_bundle(out, old)
    # A kill after the commit point: a committed journal, one file renamed, the rest staged.
    tree = _Tree(out)
    try:
        removed = sorted(set(old) - set(new))
        plan = writer.Plan(sorted(new), removed, [])
        writer._save(tree, plan)
        writer._stage(tree, new)
        writer._save(tree, writer.Plan(plan.files, plan.remove, plan.folders, "committed"))
        first = plan.files[0]
        folder, name = first.rsplit("/", 1)
        os.rename(out / folder / writer.staged_name(name), out / first)
    finally:
        tree.close()
    code, err = run(["generate", "--check", "-p", _lean(tmp_path), "-o", str(out)], capsys)
    assert code == 0 and "finished an interrupted generate" in err
    assert snapshot(out) == _as_bytes(new)
    # A kill before it: a prepared journal and staged files only.
    tree = _Tree(out)
    try:
        plan = writer.Plan(sorted(old), [], [])
        writer._save(tree, plan)
        writer._stage(tree, old)
    finally:
        tree.close()
    assert recover(out) is not None and snapshot(out) == _as_bytes(new)


def _tree_state(out: Path, old: dict[str, bytes], new: dict[str, bytes]) -> str:
    """'old', 'new', or 'pending' (a journal, or half of one, the next run acts on); fails on anything else."""
    files = snapshot(out)
    if JOURNAL in files or f"{JOURNAL}.tmp" in files:
        return "pending"
    visible = {path: data for path, data in files.items() if not path.rsplit("/", 1)[-1].endswith(STAGED_SUFFIX)}
    assert visible == files, f"staged files without a journal: {sorted(set(files) - set(visible))}"
    if files == old:
        return "old"
    if files == new:
        return "new"
    mixed_old = sorted(path for path in files if old.get(path) == files[path] and new.get(path) != files[path])
    mixed_new = sorted(path for path in files if new.get(path) == files[path] and old.get(path) != files[path])
    neither = sorted(path for path in files if files[path] not in (old.get(path), new.get(path)))
    missing = sorted(set(old) & set(new) - set(files))
    raise AssertionError(f"a mix of bundles: old {mixed_old}, new {mixed_new}, neither {neither}, missing {missing}")


def _run(out: Path, runner: ForkRunner, argv: list[str], kill_after: float | None = None) -> tuple[float, float]:
    """Run one generate; SIGKILL it `kill_after` seconds after its first change in `out`, if given.

    Return seconds from its start to that first change and to its exit.
    """
    before = {path: os.stat(out / path).st_ino for path in snapshot(out)}
    pid = runner.start(argv)
    started, changed = time.monotonic(), None
    exited: list[int] = []
    watcher = threading.Thread(target=lambda: exited.append(runner.wait()), daemon=True)
    watcher.start()
    while changed is None and watcher.is_alive() and time.monotonic() < started + 60:
        try:
            now = {path: os.stat(out / path).st_ino for path in snapshot(out)}
        except FileNotFoundError:  # a file renamed away between the walk and the stat
            now = {}
        if now != before:
            changed = time.monotonic() - started
        else:
            time.sleep(0.0005)
    if kill_after is not None and changed is not None:
        time.sleep(kill_after)
        with contextlib.suppress(ProcessLookupError):  # it may have finished
            os.kill(pid, signal.SIGKILL)
    watcher.join(timeout=60)
    ended = time.monotonic() - started
    assert len(exited) == 1 and (kill_after is not None or exited == [0]), exited
    return (changed if changed is not None else ended), ended


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_the_old_bundle_or_the_new_one(tmp_path: Path) -> None:
    old_text, new_text = _bundles(tmp_path)
    old, new = _as_bytes(old_text), _as_bytes(new_text)
    out = tmp_path / "out"
    replace_bundle(out, old_text)
    argv = {"old": ["generate", "-o", str(out)], "new": ["generate", "-p", _lean(tmp_path), "-o", str(out)]}
    runner = ForkRunner()
    try:
        # How long does a generate write? Watch one. Each kill then comes a random time
        # after that run's first change in the tree, up to a little past the write's length:
        # a kill while it imports or renders would prove nothing.
        first, ended = _run(out, runner, argv["new"])
        writing = ended - first
        state = _tree_state(out, old, new)
        assert state == "new"
        rng = random.Random(12)
        seen = {"old": 0, "new": 0, "pending": 0}
        for _ in range(40):
            _run(out, runner, argv["old" if state == "new" else "new"], kill_after=rng.uniform(0, writing * 1.2))
            state = _tree_state(out, old, new)
            seen[state] += 1
            if state == "pending":
                recover(out)  # what the next generate, or --check, does first
                state = _tree_state(out, old, new)
                assert state in ("old", "new")
    finally:
        runner.close()
    print(f"40 kills up to {writing * 1.2:.3f} s after a generate's first write: {seen}")
    assert seen["old"] and seen["new"], seen
    # The real command agrees: the tree is the bundle of the policy it was last left at.
    check = subprocess.run(
        [sys.executable, "-m", "memwarden.cli", *argv[state], "--check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stderr
