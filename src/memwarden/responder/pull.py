"""Take this host's alerts from every replica of an Alertmanager cluster (API v2), merged.

A fleet's responders need no route or receiver per host: each asks the replicas for the
alerts whose host labels name it (one request per identity label, as Alertmanager ANDs
the filters of one request) every recheck interval. Merging is conservative, for the
actions are not: an alert acts only while every replica that answers has it active; a
replica that does not answer (down, slow) is left out; an alert some answering replica no
longer has waits, and one none of them has counts as resolved.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import re
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from memwarden.policy.fleet import AlertmanagerCluster

from .identity import HostIdentity
from .payload import Alert, PayloadError, episode_key, parse_time

LOGGER = logging.getLogger("memwarden.responder")
ACTIVE, SUPPRESSED, PARTIAL = "active", "suppressed", "partial"
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")
# Alertmanager answers 503 beyond --web.get-concurrency GETs at once (8 on a small machine).
BUSY_ATTEMPTS = 3


def _api_alert(raw: Any) -> tuple[str, str, Alert] | None:
    """Return (episode key, state, alert) of one entry of GET /api/v2/alerts; None if malformed."""
    try:
        labels, fingerprint = raw["labels"], raw["fingerprint"]
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            return None
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            return None
        starts_at = parse_time(raw["startsAt"], "startsAt")
        annotations = {k: v for k, v in (raw.get("annotations") or {}).items() if isinstance(v, str)}
        state = str((raw.get("status") or {}).get("state", ACTIVE))
    except (KeyError, TypeError, AttributeError, PayloadError):
        return None
    alert = Alert("firing", dict(labels), annotations, starts_at, None, fingerprint.lower(), str(raw.get("generatorURL", "")))
    return episode_key(fingerprint, starts_at), state, alert


class ClusterView:
    """What the replicas of one Alertmanager cluster hold about this host, merged each round."""

    def __init__(self, cluster: AlertmanagerCluster, identity: HostIdentity, registry: CollectorRegistry | None = None) -> None:
        self.cluster = cluster
        self.pull = cluster.pull
        self.filters: list[str | None] = list(identity.matchers())
        if identity.single_host or not self.filters:
            # Alerts that name no host cannot be asked for by name; a single host's
            # Alertmanager holds only its own alerts anyway.
            self.filters.append(None)
        self._session: aiohttp.ClientSession | None = None
        self._active: list[Alert] = []
        registry = registry or CollectorRegistry()
        self.requests = Counter(
            "memwarden_responder_alertmanager_requests",
            "Requests to Alertmanager's API v2 alert list, by replica and result (ok; busy: a 503, tried again; error).",
            ["replica", "result"],
            registry=registry,
        )
        self.up = Gauge(
            "memwarden_responder_alertmanager_up",
            "Whether the replica answered the last round (1) or not (0).",
            ["replica"],
            registry=registry,
        )

    def _headers(self) -> dict[str, str]:
        # Read each round, so a rotated token or password is used without a restart.
        cluster = self.cluster
        if cluster.credentials_file:
            return {"Authorization": f"Bearer {Path(cluster.credentials_file).read_text().strip()}"}
        if cluster.username and cluster.password_file:
            password = Path(cluster.password_file).read_text().strip()
            credentials = base64.b64encode(f"{cluster.username}:{password}".encode()).decode()
            return {"Authorization": f"Basic {credentials}"}
        return {}

    async def _replica(self, url: str, headers: dict[str, str]) -> dict[str, tuple[str, Alert]] | None:
        """Return what one replica holds about this host, or None if it did not answer every request."""
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.cluster.timeout.seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        held: dict[str, tuple[str, Alert]] = {}
        for matcher in self.filters:
            params = {} if matcher is None else {"filter": matcher}
            try:
                body = await self._get(url, params, headers)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                LOGGER.warning("Alertmanager replica %s did not answer (%s); left out this round", url, error)
                return None
            for raw in body if isinstance(body, list) else []:
                parsed = _api_alert(raw)
                if parsed is not None:
                    held[parsed[0]] = (parsed[1], parsed[2])
        return held

    async def _get(self, url: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        """GET the alert list; a 503 (Alertmanager's --web.get-concurrency limit) is tried again soon."""
        assert self._session is not None
        attempt = 0
        while True:
            attempt += 1
            async with self._session.get(
                f"{url}/api/v2/alerts", params=params, headers=headers, allow_redirects=False
            ) as response:
                if response.status == 200:
                    self.requests.labels(url, "ok").inc()
                    return await response.json()
                self.requests.labels(url, "busy" if response.status == 503 else "error").inc()
                if response.status != 503 or attempt == BUSY_ATTEMPTS:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status, message=(await response.text())[:200]
                    )
            # A fleet's responders pull at unrelated moments; a short random wait spreads a crowd.
            await asyncio.sleep(random.uniform(0.05, 0.25) * attempt)

    async def states(self) -> dict[str, str] | None:
        """Return episode key -> active | suppressed | partial, merged over the replicas that answered.

        None when no replica answered: then nothing escalates or counts as resolved this round.
        """
        try:
            headers = self._headers()
        except OSError as error:
            LOGGER.warning("cannot read the Alertmanager credentials (%s); not asking this round", error)
            return None
        answers = await asyncio.gather(*(self._replica(url, headers) for url in self.cluster.urls))
        for url, answer in zip(self.cluster.urls, answers, strict=True):
            self.up.labels(url).set(0 if answer is None else 1)
        answered = [answer for answer in answers if answer is not None]
        if not answered:
            LOGGER.warning("no Alertmanager replica answered; nothing escalates or resolves this round")
            self._active = []
            return None
        states: dict[str, str] = {}
        active: list[Alert] = []
        for key in {key for answer in answered for key in answer}:
            held = [answer[key] for answer in answered if key in answer]
            if len(held) < len(answered):
                states[key] = PARTIAL  # a replica that answered no longer has it (or not yet)
            elif all(state == ACTIVE for state, _ in held):
                states[key] = ACTIVE
                active.append(held[0][1])
            else:
                states[key] = SUPPRESSED  # silenced or inhibited on a replica
        self._active = sorted(active, key=lambda alert: alert.episode)
        return states

    def pulled(self) -> list[Alert]:
        """The alerts every answering replica held active in the last round (pull mode only)."""
        return list(self._active) if self.pull else []

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
