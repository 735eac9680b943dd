"""Ask Alertmanager which alerts are still active, before escalating without a new notification."""

from __future__ import annotations

import logging

import aiohttp

from .payload import Alert, PayloadError, episode_key, parse_time

LOGGER = logging.getLogger("memwarden.responder")
TIMEOUT_SECONDS = 5.0


class AlertmanagerView:
    """Reads Alertmanager's API v2 alert list: episode key -> active | suppressed | unprocessed."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"

    async def states(self) -> dict[str, str] | None:
        """Return the state of every alert Alertmanager holds; None when it cannot be asked."""
        try:
            timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(self.url, allow_redirects=False) as response:
                    if response.status != 200:
                        LOGGER.warning("Alertmanager %s answered %s; not escalating this round", self.url, response.status)
                        return None
                    alerts = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            LOGGER.warning("cannot ask Alertmanager %s (%s); not escalating this round", self.url, error)
            return None
        states: dict[str, str] = {}
        for alert in alerts if isinstance(alerts, list) else []:
            try:
                key = episode_key(str(alert["fingerprint"]), parse_time(alert["startsAt"], "startsAt"))
                states[key] = str(alert.get("status", {}).get("state", "active"))
            except (KeyError, TypeError, AttributeError, PayloadError):
                continue
        return states

    def pulled(self) -> list[Alert]:
        """Alerts to take as if notified: none, one Alertmanager notifies by webhook (see pull.ClusterView)."""
        return []

    async def close(self) -> None:
        """Nothing to close: each round opens its own session."""
