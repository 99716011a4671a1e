"""ingest_fhir transforms: FHIR NDJSON lines -> curated, tokenized tables.

`classify` validates and scrubs every line (a pandas UDF: JSON parsing and
HMAC per resource); the core tables are then flattened natively from the
scrubbed JSON. Every input line ends in exactly one table or in quarantine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from .scrub import scrub

# Quarantine reason codes (glue/README.md).
BAD_JSON = "BAD_JSON"
NOT_AN_OBJECT = "NOT_AN_OBJECT"
MISSING_RESOURCE_TYPE = "MISSING_RESOURCE_TYPE"
INVALID_RESOURCE_TYPE = "INVALID_RESOURCE_TYPE"
MISSING_ID = "MISSING_ID"
INVALID_ID = "INVALID_ID"
INVALID_META = "INVALID_META"

ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
CLASSIFIED = "reason string, resource_type string, id string, last_updated string, json string"
CORE = {
    "Patient": "patient",
    "Coverage": "coverage",
    "Encounter": "encounter",
    "Condition": "condition",
    "Observation": "observation",
}


def classify_line(key: bytes, line: str | None) -> tuple:
    """(reason, resourceType, id, lastUpdated, scrubbed JSON) for one NDJSON line."""
    try:
        doc = json.loads(line) if line is not None else None
    except ValueError:
        return (BAD_JSON, None, None, None, None)
    if not isinstance(doc, dict):
        return (NOT_AN_OBJECT, None, None, None, None)
    rt = doc.get("resourceType")
    if rt is None or rt == "":
        return (MISSING_RESOURCE_TYPE, None, None, None, None)
    if not isinstance(rt, str) or not RESOURCE_TYPE.match(rt):
        return (INVALID_RESOURCE_TYPE, None, None, None, None)
    rid = doc.get("id")
    if rid is None or rid == "":
        return (MISSING_ID, rt, None, None, None)
    if not isinstance(rid, str) or not ID.match(rid):
        return (INVALID_ID, rt, None, None, None)
    meta = doc.get("meta", {})
    updated = meta.get("lastUpdated") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or (updated is not None and not isinstance(updated, str)):
        return (INVALID_META, rt, rid, None, None)
    return (None, rt, rid, updated, json.dumps(scrub(key, doc), separators=(",", ":")))


def classify(lines: DataFrame, key: bytes) -> DataFrame:
    """lines[value, source_file] -> lines plus the classification columns."""

    @pandas_udf(CLASSIFIED)
    def run(values: pd.Series) -> pd.DataFrame:
        return pd.DataFrame(
            [classify_line(key, v) for v in values],
            columns=["reason", "resource_type", "id", "last_updated", "json"],
        )

    return lines.withColumn("c", run(F.col("value"))).select("value", "source_file", "c.*")


def quarantine(classified: DataFrame) -> DataFrame:
    """Refused lines, raw (the quarantine zone is restricted), with their reason."""
    return classified.where(F.col("reason").isNotNull()).select(
        "reason", "resource_type", "source_file", F.col("value").alias("line")
    )


def _first_coding(col: str) -> list:
    c = F.col(col).getField("coding").getItem(0)
    return [c.getField("system"), c.getField("code"), c.getField("display")]


SCHEMAS = {
    "Patient": (
        "id string, gender string, birthDate string, deceasedBoolean boolean,"
        " deceasedDateTime string, identifier array<struct<system:string,value:string>>,"
        " name array<struct<family:string,given:array<string>>>,"
        " telecom array<struct<system:string,value:string>>,"
        " address array<struct<line:array<string>,state:string,postalCode:string,country:string>>,"
        " managingOrganization struct<reference:string>"
    ),
    "Coverage": (
        "id string, status string, subscriberId string, beneficiary struct<reference:string>,"
        " subscriber struct<reference:string>,"
        " relationship struct<coding:array<struct<system:string,code:string>>>,"
        " period struct<start:string,end:string>,"
        " payor array<struct<reference:string,display:string>>,"
        " class array<struct<type:struct<coding:array<struct<code:string>>>,value:string>>"
    ),
    "Encounter": (
        "id string, status string, class struct<system:string,code:string>,"
        " type array<struct<coding:array<struct<system:string,code:string,display:string>>>>,"
        " subject struct<reference:string>, period struct<start:string,end:string>,"
        " serviceProvider struct<reference:string>"
    ),
    "Condition": (
        "id string, clinicalStatus struct<coding:array<struct<code:string>>>,"
        " verificationStatus struct<coding:array<struct<code:string>>>,"
        " code struct<coding:array<struct<system:string,code:string,display:string>>>,"
        " subject struct<reference:string>, encounter struct<reference:string>,"
        " onsetDateTime string, recordedDate string"
    ),
    "Observation": (
        "id string, status string,"
        " category array<struct<coding:array<struct<code:string>>>>,"
        " code struct<coding:array<struct<system:string,code:string,display:string>>>,"
        " subject struct<reference:string>, encounter struct<reference:string>,"
        " effectiveDateTime string,"
        " valueQuantity struct<value:double,unit:string,system:string,code:string>,"
        " valueCodeableConcept struct<coding:array<struct<system:string,code:string>>>,"
        " valueString string"
    ),
}


def _flatten(resource_type: str, r) -> list:
    if resource_type == "Patient":
        return [
            r.id.alias("id"),
            r.gender.alias("gender"),
            r.birthDate.alias("birth_date"),
            F.coalesce(r.deceasedBoolean, r.deceasedDateTime.isNotNull()).alias("deceased"),
            F.transform(r.identifier, lambda i: i.value).alias("identifier_tokens"),
            F.transform(r.identifier, lambda i: i.system).alias("identifier_systems"),
            F.transform(r["name"], lambda n: n.family).alias("family_name_tokens"),
            F.flatten(F.transform(r["name"], lambda n: n.given)).alias("given_name_tokens"),
            F.transform(r.telecom, lambda t: t.value).alias("telecom_tokens"),
            F.flatten(F.transform(r.address, lambda a: a.line)).alias("address_line_tokens"),
            r.address.getItem(0).state.alias("state"),
            F.substring(r.address.getItem(0).postalCode, 1, 3).alias("postal_code_3"),
            r.address.getItem(0).country.alias("country"),
            r.managingOrganization.reference.alias("managing_organization_ref"),
        ]
    if resource_type == "Coverage":
        plan = F.filter(r["class"], lambda c: c.type.coding.getItem(0).code == "plan")
        return [
            r.id.alias("id"),
            r.status.alias("status"),
            r.subscriberId.alias("subscriber_id_token"),
            r.beneficiary.reference.alias("beneficiary_ref"),
            r.subscriber.reference.alias("subscriber_ref"),
            r.relationship.coding.getItem(0).code.alias("relationship_code"),
            r.period.start.alias("period_start"),
            r.period.end.alias("period_end"),
            F.transform(r.payor, lambda p: F.coalesce(p.reference, p.display)).alias("payors"),
            plan.getItem(0).value.alias("plan"),
        ]
    if resource_type == "Encounter":
        t = r.type.getItem(0).coding.getItem(0)
        return [
            r.id.alias("id"),
            r.status.alias("status"),
            r["class"].code.alias("class_code"),
            t.system.alias("type_system"),
            t.code.alias("type_code"),
            t.display.alias("type_display"),
            r.subject.reference.alias("subject_ref"),
            r.period.start.alias("period_start"),
            r.period.end.alias("period_end"),
            r.serviceProvider.reference.alias("service_provider_ref"),
        ]
    c = r.code.coding.getItem(0)
    if resource_type == "Condition":
        return [
            r.id.alias("id"),
            r.clinicalStatus.coding.getItem(0).code.alias("clinical_status"),
            r.verificationStatus.coding.getItem(0).code.alias("verification_status"),
            c.system.alias("code_system"),
            c.code.alias("code"),
            c.display.alias("code_display"),
            r.subject.reference.alias("subject_ref"),
            r.encounter.reference.alias("encounter_ref"),
            r.onsetDateTime.alias("onset"),
            r.recordedDate.alias("recorded_date"),
        ]
    v = r.valueCodeableConcept.coding.getItem(0)
    return [
        r.id.alias("id"),
        r.status.alias("status"),
        r.category.getItem(0).coding.getItem(0).code.alias("category"),
        c.system.alias("code_system"),
        c.code.alias("code"),
        c.display.alias("code_display"),
        r.subject.reference.alias("subject_ref"),
        r.encounter.reference.alias("encounter_ref"),
        r.effectiveDateTime.alias("effective"),
        r.valueQuantity.value.alias("value_quantity"),
        r.valueQuantity.unit.alias("value_unit"),
        v.system.alias("value_code_system"),
        v.code.alias("value_code"),
        r.valueString.alias("value_string"),
    ]


def core_table(classified: DataFrame, resource_type: str) -> DataFrame:
    """One curated core table, flattened from the scrubbed JSON."""
    rows = classified.where(F.col("reason").isNull() & (F.col("resource_type") == resource_type))
    parsed = rows.select(
        F.from_json("json", SCHEMAS[resource_type]).alias("r"), F.col("last_updated")
    )
    return parsed.select(*_flatten(resource_type, F.col("r")), F.col("last_updated"))


def generic_table(classified: DataFrame) -> DataFrame:
    """Every other resource type: type, id, last updated, scrubbed JSON."""
    return classified.where(
        F.col("reason").isNull() & ~F.col("resource_type").isin(list(CORE))
    ).select("resource_type", "id", "last_updated", F.col("json").alias("raw_json"))


@dataclass
class Ingested:
    tables: dict[str, DataFrame]
    quarantine: DataFrame
    classified: DataFrame


def ingest(lines: DataFrame, key: bytes) -> Ingested:
    """lines[value, source_file] -> the curated tables (unpartitioned) and quarantine."""
    classified = classify(lines, key)
    tables = {table: core_table(classified, rt) for rt, table in CORE.items()}
    tables["resource"] = generic_table(classified)
    return Ingested(tables=tables, quarantine=quarantine(classified), classified=classified)


def with_partition(df: DataFrame, org: str, ingest_date: str, run_id: str) -> DataFrame:
    return df.select(
        "*",
        F.lit(org).alias("org"),
        F.lit(ingest_date).alias("ingest_date"),
        F.lit(run_id).alias("run_id"),
    )
