"""The shipped IAM documents (sm_assets/iam/*.json), rendered for the configured partition and role name.

The files are written for the commercial partition (`arn:aws:`) and the default role name, so they can be
read and pasted as they are; `sm-assets iam-policy` prints them for the configuration in use: every ARN in the
partition of SM_ASSETS_REGIONS (`arn:aws-us-gov:`, `arn:aws-cn:`), the inventory role named SM_ASSETS_ROLE_NAME,
and the trust policy's ExternalId filled in from SM_ASSETS_EXTERNAL_ID when that is set.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from sm_assets.core.config import DEFAULT_ROLE_NAME, Settings

# name -> file in sm_assets/iam/: who carries it
DOCUMENTS = {
    "caller": "caller-policy.json",  # the collector's own identity (Organizations, sts:AssumeRole)
    "member": "member-role-policy.json",  # the inventory role in every member account (SageMaker reads)
    "trust": "member-role-trust-policy.json",  # that role's trust policy (who may assume it)
}
SHIPPED_ARN_PREFIX = "arn:aws:"
EXTERNAL_ID_PLACEHOLDER = "REPLACE_WITH_SM_ASSETS_EXTERNAL_ID"


def shipped_document(name: str) -> dict[str, Any]:
    """The document as shipped (commercial partition, default role name)."""
    return json.loads((resources.files("sm_assets") / "iam" / DOCUMENTS[name]).read_text())


def render_document(
    document: Any, partition: str, role_name: str = DEFAULT_ROLE_NAME, external_id: str | None = None
) -> Any:
    """`document` with every ARN moved to `partition` and the inventory role renamed to `role_name`."""
    if isinstance(document, dict):
        return {key: render_document(value, partition, role_name, external_id) for key, value in document.items()}
    if isinstance(document, list):
        return [render_document(value, partition, role_name, external_id) for value in document]
    if not isinstance(document, str):
        return document
    if document == EXTERNAL_ID_PLACEHOLDER and external_id:
        return external_id
    if not document.startswith(SHIPPED_ARN_PREFIX):
        return document
    arn = f"arn:{partition}:" + document.removeprefix(SHIPPED_ARN_PREFIX)
    inventory_role = f":role/{DEFAULT_ROLE_NAME}"
    return arn.removesuffix(inventory_role) + f":role/{role_name}" if arn.endswith(inventory_role) else arn


def render_policies(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every shipped document, rendered for `settings` (its partition, role name and ExternalId)."""
    return {
        name: render_document(shipped_document(name), settings.partition, settings.role_name, settings.external_id)
        for name in DOCUMENTS
    }
