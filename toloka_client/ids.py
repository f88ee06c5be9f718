"""Deterministic operation ids: the same decision always sends the same ``operation_id``.

Toloka answers 409 OPERATION_ALREADY_EXISTS to a repeated id instead of creating
twice, which is what makes a replayed task or bonus creation harmless.
"""

from __future__ import annotations

import uuid

# A fixed namespace: ids are uuid5(namespace, parts joined by US), stable across releases.
_NAMESPACE = uuid.UUID("6f1c1a52-3c1e-4b1e-9d0e-7a1f4c2b9e10")


def operation_uuid(*parts: str) -> str:
    """A deterministic RFC 4122 UUID for an operation made of ``parts``."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))
