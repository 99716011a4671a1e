"""Tokens: keyed HMAC-SHA256, in Python and natively in Spark, bit-identical.

Three kinds (glue/README.md, "De-identification policy"):

- value tokens `tok:<hex>` = HMAC(key, value), for identifiers, names,
  telecoms, address lines and every other free-text string;
- resource id tokens `<hex>` = HMAC(key, "<Type>/<id>"): 64 hex digits, still
  a valid FHIR id, the same for a resource's `id` and every reference to it;
- local id tokens `<hex>` = HMAC(key, "#<id>") for contained resources and
  element ids, and `#<hex>` for the local references that point at them.

The Spark versions compose HMAC from `sha2` as RFC 2104 defines it:
H((K' xor opad) || H((K' xor ipad) || m)), K' the key zero-padded to the
block size (64 bytes), or its SHA-256 digest when longer than a block.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

BLOCK = 64
# A FHIR reference to a resource: relative `Type/id`, or absolute (any base),
# optionally versioned. The base is dropped: the token stands for the resource.
TYPED_REFERENCE = (
    r"^(?:.*/)?([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$"
)
# A conditional reference on an identifier: `Type?identifier=system|value`.
IDENTIFIER_REFERENCE = r"^([A-Z][A-Za-z]{1,63})\?identifier=([^|&]*)\|([^&]+)$"
_TYPED = re.compile(TYPED_REFERENCE)
_BY_IDENTIFIER = re.compile(IDENTIFIER_REFERENCE)
# Spark prints binary literals as 0x<hex> in plans; the padded keys are 64 bytes.
KEY_LITERAL_REDACTION = "0x[0-9A-Fa-f]{128}"


def hmac_hex(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def token(key: bytes, value: Any) -> str | None:
    """`tok:` + HMAC-SHA256(key, value) in hex; None stays None."""
    if value is None:
        return None
    return f"tok:{hmac_hex(key, str(value))}"


def id_token(key: bytes, resource_type: str, rid: str) -> str:
    return hmac_hex(key, f"{resource_type}/{rid}")


def local_id_token(key: bytes, rid: str) -> str:
    return hmac_hex(key, f"#{rid}")


def reference_token(key: bytes, reference: str) -> str:
    """A Reference.reference with the resource id (or identifier value) tokenized."""
    if reference.startswith("#"):
        return "#" + local_id_token(key, reference[1:]) if len(reference) > 1 else reference
    m = _TYPED.match(reference)
    if m:
        rtype, rid, history = m.group(1), m.group(2), m.group(3) or ""
        return f"{rtype}/{id_token(key, rtype, rid)}{history}"
    m = _BY_IDENTIFIER.match(reference)
    if m:
        return f"{m.group(1)}?identifier={m.group(2)}|{token(key, m.group(3))}"
    return token(key, reference)  # type: ignore[return-value]


class NativeTokens:
    """The same tokens as Spark columns (no Python worker involved)."""

    def __init__(self, key: bytes) -> None:
        k = hashlib.sha256(key).digest() if len(key) > BLOCK else key
        k = k.ljust(BLOCK, b"\0")
        self._ipad = F.lit(bytes(b ^ 0x36 for b in k))
        self._opad = F.lit(bytes(b ^ 0x5C for b in k))

    def hmac_hex(self, value: Column) -> Column:
        inner = F.unhex(F.sha2(F.concat(self._ipad, value.cast("binary")), 256))
        return F.sha2(F.concat(self._opad, inner), 256)

    def token(self, value: Column) -> Column:
        return F.concat(F.lit("tok:"), self.hmac_hex(value))

    def id_token(self, resource_type: Column, rid: Column) -> Column:
        return self.hmac_hex(F.concat(resource_type, F.lit("/"), rid))

    def reference(self, ref: Column) -> Column:
        typed = F.regexp_extract(ref, TYPED_REFERENCE, 1)
        by_identifier = F.regexp_extract(ref, IDENTIFIER_REFERENCE, 1)
        return (
            F.when(ref.isNull(), None)
            .when(ref == "#", ref)
            .when(
                ref.startswith("#"),
                F.concat(F.lit("#"), self.hmac_hex(ref)),
            )
            .when(
                typed != "",
                F.concat(
                    typed,
                    F.lit("/"),
                    self.hmac_hex(
                        F.concat(typed, F.lit("/"), F.regexp_extract(ref, TYPED_REFERENCE, 2))
                    ),
                    F.regexp_extract(ref, TYPED_REFERENCE, 3),
                ),
            )
            .when(
                by_identifier != "",
                F.concat(
                    by_identifier,
                    F.lit("?identifier="),
                    F.regexp_extract(ref, IDENTIFIER_REFERENCE, 2),
                    F.lit("|"),
                    self.token(F.regexp_extract(ref, IDENTIFIER_REFERENCE, 3)),
                ),
            )
            .otherwise(self.token(ref))
        )
