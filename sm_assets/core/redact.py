"""Redact secrets from describe payloads before anything is stored or logged.

Monitoring containers get configuration through `Environment` maps and `ContainerArguments`, and
teams put credentials there. sm-assets keeps every key name (so "which definitions pass a DB_PASSWORD"
stays answerable) and replaces the values. Opt out with SM_ASSETS_REDACT_SECRETS=false.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***REDACTED***"

# Flags whose value is a secret: --password=x, --api-key x, -token x, DB_SECRET=x ...
_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth|"
    r"session[_-]?key|client[_-]?secret|signature|bearer|pwd)",
    re.IGNORECASE,
)
# Values that are secrets whatever their flag says.
_SECRET_VALUE = re.compile(
    r"((AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key id
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"  # JWT
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"  # user:password@ in a URL
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|xox[baprs]-[A-Za-z0-9-]{10,})"
)


def _redact_arguments(args: list[Any]) -> list[Any]:
    out: list[Any] = []
    secret_next = False
    for arg in args:
        if not isinstance(arg, str):
            out.append(arg)
            secret_next = False
            continue
        if secret_next and not arg.startswith("-"):
            out.append(REDACTED)
            secret_next = False
            continue
        secret_next = False
        flag, sep, value = arg.partition("=")
        if sep and _SECRET_NAME.search(flag):
            out.append(f"{flag}={REDACTED}")
        elif _SECRET_VALUE.search(arg):
            out.append(REDACTED)
        else:
            out.append(arg)
            # "--password value": the next argument is the secret.
            secret_next = arg.startswith("-") and not sep and bool(_SECRET_NAME.search(arg))
    return out


def redact_secrets(value: Any) -> Any:
    """A copy of `value` with every Environment value and secret-looking ContainerArguments replaced."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "Environment" and isinstance(item, dict):
                out[key] = {k: REDACTED for k in item}
            elif key == "ContainerArguments" and isinstance(item, list):
                out[key] = _redact_arguments(item)
            else:
                out[key] = redact_secrets(item)
        return out
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value
