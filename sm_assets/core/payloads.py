"""botocore responses -> the JSON payloads the lake stores verbatim (unknown fields kept)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def to_jsonable(value: Any) -> Any:
    """botocore values -> JSON values; datetimes become ISO-8601 strings in UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def merge_unknown_fields(parsed: Any, raw: Any) -> None:
    """Copy into `parsed` every key of the raw JSON body that botocore's model dropped."""
    if isinstance(parsed, dict) and isinstance(raw, dict):
        for key, raw_value in raw.items():
            if key not in parsed:
                parsed[key] = raw_value
            else:
                merge_unknown_fields(parsed[key], raw_value)
    elif isinstance(parsed, list) and isinstance(raw, list) and len(parsed) == len(raw):
        for parsed_item, raw_item in zip(parsed, raw, strict=True):
            merge_unknown_fields(parsed_item, raw_item)


def keep_unknown_fields(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    """botocore `after-call` hook: botocore parses against its bundled model and drops fields AWS added
    later; the raw body has them."""
    if http_response is None or http_response.status_code >= 300:
        return
    try:
        raw = json.loads(http_response.content or b"{}")
    except ValueError:
        return
    merge_unknown_fields(parsed, raw)


def payload(response: dict[str, Any]) -> dict[str, Any]:
    """A describe response without botocore's bookkeeping, as JSON values."""
    return to_jsonable({k: v for k, v in response.items() if k != "ResponseMetadata"})


def dumps(value: Any) -> str:
    """Compact JSON, key order as AWS sent it, unicode kept as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
