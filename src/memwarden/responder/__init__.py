"""The memwarden responder: Alertmanager's webhook that carries out the policy's responses.

responder = await start_responder(policy, state_dir=..., auth=authenticator_for(policy, host))
...
await responder.close()
"""

from .auth import AuthConfigError, Authenticator
from .engine import Engine
from .payload import Alert, Notification, PayloadError, parse_notification
from .server import RunningResponder, authenticator_for, start_responder

__all__ = [
    "Alert",
    "AuthConfigError",
    "Authenticator",
    "Engine",
    "Notification",
    "PayloadError",
    "RunningResponder",
    "authenticator_for",
    "parse_notification",
    "start_responder",
]
