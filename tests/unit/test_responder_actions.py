"""Actions on real child processes and real cgroups: signal, freeze, throttle, kill, protection."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from memwarden.responder.host import Host
from memwarden.responder.payload import parse_notification
from support.responder import (
    SLEEPER,
    STUBBORN,
    alert,
    audit_records,
    close_engine,
    make_engine,
    make_policy,
    marker,
    notification,
    python_child,
    resolved,
    rss_of,
    run,
    state_of,
    stop_child,
)
from support.servers import wait_until

CGROUP_ROOT = Path("/sys/fs/cgroup")
MiB = 1024 * 1024
HOG = (
    "import sys, time\n"
    "from memwarden import instrument\n"
    "hog = [bytearray(b'x' * (1 << 20)) for _ in range(int(sys.argv[2]))]\n"
    "instrument.install(component='hog', cleanup=[hog.clear])\n"
    "print('ready', flush=True)\n"
    "while True: time.sleep(0.05)\n"
)
TICKER = (
    "import sys, time\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    open(sys.argv[2], 'w').write(str(time.monotonic()))\n"
    "    time.sleep(0.02)\n"
)


def _respond(policy, tmp_path, *alerts, host=None):
    engine = make_engine(policy, tmp_path, host=host)

    async def go():
        decisions = engine.handle(parse_notification(json.dumps(notification(*alerts)).encode()))
        await engine.drain()
        return decisions

    try:
        return run(go())
    finally:
        close_engine(engine)


def _one_rule(actions, components, **responses):
    return make_policy({"outcome_delay": "0s", "rules": [{"name": "r", "actions": actions}], **responses}, components=components)


def _component(name, **match):
    return [{"name": name, "match": match, "budget": "1GiB"}]


def _ran(tmp_path):
    (record,) = audit_records(tmp_path, "ran")
    return record


# signal ------------------------------------------------------------------------------------


@pytest.mark.slow  # a real process that allocates and frees 100 MiB; the signal action's other tests stay quick
def test_a_signalled_memory_hog_frees_memory_through_memwarden_instrument(tmp_path):
    name = marker()
    hog = python_child(HOG, name, "96")
    try:
        before = rss_of(hog.pid)
        assert before > 90 * MiB
        policy = _one_rule([{"kind": "signal", "signal": "SIGUSR1"}], _component("hog", cmdline=name), outcome_delay="1s")
        _respond(policy, tmp_path, alert(component="hog"))
        record = _ran(tmp_path)
        assert record["result"] == "ok" and record["pids"] == [hog.pid]
        assert record["memory_before_bytes"] >= 90 * MiB
        assert record["reclaimed_bytes"] >= 80 * MiB, record
        assert rss_of(hog.pid) < before - 80 * MiB
    finally:
        stop_child(hog)


def test_signal_needs_a_component_with_processes(tmp_path):
    policy = _one_rule([{"kind": "signal"}], _component("gone", cmdline=marker()))
    _respond(policy, tmp_path, alert(component="gone"))
    assert _ran(tmp_path)["result"] == "no_target"


# freeze ------------------------------------------------------------------------------------


def _unified_root() -> Path | None:
    for candidate in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if (candidate / "cgroup.controllers").exists() and os.access(candidate, os.W_OK):
            return candidate
    return None


@contextmanager
def _cgroups(*trees: Path):
    """Make a fresh cgroup in each tree (same name); yield its path below the root."""
    name = marker()
    made = []
    try:
        for tree in trees:
            (tree / name).mkdir()
            made.append(tree / name)
        yield f"/{name}", made
    finally:
        for directory in reversed(made):
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)  # its last process is still exiting


def _join(directory: Path, pid: int) -> None:
    (directory / "cgroup.procs").write_text(str(pid))


def _ticks(path: Path) -> bool:
    """Whether the ticker child is still writing its file."""
    first = path.read_text()
    time.sleep(0.3)
    return path.read_text() != first


def test_freeze_uses_the_cgroup_v2_freezer_and_thaws_on_resolve(tmp_path):
    unified = _unified_root()
    if unified is None:
        pytest.skip("no writable cgroup v2 tree")
    ticks = tmp_path / "ticks"
    with _cgroups(unified) as (path, (directory,)):
        child = python_child(TICKER, marker(), str(ticks))
        try:
            _join(directory, child.pid)
            policy = _one_rule([{"kind": "freeze"}], _component("batch", cgroup=path))
            firing = alert(component="batch")
            _respond(policy, tmp_path, firing)
            record = _ran(tmp_path)
            assert record["result"] == "ok" and "cgroup2" in record["detail"]
            assert "frozen 1" in (directory / "cgroup.events").read_text()
            assert not _ticks(ticks)
            _respond(policy, tmp_path, resolved(firing))
            assert "frozen 0" in (directory / "cgroup.events").read_text()
            assert _ticks(ticks)
        finally:
            (directory / "cgroup.freeze").write_text("0")
            stop_child(child)


def test_freeze_uses_the_cgroup_v1_freezer_when_there_is_no_v2_cgroup(tmp_path):
    freezer, memory = CGROUP_ROOT / "freezer", CGROUP_ROOT / "memory"
    if not (freezer / "cgroup.procs").exists() or not os.access(freezer, os.W_OK):
        pytest.skip("no writable cgroup v1 freezer")
    if not (memory / "memory.usage_in_bytes").exists():
        pytest.skip("no cgroup v1 memory controller to find the component by")
    ticks = tmp_path / "ticks"
    with _cgroups(memory, freezer) as (path, (memory_dir, freezer_dir)):
        child = python_child(TICKER, marker(), str(ticks))
        try:
            _join(memory_dir, child.pid)
            _join(freezer_dir, child.pid)
            policy = _one_rule([{"kind": "freeze"}], _component("batch", cgroup=path))
            firing = alert(component="batch")
            _respond(policy, tmp_path, firing)
            assert "cgroup1" in _ran(tmp_path)["detail"]
            assert (freezer_dir / "freezer.state").read_text().strip() == "FROZEN"
            assert not _ticks(ticks)
            _respond(policy, tmp_path, resolved(firing))
            assert (freezer_dir / "freezer.state").read_text().strip() == "THAWED"
            assert _ticks(ticks)
        finally:
            (freezer_dir / "freezer.state").write_text("THAWED")
            stop_child(child)


def test_freeze_falls_back_to_sigstop_and_sigcont_without_a_cgroup_of_its_own(tmp_path):
    name = marker()
    ticks = tmp_path / "ticks"
    child = python_child(TICKER, name, str(ticks))
    try:
        policy = _one_rule([{"kind": "freeze"}], _component("batch", cmdline=name))
        firing = alert(component="batch")
        _respond(policy, tmp_path, firing)
        record = _ran(tmp_path)
        assert record["result"] == "ok" and "SIGSTOP" in record["detail"]
        assert state_of(child.pid) == "T"
        assert not _ticks(ticks)
        _respond(policy, tmp_path, resolved(firing))
        assert state_of(child.pid) in ("S", "R")
        assert _ticks(ticks)
    finally:
        stop_child(child)


def test_thaw_never_continues_a_process_that_reused_the_pid(tmp_path):
    from memwarden.responder.actions import thaw

    child = python_child(SLEEPER, marker())
    try:
        os.kill(child.pid, signal.SIGSTOP)
        wait_until(lambda: state_of(child.pid) == "T", timeout=5)
        stale = {"method": "sigstop", "processes": [[child.pid, 1]]}  # another start time: another process
        assert "nothing to thaw" in thaw(stale, "/proc")
        assert state_of(child.pid) == "T"
    finally:
        stop_child(child)


# kill --------------------------------------------------------------------------------------


def test_kill_escalates_from_sigterm_to_sigkill_for_a_process_that_ignores_sigterm(tmp_path):
    name = marker()
    stubborn = python_child(STUBBORN, name)
    try:
        policy = _one_rule([{"kind": "kill", "sigkill_after": "500ms", "timeout": "5s"}], _component("leaky", cmdline=name))
        _respond(policy, tmp_path, alert(component="leaky"))
        record = _ran(tmp_path)
        assert stubborn.wait(timeout=5) == -signal.SIGKILL
        assert "ignored SIGTERM" in stubborn.stderr.read()
        assert record["result"] == "ok"
        assert "SIGTERM" in record["detail"] and "SIGKILL after 500ms" in record["detail"]
    finally:
        stop_child(stubborn)


def test_kill_stops_at_sigterm_when_the_process_exits(tmp_path):
    name = marker()
    polite = python_child(SLEEPER, name)
    try:
        policy = _one_rule([{"kind": "kill", "sigkill_after": "3s"}], _component("leaky", cmdline=name))
        _respond(policy, tmp_path, alert(component="leaky"))
        assert polite.wait(timeout=5) == -signal.SIGTERM
        record = _ran(tmp_path)
        assert "SIGKILL" not in record["detail"]
        assert record["reclaimed_bytes"] > 0
    finally:
        stop_child(polite)


def test_kill_thaws_a_frozen_component_first_so_it_can_act_on_sigterm(tmp_path):
    name = marker()
    child = python_child(SLEEPER, name)
    try:
        policy = _one_rule(
            [{"kind": "freeze", "grace": "0s"}, {"kind": "kill", "sigkill_after": "3s"}],
            _component("batch", cmdline=name),
        )
        _respond(policy, tmp_path, alert(component="batch"))
        assert state_of(child.pid) == "T"
        _respond(policy, tmp_path, alert(component="batch"))
        assert child.wait(timeout=5) == -signal.SIGTERM
        assert [record["action"] for record in audit_records(tmp_path, "undone")] == ["thaw"]
    finally:
        stop_child(child)


@contextmanager
def _fake_proc(*pids: int):
    """A /proc that shows only these processes (and links to the real ones), so a
    largest-process kill cannot pick anything else on this shared machine."""
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        for pid in pids:
            os.symlink(f"/proc/{pid}", os.path.join(root, str(pid)))
        yield root


def test_kill_of_the_largest_process_picks_the_biggest_unprotected_one(tmp_path):
    big_protected = python_child(HOG, marker(), "96", argv0="alertmanager")
    big = python_child(HOG, marker(), "48")
    small = python_child(HOG, marker(), "8")
    try:
        with _fake_proc(big_protected.pid, big.pid, small.pid) as proc_root:
            policy = _one_rule([{"kind": "kill", "largest_process": True, "sigkill_after": "2s"}], [])
            _respond(policy, tmp_path, alert("MemoryUsageEmergency"), host=Host(policy, proc_root=proc_root))
        assert big.wait(timeout=5) == -signal.SIGTERM
        assert big_protected.poll() is None and small.poll() is None
        record = _ran(tmp_path)
        assert f"largest process {big.pid}" in record["detail"]
        assert record["reclaimed_bytes"] >= 40 * MiB
    finally:
        for child in (big_protected, big, small):
            stop_child(child)


# protection --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["signal", "freeze", "kill"])
@pytest.mark.parametrize("argv0", ["prometheus", "alertmanager", "prometheus-alertmanager", "my-database"])
def test_protected_processes_are_never_touched(tmp_path, kind, argv0):
    name = marker()
    child = python_child(SLEEPER, name, argv0=argv0)
    try:
        policy = _one_rule(
            [{"kind": kind, **({"signal": "SIGTERM"} if kind == "signal" else {})}],
            _component("monitoring", cmdline=name),
            protected_processes=["my-database"],
        )
        _respond(policy, tmp_path, alert(component="monitoring"))
        record = _ran(tmp_path)
        assert record["result"] == "refused", record
        assert "protected" in record["detail"]
        time.sleep(0.2)
        assert child.poll() is None and state_of(child.pid) in ("S", "R")
    finally:
        stop_child(child)


def test_the_responder_itself_and_its_parents_are_never_touched(tmp_path):
    pidfile = tmp_path / "self.pid"
    pidfile.write_text(str(os.getppid()))  # our parent and, below it, this very process
    policy = _one_rule([{"kind": "kill"}], _component("me", pidfile=str(pidfile)))
    assert {1, os.getpid(), os.getppid()} <= set(Host(policy).protected())
    # A pidfile match takes the process and all its descendants; on the real /proc our
    # parent's other children (the `tail` of `pytest | tail`, say) are fair game and would
    # be killed. Show the responder only our parent and us.
    with _fake_proc(os.getppid(), os.getpid()) as proc_root:
        host = Host(policy, proc_root=proc_root)
        _respond(policy, tmp_path, alert(component="me"), host=host)
    assert _ran(tmp_path)["result"] == "refused"


def test_protected_components_are_refused_before_anything_is_resolved(tmp_path):
    name = marker()
    child = python_child(SLEEPER, name)
    try:
        components = [{"name": "db", "match": {"cmdline": name}, "budget": "1GiB", "protected": True}]
        policy = make_policy({"rules": [{"name": "r", "actions": [{"kind": "kill"}]}]}, components=components)
        _respond(policy, tmp_path, alert(component="db"))
        (record,) = audit_records(tmp_path, "skipped")
        assert record["result"] == "refused" and "protected: true" in record["reason"]
        assert child.poll() is None
    finally:
        stop_child(child)


def test_a_cgroup_holding_a_protected_process_is_frozen_by_sigstop_of_the_others_only(tmp_path):
    unified = _unified_root()
    if unified is None:
        pytest.skip("no writable cgroup v2 tree")
    with _cgroups(unified) as (path, (directory,)):
        guard = python_child(SLEEPER, marker(), argv0="prometheus")
        worker = python_child(SLEEPER, marker())
        try:
            _join(directory, guard.pid)
            _join(directory, worker.pid)
            policy = _one_rule([{"kind": "freeze"}], _component("mixed", cgroup=path))
            _respond(policy, tmp_path, alert(component="mixed"))
            record = _ran(tmp_path)
            assert "SIGSTOP" in record["detail"] and "left alone" in record["detail"]
            assert state_of(worker.pid) == "T"
            assert state_of(guard.pid) in ("S", "R")
            assert "frozen 0" in (directory / "cgroup.events").read_text()
        finally:
            stop_child(guard)
            stop_child(worker)


# throttle ----------------------------------------------------------------------------------


def test_throttle_lowers_the_v1_soft_limit_and_restores_it_on_resolve(tmp_path):
    memory = CGROUP_ROOT / "memory"
    if not (memory / "memory.usage_in_bytes").exists():
        pytest.skip("no cgroup v1 memory controller")
    with _cgroups(memory) as (path, (directory,)):
        # v1 leaves a process's charges behind when it moves: join first, then allocate.
        joins_first = f"open({str(directory / 'cgroup.procs')!r}, 'w').write(str(__import__('os').getpid()))\n" + HOG
        hog = python_child(joins_first, marker(), "64")
        try:
            knob = directory / "memory.soft_limit_in_bytes"
            original = knob.read_text().strip()
            policy = _one_rule([{"kind": "throttle", "memory_high": "50%"}], _component("cache", cgroup=path))
            firing = alert(component="cache")
            _respond(policy, tmp_path, firing)
            lowered = int(knob.read_text())
            assert 0 < lowered < int(original)
            assert _ran(tmp_path)["result"] == "ok"
            _respond(policy, tmp_path, resolved(firing))
            assert knob.read_text().strip() == original
        finally:
            stop_child(hog)


def test_throttle_refuses_a_ceiling_under_the_floor(tmp_path):
    child = python_child(SLEEPER, marker())
    try:
        app = _fake_v2_tree(tmp_path / "cgroup", child.pid)
        (app / "memory.current").write_text("0")
        (app / "memory.stat").write_text("anon 0\nfile 0\ninactive_file 0\n")
        policy = _one_rule([{"kind": "throttle", "memory_high": "90%"}], _component("app", cgroup="/app"))
        _respond(policy, tmp_path, alert(component="app"), host=Host(policy, cgroup_root=str(tmp_path / "cgroup")))
        assert (app / "memory.high").read_text() == "max\n"
        assert _ran(tmp_path)["result"] == "refused"
    finally:
        stop_child(child)


def _fake_v2_tree(root: Path, pid: int) -> Path:
    """A cgroup v2 tree with the memory controller, as pure-v2 hosts have (this one has none)."""
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    app = root / "app"
    app.mkdir()
    (app / "cgroup.procs").write_text(f"{pid}\n")
    (app / "memory.current").write_text(str(800 * MiB))
    (app / "memory.stat").write_text(f"anon {600 * MiB}\nfile {200 * MiB}\ninactive_file {200 * MiB}\n")
    (app / "memory.max").write_text("max\n")
    (app / "memory.high").write_text("max\n")
    return app


def test_throttle_writes_memory_high_on_cgroup_v2_and_restores_max(tmp_path):
    child = python_child(SLEEPER, marker())
    try:
        app = _fake_v2_tree(tmp_path / "cgroup", child.pid)
        policy = _one_rule([{"kind": "throttle", "memory_high": "90%"}], _component("app", cgroup="/app"))
        host = Host(policy, cgroup_root=str(tmp_path / "cgroup"))
        firing = alert(component="app")
        _respond(policy, tmp_path, firing, host=host)
        assert int((app / "memory.high").read_text()) == int(600 * MiB * 0.9)  # 90 % of the working set
        _respond(policy, tmp_path, resolved(firing), host=host)
        assert (app / "memory.high").read_text() == "max"
    finally:
        stop_child(child)


def test_throttle_never_raises_a_lower_ceiling(tmp_path):
    child = python_child(SLEEPER, marker())
    try:
        app = _fake_v2_tree(tmp_path / "cgroup", child.pid)
        (app / "memory.high").write_text(str(100 * MiB))
        policy = _one_rule([{"kind": "throttle", "memory_high": "90%"}], _component("app", cgroup="/app"))
        _respond(policy, tmp_path, alert(component="app"), host=Host(policy, cgroup_root=str(tmp_path / "cgroup")))
        assert (app / "memory.high").read_text() == str(100 * MiB)
        assert "left as is" in _ran(tmp_path)["detail"]
    finally:
        stop_child(child)


def test_throttle_of_a_systemd_unit_goes_through_systemctl_set_property_runtime(tmp_path):
    calls = tmp_path / "calls"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1] == 'show': print('infinity')\n"
    )
    systemctl.chmod(0o755)
    policy = _one_rule([{"kind": "throttle", "memory_high": "512MiB"}], _component("api", systemd_unit="api"))
    host = Host(policy, systemctl=str(systemctl), cgroup_root=str(tmp_path / "no-cgroups"))
    firing = alert(component="api")
    _respond(policy, tmp_path, firing, host=host)
    _respond(policy, tmp_path, resolved(firing), host=host)
    assert calls.read_text().splitlines() == [
        "show --property=MemoryHigh --value api.service",
        f"set-property --runtime api.service MemoryHigh={512 * MiB}",
        "set-property --runtime api.service MemoryHigh=infinity",
    ]


# http --------------------------------------------------------------------------------------


def test_http_posts_to_the_instrument_endpoint_and_records_what_it_freed(tmp_path):
    code = (
        "import sys, time\n"
        "from memwarden import instrument\n"
        "hog = [bytearray(b'x' * (1 << 20)) for _ in range(48)]\n"
        "inst = instrument.install(component='hog', cleanup=[hog.clear], signal=None, listen='127.0.0.1:0')\n"
        "print(inst.url, flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    name = marker()
    child = python_child(code, name, ready=False)
    try:
        url = child.stdout.readline().strip()
        policy = _one_rule([{"kind": "http", "url": url}], _component("hog", cmdline=name), outcome_delay="500ms")
        _respond(policy, tmp_path, alert(component="hog"))
        record = _ran(tmp_path)
        assert record["result"] == "ok", record
        assert record["reported_freed_bytes"] >= 40 * MiB
        assert record["reclaimed_bytes"] >= 40 * MiB
    finally:
        stop_child(child)


def test_a_process_exempt_from_the_oom_killer_is_protected_too(tmp_path):
    # Lowering oom_score_adj needs CAP_SYS_RESOURCE, so this one runs on a /proc of files.
    proc = tmp_path / "proc"
    for pid, comm, adj in ((4242, "sshd", "-1000"), (4343, "worker", "0")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(f"/usr/sbin/{comm}\0-D\0".encode())
        (proc / str(pid) / "comm").write_text(comm + "\n")
        (proc / str(pid) / "oom_score_adj").write_text(adj + "\n")
        (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) S 1 " + "0 " * 40)
    protected = Host(make_policy(), proc_root=str(proc)).protected()
    assert "oom_score_adj -1000" in protected[4242]
    assert 4343 not in protected


@pytest.mark.slow  # waits out a 1 s timeout and two 1.5 s systemctl calls; a timed-out action's record is quick in test_responder_engine_execute
def test_a_throttle_that_times_out_while_systemctl_still_runs_is_undone_on_resolve(tmp_path):
    """The timeout abandons the action, not systemctl's thread: its MemoryHigh= lands late and
    must be restored all the same."""
    calls = tmp_path / "systemctl-calls"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\nif [ "$1" = show ]; then echo infinity; exit 0; fi\nsleep 1.5; echo "$*" >> {calls}\n')
    systemctl.chmod(0o755)
    child = python_child(SLEEPER, marker())
    try:
        root = tmp_path / "cgroup"
        root.mkdir()
        (root / "cgroup.controllers").write_text("cpu memory pids\n")
        unit = root / "system.slice" / "slow.service"
        unit.mkdir(parents=True)
        (unit / "cgroup.procs").write_text(f"{child.pid}\n")
        (unit / "memory.current").write_text(str(800 * MiB))
        (unit / "memory.stat").write_text(f"anon {600 * MiB}\nfile {200 * MiB}\ninactive_file {200 * MiB}\n")
        policy = _one_rule([{"kind": "throttle", "memory_high": "90%"}], _component("slow", systemd_unit="slow"))
        policy = _with_timeout(policy, "1s")  # shorter than validation allows: how a late write happens
        host = Host(policy, cgroup_root=str(root), systemctl=str(systemctl))
        firing = alert(component="slow")
        _respond(policy, tmp_path, firing, host=host)
        assert _ran(tmp_path)["result"] == "timeout"
        _respond(policy, tmp_path, resolved(firing), host=host)
        wait_until(lambda: calls.exists() and len(calls.read_text().splitlines()) == 2, timeout=10, what="systemctl")
        assert calls.read_text().splitlines() == [
            f"set-property --runtime slow.service MemoryHigh={int(600 * MiB * 0.9)}",
            "set-property --runtime slow.service MemoryHigh=infinity",
        ]
    finally:
        stop_child(child)


def _with_timeout(policy, timeout):
    """The policy with its one action's timeout replaced, past validation."""
    from memwarden.policy import Duration

    rule = policy.responses.rules[0]
    action = rule.actions[0].model_copy(update={"timeout": Duration(timeout)})
    rules = [rule.model_copy(update={"actions": [action]})]
    return policy.model_copy(update={"responses": policy.responses.model_copy(update={"rules": rules})})


