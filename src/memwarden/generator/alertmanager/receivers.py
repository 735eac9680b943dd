"""Alertmanager receivers from the policy: the responder webhook and the human channels.

Secrets are file references only; Alertmanager 0.25 reads every one used here
(`credentials_file`, `api_url_file`, `routing_key_file`, `auth_password_file`).
"""

from __future__ import annotations

from typing import Any

from ...policy import Policy
from ...policy.alertmanager import Receiver
from .names import RESPONDER, UNROUTED, prefixed


def _template(name: str) -> str:
    return f'{{{{ template "memwarden.{name}" . }}}}'


def _bearer(credentials_file: str) -> dict[str, Any]:
    return {"authorization": {"type": "Bearer", "credentials_file": credentials_file}}


def responder(policy: Policy) -> dict[str, Any]:
    settings = policy.alertmanager.responder
    return {
        "name": RESPONDER,
        "webhook_configs": [
            {
                "url": settings.url,
                "send_resolved": settings.send_resolved,
                "max_alerts": 0,
                "http_config": _bearer(settings.credentials_file),
            }
        ],
    }


def _slack(receiver: Receiver) -> dict[str, Any]:
    assert receiver.slack is not None
    config: dict[str, Any] = {"send_resolved": receiver.send_resolved, "api_url_file": receiver.slack.api_url_file}
    if receiver.slack.channel:
        config["channel"] = receiver.slack.channel
    config.update(
        color=_template("slack.color"),
        title=_template("title"),
        title_link=_template("slack.title_link"),
        text=_template("text"),
    )
    return config


def _email(receiver: Receiver) -> dict[str, Any]:
    email = receiver.email
    assert email is not None
    config: dict[str, Any] = {
        "send_resolved": receiver.send_resolved,
        "to": email.to,
        "from": email.from_,
        "smarthost": email.smarthost,
        "require_tls": email.require_tls,
    }
    if email.auth_username:
        config["auth_username"] = email.auth_username
    if email.auth_password_file:
        config["auth_password_file"] = email.auth_password_file
    config.update(headers={"Subject": _template("email.subject")}, html=_template("email.html"), text=_template("text"))
    return config


def _pagerduty(receiver: Receiver) -> dict[str, Any]:
    assert receiver.pagerduty is not None
    return {
        "send_resolved": receiver.send_resolved,
        "routing_key_file": receiver.pagerduty.routing_key_file,
        "description": _template("title"),
        "severity": _template("pagerduty.severity"),
        "details": {"alerts": _template("text")},
        "links": [
            {"href": _template("slack.title_link"), "text": "Dashboard"},
            {"href": _template("runbook_url"), "text": "Runbook"},
        ],
    }


def _webhook(receiver: Receiver) -> dict[str, Any]:
    webhook = receiver.webhook
    assert webhook is not None
    config: dict[str, Any] = {"send_resolved": receiver.send_resolved, "url": webhook.url, "max_alerts": webhook.max_alerts}
    if webhook.credentials_file:
        config["http_config"] = _bearer(webhook.credentials_file)
    return config


_BUILDERS = {"slack": _slack, "email": _email, "pagerduty": _pagerduty, "webhook": _webhook}


def human(receiver: Receiver) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": prefixed(receiver.name)}
    for kind in receiver.kinds():
        entry[f"{kind}_configs"] = [_BUILDERS[kind](receiver)]
    return entry


def render_receivers(policy: Policy) -> list[dict[str, Any]]:
    """Return memwarden's receivers: the catch-all, the responder (when on), then the humans."""
    receivers: list[dict[str, Any]] = [{"name": UNROUTED}]
    if policy.alertmanager.responder.enabled:
        receivers.append(responder(policy))
    receivers += [human(receiver) for receiver in policy.alertmanager.receivers]
    return receivers
