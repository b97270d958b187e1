"""Error types and the AWS error codes that the collector and the doctor read the same way.

Kept free of imports from the rest of the core, so any module can raise or classify without a cycle.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration problem, explained in one line."""


class AccountDiscoveryError(RuntimeError):
    """Organizations could not list the accounts; the message says what to do instead."""


class LakeError(RuntimeError):
    """A lake file that is missing, corrupt or of the wrong shape (one-line message)."""


# "We are not allowed to look": an IAM policy or an SCP said no.
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
# Valid role credentials rejected by one region: the account has not enabled that (opt-in) region.
REGION_NOT_ENABLED_CODES = frozenset({"UnrecognizedClientException", "InvalidClientTokenId"})
# The collector records both as access_denied: neither is a fault worth retrying.
ACCESS_DENIED_CODES = DENIED_CODES | REGION_NOT_ENABLED_CODES
# The resource went away between the list and the describe (or its tags).
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException"})
# A describe or ListTags that names something SageMaker refuses: worth a log line and a status, never silence.
VALIDATION_CODES = frozenset({"ValidationException"})
EXPIRED_TOKEN_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def aws_error(exc: BaseException) -> tuple[str, str]:
    """(code, first line of the message) of a botocore ClientError, or of any other exception."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response.get("Error") or {}
        code = str(err.get("Code") or type(exc).__name__)
        message = str(err.get("Message") or "").splitlines()
        return code, message[0] if message else one_line(exc)
    return type(exc).__name__, one_line(exc) if str(exc) else type(exc).__name__
