"""ingest_fhir transforms: FHIR NDJSON lines -> curated, de-identified tables.

Every line is parsed once, natively (Spark's JSON reader, no Python worker):
the envelope and, typed, the top-level elements the core tables use; the line
is checked, and each core table is flattened from its elements with tokens
computed by Spark (tokens.NativeTokens). Only the generic `resource` table,
whose whole document is de-identified by the allow-list in scrub.py, goes
through Python (an Arrow batch UDF over those rows only). Every input line
ends in exactly one table or in quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from .r4 import RESOURCE_TYPES
from .scrub import scrub
from .tokens import KEY_LITERAL_REDACTION, NativeTokens

# Quarantine reason codes (glue/README.md), checked in this order.
LINE_TOO_LONG = "LINE_TOO_LONG"
INVALID_ENCODING = "INVALID_ENCODING"
TOO_DEEP = "TOO_DEEP"
BAD_JSON = "BAD_JSON"
NOT_AN_OBJECT = "NOT_AN_OBJECT"
MISSING_RESOURCE_TYPE = "MISSING_RESOURCE_TYPE"
INVALID_RESOURCE_TYPE = "INVALID_RESOURCE_TYPE"
UNKNOWN_RESOURCE_TYPE = "UNKNOWN_RESOURCE_TYPE"
MISSING_ID = "MISSING_ID"
INVALID_ID = "INVALID_ID"
INVALID_META = "INVALID_META"
INVALID_ELEMENT = "INVALID_ELEMENT"
DUPLICATE_SUPERSEDED = "DUPLICATE_SUPERSEDED"

# Limits (glue/README.md): a line longer than this many UTF-8 bytes, or JSON
# nested deeper than this many objects/arrays, is quarantined unread.
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64

ID = r"^[A-Za-z0-9\-.]{1,64}$"
RESOURCE_TYPE = r"^[A-Z][A-Za-z]{1,63}$"
# What a JSON number, true or false looks like as text: such an `id` is a string
# only if the line writes it in quotes.
BARE_JSON_SCALAR = r"^(-?[0-9][0-9.eE+\-]*|true|false)$"
# FHIR dateTime (the shape of meta.lastUpdated; instants are dateTimes).
DATE_TIME = r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
# A \uD800-\uDBFF escape not followed by \uDC00-\uDFFF, or a low one not after a
# high one; `(?<!\\)(\\\\)*` makes sure the backslash starts an escape.
LONE_SURROGATE = (
    r"(?i)(?<!\\)(?:\\\\)*+(?:\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})"
    r"|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2})"
)
# Possessive quantifiers only: Java's regex engine recurses per repetition of
# a backtracking group, which overflows the stack on long strings.
JSON_STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'

CORE = {
    "Patient": "patient",
    "Coverage": "coverage",
    "Encounter": "encounter",
    "Condition": "condition",
    "Observation": "observation",
}
# The one parse of every line reads these top-level elements with their types
# (only the parts the core tables use; anything else is skipped unread).
# `class` and `type` differ between core types (Encounter.class is a Coding,
# Coverage.class a list; Encounter.type a list, Coverage.type a CodeableConcept):
# they are read as JSON text and parsed, small, by their own table (FRAGMENTS).
CODING = "struct<coding:array<struct<system:string,code:string,display:string>>>"
REFERENCE = "struct<reference:string>"
ELEMENTS = {
    "meta": "struct<lastUpdated:string,versionId:string>",
    "identifier": "array<struct<system:string,value:string>>",
    "name": "array<struct<family:string,given:array<string>>>",
    "telecom": "array<struct<system:string,value:string>>",
    "address": "array<struct<line:array<string>,state:string,postalCode:string,country:string>>",
    "managingOrganization": REFERENCE,
    "gender": "string",
    "birthDate": "string",
    "deceasedBoolean": "boolean",
    "deceasedDateTime": "string",
    "status": "string",
    "subscriberId": "string",
    "beneficiary": REFERENCE,
    "subscriber": REFERENCE,
    "relationship": CODING,
    "period": "struct<start:string,end:string>",
    "payor": "array<struct<reference:string,display:string>>",
    "class": "string",
    "type": "string",
    "subject": REFERENCE,
    "serviceProvider": REFERENCE,
    "clinicalStatus": CODING,
    "verificationStatus": CODING,
    "code": CODING,
    "encounter": REFERENCE,
    "onsetDateTime": "string",
    "recordedDate": "string",
    "category": f"array<{CODING}>",
    "effectiveDateTime": "string",
    "valueQuantity": "struct<value:double,unit:string>",
    "valueCodeableConcept": CODING,
    "valueString": "string",
}
FRAGMENTS = {
    ("Coverage", "class"): (
        "array<struct<type:struct<coding:array<struct<code:string>>>,value:string>>"
    ),
    ("Encounter", "class"): "struct<system:string,code:string>",
    ("Encounter", "type"): f"array<{CODING}>",
}
TOP_LEVEL = sorted(ELEMENTS)
CORRUPT = "_corrupt_record"
UNION = ", ".join(
    [
        "`resourceType` string",
        "`id` string",
        *[f"`{n}` {t}" for n, t in ELEMENTS.items()],
        f"`{CORRUPT}` string",
    ]
)
ENVELOPE = "resourceType string, id string, meta string"
# Three-digit ZIP areas of 20,000 people or fewer (HHS de-identification
# guidance, 2000 census): Safe Harbor allows only 000 for them.
RESTRICTED_ZIP3 = [
    "036", "059", "063", "102", "203", "556", "692", "790", "821",
    "823", "830", "831", "878", "879", "884", "890", "893",
]  # fmt: skip


def _nesting_deeper_than(value: Column, depth: int) -> Column:
    """True when the JSON text nests objects/arrays deeper than `depth`.

    The JSON reader enforces the limit (`maxNestingDepth`); this names the
    reason for the lines it refused. Strings are removed, then all but the
    brackets; each pass of removing `()` pairs takes one level away, so `depth`
    passes empty the text unless it nests deeper. Lines with no more than
    `depth` opening brackets cannot, and skip the passes.
    """
    openers = F.length(value) - F.length(F.translate(value, "{[", ""))
    brackets = F.translate(
        F.regexp_replace(F.regexp_replace(value, JSON_STRING, ""), r"[^\[\]{}]", ""),
        "[]{}",
        "()()",
    )
    for _ in range(depth):
        brackets = F.regexp_replace(brackets, r"\(\)", "")
    return F.when(openers <= depth, F.lit(False)).otherwise(F.length(brackets) > 0)


JSON_OPTIONS = {
    # As strict as Python's json module: no 'single quotes', NaN or Infinity.
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
}
PARSE_OPTIONS = {**JSON_OPTIONS, "maxNestingDepth": str(MAX_DEPTH)}


def classify(lines: DataFrame, key: bytes) -> DataFrame:
    """lines[value, source_file] -> one row per line: reason (null when kept),
    resource_type, id (the id token), last_updated, the ordering of duplicates,
    the raw line, and the core elements (`e_<name>`) of kept core resources."""
    session = lines.sparkSession
    session.conf.set("spark.sql.redaction.string.regex", KEY_LITERAL_REDACTION)
    tokens = NativeTokens(key)
    # A byte order mark is dropped; nothing else is changed before the checks
    # (a regex would replace invalid UTF-8 on the way).
    original = F.col("value")
    value = F.when(original.startswith("\ufeff"), F.expr("substring(value, 2)")).otherwise(original)
    # The one parse: envelope and core elements, typed. When it fails (not JSON,
    # too deep, or an element of another JSON type than expected), the line is
    # read again for its envelope only, as text: those lines are few, and a core
    # resource among them is quarantined (INVALID_ELEMENT).
    typed = lines.select(
        value.alias("value"),
        original.cast("binary").alias("raw"),
        "source_file",
        F.monotonically_increasing_id().alias("line_no"),
    ).select("*", F.from_json(F.col("value"), UNION, PARSE_OPTIONS).alias("t"))
    t = F.col("t")
    # Spark's reader fills `_corrupt_record` when the line is not JSON it can
    # read, or when an element has another JSON type than the schema's.
    typed_ok = t[CORRUPT].isNull()
    parsed = typed.select(
        "*",
        typed_ok.alias("ok"),
        F.when(~typed_ok, F.from_json(F.col("value"), ENVELOPE, PARSE_OPTIONS)).alias("e"),
    )
    line = F.col("value")
    raw = F.col("raw")
    ok = F.col("ok")
    env = F.col("e")
    rt = F.when(ok, t.resourceType).otherwise(env.resourceType)
    rid = F.when(ok, t.id).otherwise(env.id)
    text_meta = F.from_json(env.meta, "lastUpdated string, versionId string")
    updated = F.when(ok, t.meta.lastUpdated).otherwise(text_meta.lastUpdated)
    version = F.when(ok, t.meta.versionId).otherwise(text_meta.versionId)
    nothing = ~ok & F.coalesce(env.resourceType, env.id, env.meta).isNull()
    # `[<line>]` is an array of one when the line is one JSON value: Spark's
    # reader ignores what follows a first object (`{...}{...}`, `{...} junk`).
    one_value = F.json_array_length(F.concat(F.lit("["), line, F.lit("]"))) == 1
    # json_array_length allows single quotes and NaN: lines that are no object
    # to the strict reader are parsed once more, strictly (rare, and lazily).
    strict_value = F.from_json(
        F.concat(F.lit("["), line, F.lit("]")), "array<string>", JSON_OPTIONS
    )
    is_object = F.ltrim(line).startswith("{")
    numeric_id_in_line = F.concat(
        F.lit(r'"id"\s*:\s*'), F.regexp_replace(rid, r"([.\-])", r"\\$1"), F.lit(r"\s*[,}]")
    )
    reason = (
        F.when(F.octet_length(line) > MAX_LINE_BYTES, LINE_TOO_LONG)
        .when(
            (F.encode(line, "UTF-8") != line.cast("binary"))
            | (line.contains("\\u") & line.rlike(LONE_SURROGATE)),
            INVALID_ENCODING,
        )
        .when(nothing & _nesting_deeper_than(line, MAX_DEPTH), TOO_DEEP)
        .when(~F.coalesce(one_value, F.lit(False)), BAD_JSON)
        .when(nothing & strict_value.isNull(), BAD_JSON)
        .when(nothing & ~is_object, NOT_AN_OBJECT)
        .when(rt.isNull() | (rt == ""), MISSING_RESOURCE_TYPE)
        .when(~rt.rlike(RESOURCE_TYPE), INVALID_RESOURCE_TYPE)
        .when(~rt.isin(sorted(RESOURCE_TYPES)), UNKNOWN_RESOURCE_TYPE)
        .when(rid.isNull() | (rid == ""), MISSING_ID)
        # `"id": 5` reads as "5": an id that looks like a bare JSON scalar is
        # refused when the line writes it without quotes.
        .when(
            ~rid.rlike(ID)
            | (rid.rlike(BARE_JSON_SCALAR) & F.regexp_like(line, numeric_id_in_line)),
            INVALID_ID,
        )
        .when(~ok & env.meta.isNotNull() & ~F.ltrim(env.meta).startswith("{"), INVALID_META)
        .when(updated.isNotNull() & ~updated.rlike(DATE_TIME), INVALID_META)
        .when(~ok & rt.isin(list(CORE)), INVALID_ELEMENT)
    )
    # Computed once (a projection of its own), then read by name.
    checked = parsed.select(
        "*",
        reason.alias("reason"),
        rt.alias("rt"),
        rid.alias("rid"),
        updated.alias("updated"),
        version.alias("version"),
    )
    reason = F.col("reason")
    rt = F.col("rt")
    kept = reason.isNull()
    core = rt.isin(list(CORE))
    updated = F.col("updated")
    version = F.col("version")
    return checked.select(
        "reason",
        F.when(
            rt.isin(sorted(RESOURCE_TYPES))
            & F.coalesce(~reason.isin(LINE_TOO_LONG, INVALID_ENCODING, TOO_DEEP), F.lit(True)),
            rt,
        ).alias("resource_type"),
        F.when(kept, tokens.id_token(rt, F.col("rid"))).alias("id"),
        F.when(kept, updated).alias("last_updated"),
        # Duplicates: the latest lastUpdated wins, then the highest versionId
        # (numerically when both are numbers), then the later line.
        F.when(kept, F.to_timestamp(updated)).alias("order_updated"),
        F.when(kept, version.cast("long")).alias("order_version_number"),
        F.when(kept, version).alias("order_version"),
        "line_no",
        "source_file",
        # The raw line: for quarantine (a superseded duplicate too) and the generic table.
        "value",
        # Spark's base64 breaks lines every 76 characters: one string instead.
        F.when(reason == INVALID_ENCODING, F.regexp_replace(F.base64(raw), r"\s", "")).alias(
            "value_base64"
        ),
        *[F.when(kept & core, t[name]).alias(f"e_{name}") for name in TOP_LEVEL if name != "meta"],
    )


def deduplicate(classified: DataFrame) -> DataFrame:
    """Marks every kept line but the latest of its (resourceType, id) DUPLICATE_SUPERSEDED."""
    order = F.struct(
        F.col("order_updated"),
        F.col("order_version_number"),
        F.col("order_version"),
        F.col("line_no"),
    )
    winners = (
        classified.where(F.col("reason").isNull())
        .groupBy("resource_type", "id")
        .agg(F.count(F.lit(1)).alias("copies"), F.max(order).alias("winner"))
        .where(F.col("copies") > 1)
        .select("resource_type", "id", F.col("winner.line_no").alias("winner_line"))
    )
    joined = classified.join(winners, ["resource_type", "id"], "left")
    superseded = (
        F.col("reason").isNull()
        & F.col("winner_line").isNotNull()
        & (F.col("winner_line") != F.col("line_no"))
    )
    return joined.select(
        F.when(superseded, F.lit(DUPLICATE_SUPERSEDED)).otherwise(F.col("reason")).alias("reason"),
        *[c for c in classified.columns if c != "reason"],
    )


def quarantine(classified: DataFrame) -> DataFrame:
    """Refused lines, raw (the quarantine zone is restricted), with their reason.

    Invalid UTF-8 cannot be held in a JSON string unchanged: `line_base64`
    keeps those lines' exact bytes.
    """
    return classified.where(F.col("reason").isNotNull()).select(
        "reason",
        "resource_type",
        "source_file",
        F.col("value").alias("line"),
        F.col("value_base64").alias("line_base64"),
    )


def _element(resource_type: str, name: str) -> Column:
    schema = FRAGMENTS.get((resource_type, name))
    value = F.col(f"e_{name}")
    return value if schema is None else F.from_json(value, schema)


def _flatten(resource_type: str, tokens: NativeTokens) -> list[Column]:
    def el(name: str) -> Column:
        return _element(resource_type, name)

    ref = tokens.reference
    tok = tokens.token
    if resource_type == "Patient":
        address = el("address").getItem(0)
        zip3 = F.substring(address.postalCode, 1, 3)
        return [
            F.col("e_gender").alias("gender"),
            F.col("e_birthDate").alias("birth_date"),
            F.coalesce(F.col("e_deceasedBoolean"), F.col("e_deceasedDateTime").isNotNull()).alias(
                "deceased"
            ),
            F.transform(el("identifier"), lambda i: tok(i.value)).alias("identifier_tokens"),
            F.transform(el("identifier"), lambda i: i.system).alias("identifier_systems"),
            F.transform(el("name"), lambda n: tok(n.family)).alias("family_name_tokens"),
            F.flatten(F.transform(el("name"), lambda n: F.transform(n.given, tok))).alias(
                "given_name_tokens"
            ),
            F.transform(el("telecom"), lambda t: tok(t.value)).alias("telecom_tokens"),
            F.flatten(F.transform(el("address"), lambda a: F.transform(a.line, tok))).alias(
                "address_line_tokens"
            ),
            address.state.alias("state"),
            F.when(zip3.isin(RESTRICTED_ZIP3), F.lit("000")).otherwise(zip3).alias("postal_code_3"),
            address.country.alias("country"),
            ref(el("managingOrganization").reference).alias("managing_organization_ref"),
        ]
    if resource_type == "Coverage":
        plan = F.filter(el("class"), lambda c: c.type.coding.getItem(0).code == "plan")
        return [
            F.col("e_status").alias("status"),
            tok(F.col("e_subscriberId")).alias("subscriber_id_token"),
            ref(el("beneficiary").reference).alias("beneficiary_ref"),
            ref(el("subscriber").reference).alias("subscriber_ref"),
            el("relationship").coding.getItem(0).code.alias("relationship_code"),
            el("period").start.alias("period_start"),
            el("period").end.alias("period_end"),
            # Reference.display is free text (an organisation's or a person's name).
            F.transform(el("payor"), lambda p: F.coalesce(ref(p.reference), tok(p.display))).alias(
                "payors"
            ),
            plan.getItem(0).value.alias("plan"),
        ]
    if resource_type == "Encounter":
        t = el("type").getItem(0).coding.getItem(0)
        return [
            F.col("e_status").alias("status"),
            el("class").code.alias("class_code"),
            t.system.alias("type_system"),
            t.code.alias("type_code"),
            t.display.alias("type_display"),
            ref(el("subject").reference).alias("subject_ref"),
            el("period").start.alias("period_start"),
            el("period").end.alias("period_end"),
            ref(el("serviceProvider").reference).alias("service_provider_ref"),
        ]
    c = el("code").coding.getItem(0)
    if resource_type == "Condition":
        return [
            el("clinicalStatus").coding.getItem(0).code.alias("clinical_status"),
            el("verificationStatus").coding.getItem(0).code.alias("verification_status"),
            c.system.alias("code_system"),
            c.code.alias("code"),
            c.display.alias("code_display"),
            ref(el("subject").reference).alias("subject_ref"),
            ref(el("encounter").reference).alias("encounter_ref"),
            F.col("e_onsetDateTime").alias("onset"),
            F.col("e_recordedDate").alias("recorded_date"),
        ]
    v = el("valueCodeableConcept").coding.getItem(0)
    return [
        F.col("e_status").alias("status"),
        el("category").getItem(0).coding.getItem(0).code.alias("category"),
        c.system.alias("code_system"),
        c.code.alias("code"),
        c.display.alias("code_display"),
        ref(el("subject").reference).alias("subject_ref"),
        ref(el("encounter").reference).alias("encounter_ref"),
        F.col("e_effectiveDateTime").alias("effective"),
        el("valueQuantity").value.alias("value_quantity"),
        el("valueQuantity").unit.alias("value_unit"),
        v.system.alias("value_code_system"),
        v.code.alias("value_code"),
        tok(F.col("e_valueString")).alias("value_string"),  # free text
    ]


def core_table(classified: DataFrame, resource_type: str, key: bytes) -> DataFrame:
    """One curated core table, flattened natively from its elements."""
    rows = classified.where(F.col("reason").isNull() & (F.col("resource_type") == resource_type))
    return rows.select(
        F.col("id"), *_flatten(resource_type, NativeTokens(key)), F.col("last_updated")
    )


def generic_table(classified: DataFrame, key: bytes) -> DataFrame:
    """Every other resource type: type, id token, last updated, de-identified JSON."""
    import json

    # The lines here passed Spark's strict reader (UTF-8, no lone surrogates,
    # at most MAX_DEPTH deep, numbers Jackson can read), so Python's reader
    # takes them too and the recursion of scrub() is bounded.
    @pandas_udf("string")
    def deidentify(values: pd.Series) -> pd.Series:
        return pd.Series(
            [json.dumps(scrub(key, json.loads(v)), separators=(",", ":")) for v in values]
        )

    return classified.where(
        F.col("reason").isNull() & ~F.col("resource_type").isin(list(CORE))
    ).select("resource_type", "id", "last_updated", deidentify(F.col("value")).alias("raw_json"))


@dataclass
class Ingested:
    tables: dict[str, DataFrame]
    quarantine: DataFrame
    classified: DataFrame


def ingest(lines: DataFrame, key: bytes, classified: DataFrame | None = None) -> Ingested:
    """lines[value, source_file] -> the curated tables (unpartitioned) and quarantine.

    `classified` may be given (already classified and deduplicated, e.g. cached).
    """
    if classified is None:
        classified = deduplicate(classify(lines, key))
    tables = {table: core_table(classified, rt, key) for rt, table in CORE.items()}
    tables["resource"] = generic_table(classified, key)
    return Ingested(tables=tables, quarantine=quarantine(classified), classified=classified)
