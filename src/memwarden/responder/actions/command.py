"""`command`: run a program from the policy — argv only, never through a shell.

The alert reaches the program only as environment variables (MEMWARDEN_ALERTNAME,
MEMWARDEN_LABEL_<NAME>, MEMWARDEN_LABELS_JSON, ...), never spliced into its arguments,
so a label value like `; rm -rf /` is just text the program may read.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

from .base import DRY_RUN, FAILED, OK, ActionContext, Outcome

OUTPUT_LIMIT = 2048  # bytes of the program's output kept in the audit record
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command_environment(ctx: ActionContext, pids: tuple[int, ...] = ()) -> dict[str, str]:
    """Return the program's whole environment: a clean base, the policy's env, the alert as data."""
    alert = ctx.alert
    env = {"PATH": BASE_PATH, "LANG": "C.UTF-8"}
    env.update(ctx.action.env)
    env.update(
        {
            "MEMWARDEN_ALERTNAME": alert.labels.get("alertname", ""),
            "MEMWARDEN_STATUS": alert.status,
            "MEMWARDEN_SEVERITY": alert.labels.get("severity", ""),
            "MEMWARDEN_TIER": alert.labels.get("tier", ""),
            "MEMWARDEN_COMPONENT": ctx.component.name if ctx.component else alert.labels.get("component", ""),
            "MEMWARDEN_INSTANCE": alert.labels.get("instance", ""),
            "MEMWARDEN_FINGERPRINT": alert.fingerprint,
            "MEMWARDEN_STARTS_AT": alert.starts_at,
            "MEMWARDEN_RULE": ctx.rule,
            "MEMWARDEN_DRY_RUN": "0",
            "MEMWARDEN_LABELS_JSON": json.dumps(alert.labels, sort_keys=True),
            "MEMWARDEN_PIDS": " ".join(map(str, pids)),
        }
    )
    for variable, value in label_variables(alert.labels).items():
        # Labels come from outside: they never replace the policy's env or the fixed variables.
        env.setdefault(variable, value)
    return env


def label_variables(labels: dict[str, str]) -> dict[str, str]:
    """Return MEMWARDEN_LABEL_<NAME> for each label, one variable per label (never two on one).

    A label whose upper-cased name no other label shares gets MEMWARDEN_LABEL_<NAME IN
    CAPITALS>; labels that share it (`zone` and `ZONE`) each keep their name as written
    (MEMWARDEN_LABEL_zone, MEMWARDEN_LABEL_ZONE): environment names are case-sensitive.
    """
    shared: dict[str, int] = {}
    for name in labels:
        shared[name.upper()] = shared.get(name.upper(), 0) + 1
    return {
        f"MEMWARDEN_LABEL_{name.upper() if shared[name.upper()] == 1 else name}": value
        for name, value in labels.items()
    }


async def run_command(ctx: ActionContext) -> Outcome:
    argv = list(ctx.action.argv)
    pids = tuple((await asyncio.to_thread(ctx.host.resolve, ctx.component)).pids) if ctx.component else ()
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would run {argv}")
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=command_environment(ctx, pids),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a timeout stops its children too
        cwd="/",
    )
    try:
        output, _ = await process.communicate()
    except asyncio.CancelledError:
        _stop_group(process.pid)
        await process.wait()
        raise
    text = output[-OUTPUT_LIMIT:].decode("utf-8", "replace").strip()
    result = OK if process.returncode == 0 else FAILED
    outcome = Outcome(result, f"{argv[0]} exited with {process.returncode}", pids=pids)
    if text:
        outcome.extra["output"] = text
    return outcome


def _stop_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
