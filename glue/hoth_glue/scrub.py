"""Tokenization of direct identifiers in FHIR JSON (keyed HMAC-SHA256).

Direct identifiers: identifier values, human names, telecom values, address
lines (and free-text addresses), narrative text, and extension strings (e.g.
mother's maiden name). Attachment data is dropped (kept: type, size, hash).
Tokens are `tok:<hex>` so that equal values join across tables and runs with
the same key, and nothing in clear remains.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

NAME_PARTS = ("family", "given", "prefix", "suffix", "text")


def token(key: bytes, value: Any) -> str | None:
    if value is None:
        return None
    digest = hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return f"tok:{digest}"


def _human_name(key: bytes, name: dict) -> dict:
    out = dict(name)
    for part in NAME_PARTS:
        if isinstance(out.get(part), list):
            out[part] = [token(key, v) for v in out[part]]
        elif part in out:
            out[part] = token(key, out[part])
    return out


def _address(key: bytes, address: dict) -> dict:
    out = dict(address)
    if isinstance(out.get("line"), list):
        out["line"] = [token(key, v) for v in out["line"]]
    if "text" in out:
        out["text"] = token(key, out["text"])
    return out


def scrub(key: bytes, node: Any, parent: str | None = None) -> Any:
    """Returns a copy of a FHIR JSON value with every direct identifier tokenized."""
    if isinstance(node, list):
        return [scrub(key, v, parent) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "text" and isinstance(v, dict) and "div" in v:
            continue  # narrative: rendered names and addresses
        if k == "data" and parent in ("attachment", "content", "photo", "presentedForm"):
            continue
        if k == "identifier":
            items = v if isinstance(v, list) else [v]
            scrubbed = [
                {**i, "value": token(key, i.get("value"))} if isinstance(i, dict) else i
                for i in items
            ]
            out[k] = scrubbed if isinstance(v, list) else scrubbed[0]
        elif k == "name" and (
            isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict))
        ):
            out[k] = (
                [_human_name(key, n) for n in v] if isinstance(v, list) else _human_name(key, v)
            )
        elif k == "telecom":
            out[k] = [
                {**t, "value": token(key, t.get("value"))} if isinstance(t, dict) else t
                for t in (v if isinstance(v, list) else [v])
            ]
        elif k in ("address", "valueAddress"):
            out[k] = [_address(key, a) for a in v] if isinstance(v, list) else _address(key, v)
        elif k == "subscriberId":
            out[k] = token(key, v)  # Coverage: the member's number
        elif k == "valueString" and parent == "extension":
            out[k] = token(key, v)
        else:
            out[k] = scrub(key, v, k)
    return out
