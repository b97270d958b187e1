"""The collection status of one (account, region, resource type), and what the reports make of it."""

from __future__ import annotations

OK = "ok"
# ListTags was refused (an SCP, usually): the resources are collected, their tags are NULL.
TAGS_DENIED = "tags_denied"
# AssumeRole or the SageMaker calls were refused: nothing is known about the region.
ACCESS_DENIED = "access_denied"
# An opt-in region the account has not enabled: SageMaker rejects the role's valid credentials there.
# Nothing can exist in it, so it is neither a blind spot nor a failure.
REGION_DISABLED = "region_disabled"
ERROR = "error"
STATUSES: tuple[str, ...] = (OK, TAGS_DENIED, ACCESS_DENIED, REGION_DISABLED, ERROR)

# The reports' extra state: an as-of snapshot older than the stale age (the account left the organization,
# or stopped being collected) is reported as such and never counted as current.
STALE = "stale"
# Statuses whose resource counts are known (a disabled region has none).
COUNTED: tuple[str, ...] = (OK, TAGS_DENIED, REGION_DISABLED)