# signalling the very process ---------------------------------------------------------------


def test_a_process_that_became_protected_after_it_was_chosen_is_not_signalled(tmp_path):
    from memwarden.responder.actions.base import ActionContext, AlertFacts, send, targets_of

    name = marker()
    go = tmp_path / "rename-now"
    renamer = (
        "import ctypes, os, sys, time\n"
        "print('ready', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "ctypes.CDLL(None).prctl(15, b'my-database', 0, 0, 0)  # PR_SET_NAME\n"
        "print('renamed', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    child = python_child(renamer, name)
    try:
        policy = _one_rule([{"kind": "kill"}], _component("batch", cmdline=name), protected_processes=["my-database"])
        host = Host(policy)
        action = policy.responses.rules[0].actions[0]
        facts = AlertFacts({}, {}, "firing", "0", "", "0@x")
        ctx = ActionContext(action, "r", facts, "batch", policy.component("batch"), host, False)
        (chosen,), spared, _ = targets_of(ctx)
        assert chosen.pid == child.pid and not spared
        assert send(host, chosen, 0) is True  # signal 0: allowed and delivered, changes nothing
        go.touch()  # it renames itself to a protected name between the choice and the signal
        assert child.stdout.readline().strip() == "renamed"
        assert send(host, chosen, signal.SIGTERM) is False
        time.sleep(0.2)
        assert child.poll() is None
    finally:
        stop_child(child)


def test_a_signal_reaches_the_very_process_and_never_a_finished_one(tmp_path):
    from memwarden.responder.actions.base import signal_process
    from memwarden.responder.host import identity

    child = python_child(SLEEPER, marker())
    process = identity("/proc", child.pid)
    assert process is not None
    assert signal_process("/proc", process, signal.SIGTERM) is True
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert signal_process("/proc", process, signal.SIGTERM) is False  # reaped: nothing to signal
    older = type(process)(os.getpid(), process.start_time)  # a live pid with another start time
    assert signal_process("/proc", older, signal.SIGUSR2) is False


def test_signal_may_ask_a_protected_component_to_clean_up_but_kill_may_not_touch_it(tmp_path):
    name = marker()
    hog = python_child(HOG, name, "64")
    try:
        components = [{"name": "db", "match": {"cmdline": name}, "budget": "1GiB", "protected": True}]
        policy = _one_rule([{"kind": "signal"}], components)
        _respond(policy, tmp_path, alert(component="db"))
        record = _ran(tmp_path)
        assert record["result"] == "ok" and record["pids"] == [hog.pid], record
        host = Host(policy)
        assert host.protected()[hog.pid] == "in protected component db"
        assert hog.pid not in host.protected(components=False)
        assert host.protection(hog.pid) == "in protected component db"
    finally:
        stop_child(hog)


def test_kernel_threads_are_told_by_their_flag_not_by_an_empty_command_line(tmp_path):
    proc = tmp_path / "proc"
    # pid, comm, flags (field 9 of stat), resident pages
    threads = ((2, "kthreadd", 0x00208040, 0), (4242, "kworker/0:1", 0x04208060, 0), (5151, "hider", 0x00400100, 50000))
    for pid, comm, flags, pages in threads:
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(b"")  # what a kernel thread shows, and a hiding process too
        (proc / str(pid) / "comm").write_text(comm + "\n")
        (proc / str(pid) / "oom_score_adj").write_text("0\n")
        (proc / str(pid) / "statm").write_text(f"{pages} {pages} 0 0 0 0 0\n")
        (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) S 1 1 1 0 -1 {flags} " + "0 " * 40)
    host = Host(make_policy(), proc_root=str(proc))
    protected = host.protected()
    assert protected[2] == protected[4242] == "a kernel thread"
    assert 5151 not in protected
    assert host.largest_process(protected)[0] == 5151


class _CountingHost(Host):
    """A real Host that counts how often each component is resolved."""

    def __init__(self, policy):
        super().__init__(policy)
        self.resolved: dict[str, int] = {}

    def resolve(self, component):
        self.resolved[component.name] = self.resolved.get(component.name, 0) + 1
        return super().resolve(component)


@pytest.mark.parametrize("kind", ["kill", "freeze"])
def test_an_action_looks_the_protected_components_up_once_however_many_processes_it_signals(tmp_path, kind):
    name = marker()
    children = [python_child(SLEEPER, name) for _ in range(4)]
    try:
        components = _component("batch", cmdline=name) + [
            {"name": f"db{i}", "match": {"cmdline": marker()}, "budget": "1GiB", "protected": True} for i in range(3)
        ]
        action = {"kind": kind, "sigkill_after": "5s"} if kind == "kill" else {"kind": kind, "method": "sigstop"}
        policy = _one_rule([action], components)
        host = _CountingHost(policy)
        _respond(policy, tmp_path, alert(component="batch"), host=host)
        record = _ran(tmp_path)
        assert record["result"] == "ok" and sorted(record["pids"]) == sorted(c.pid for c in children), record
        # Each protected component once for the action, not once more for every pid signalled.
        assert {f"db{i}": host.resolved.get(f"db{i}") for i in range(3)} == {"db0": 1, "db1": 1, "db2": 1}
    finally:
        for child in children:
            stop_child(child)
