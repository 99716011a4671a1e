"""Allow-list de-identification of whole FHIR resources (the generic `resource` table).

Policy (glue/README.md, "De-identification policy"): a string stays in clear
only when the allow-list below names it; every other string is tokenized
(`tok:<hex>`), narrative and attachment data are dropped, and resource ids and
references are tokenized consistently with the core tables (tokens.py).
Numbers and booleans (quantities, flags) are kept. Callers bound the nesting
depth first (ingest.MAX_DEPTH), so the recursion here is bounded too.
"""

from __future__ import annotations

import re
from typing import Any

from .tokens import id_token, local_id_token, reference_token, token

# Element names whose string values are codes, URIs of terminologies or
# structure: kept in clear wherever they occur.
CODE_KEYS = frozenset(
    {
        "resourceType",
        "system",
        "code",
        "version",
        "versionId",
        "status",
        "use",
        "gender",
        "intent",
        "priority",
        "criticality",
        "severity",
        "type",
        "category",
        "mode",
        "kind",
        "language",
        "contentType",
        "unit",
        "comparator",
        "currency",
        "profile",
        "valueCode",
        "periodUnit",
        "durationUnit",
        "dayOfWeek",
        "when",
        "state",
        "country",
    }
)
# Date-valued elements: kept when the value is a FHIR date, dateTime, instant or time.
DATE_KEYS = frozenset(
    {
        "date",
        "start",
        "end",
        "issued",
        "created",
        "recorded",
        "authoredOn",
        "lastUpdated",
        "birthDate",
    }
)
DATE_SUFFIXES = ("Date", "DateTime", "Instant", "Time")
DATE = re.compile(
    r"^(\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?"
    r"(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?"
    r"|([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?)$"
)
# Dropped whole: narrative (`text.div`) and attachment content (`data`).
DROPPED_KEYS = frozenset({"div", "data"})
EXTENSION_KEYS = frozenset({"extension", "modifierExtension"})


def _is_date_key(k: str) -> bool:
    return k in DATE_KEYS or k.endswith(DATE_SUFFIXES)


def _string(key: bytes, k: str, v: str, node: dict, parent: str | None) -> str | None:
    if k in CODE_KEYS:
        return v
    if _is_date_key(k) and DATE.match(v):
        return v
    if k == "display" and ("code" in node or "system" in node) and "reference" not in node:
        return v  # a Coding's display: the terminology's text, not the source's
    if k == "url" and parent in EXTENSION_KEYS:
        return v  # which extension this is
    if k == "reference":
        return reference_token(key, v)
    if k == "id":
        return local_id_token(key, v)
    return token(key, v)


def _value(key: bytes, k: str, v: Any, node: dict, parent: str | None) -> Any:
    if isinstance(v, str):
        return _string(key, k, v, node, parent)
    if isinstance(v, dict):
        return _object(key, v, k)
    if isinstance(v, list):
        return [_value(key, k, item, node, parent) for item in v]
    return v  # numbers, booleans, null


def _object(key: bytes, node: dict, parent: str | None) -> dict:
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in DROPPED_KEYS:
            continue
        if k == "text" and isinstance(v, dict):
            continue  # narrative: rendered names and addresses
        out[k] = _value(key, k, v, node, parent)
    return out


def scrub(key: bytes, resource: dict) -> dict:
    """A copy of a FHIR resource that holds in clear only what the allow-list names."""
    out = _object(key, resource, None)
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if isinstance(rtype, str) and isinstance(rid, str):
        out["id"] = id_token(key, rtype, rid)
    return out
