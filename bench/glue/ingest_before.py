"""Baseline for bench/glue: ingest_fhir as it was before issue 18 (commit
51256a4: the deny-list scrub, the per-line Python UDF, from_json per table, dynamic
partition overwrite), transforms and job main unchanged. Only the benchmark
imports it; it is not shipped."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from hoth_glue.args import resolve
from hoth_glue.runtime import join, spark_session, tokenization_key, write_json

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


REQUIRED = [
    "run_id",
    "org",
    "ingest_date",
    "input_path",
    "curated_path",
    "quarantine_path",
    "report_path",
    "tokenization_secret_id",
]


def main(argv: list[str] | None = None) -> dict:
    args = resolve(argv, REQUIRED)
    started = time.monotonic()
    key = tokenization_key(args["tokenization_secret_id"])
    spark = spark_session("hoth-ingest-fhir")
    lines = (
        spark.read.option("recursiveFileLookup", "true")
        .text(args["input_path"])
        .where(F.trim("value") != "")
        .select("value", F.input_file_name().alias("source_file"))
    )
    result = ingest(lines, key)
    result.classified.persist()
    try:
        counts = result.classified.groupBy("reason", "resource_type").count().collect()
        for table, df in result.tables.items():
            with_partition(df, args["org"], args["ingest_date"], args["run_id"]).write.mode(
                "overwrite"
            ).partitionBy("org", "ingest_date", "run_id").parquet(join(args["curated_path"], table))
        # Its own subfolder: an overwrite of the run's whole quarantine path
        # would delete what legacy_members_to_fhir put in <quarantine_path>/legacy/.
        result.quarantine.write.mode("overwrite").json(join(args["quarantine_path"], "fhir"))
    finally:
        result.classified.unpersist()
    read: dict[str, int] = {}
    written: dict[str, int] = {}
    quarantined: dict[str, int] = {}
    for row in counts:
        rt = row["resource_type"] or "(unknown)"
        read[rt] = read.get(rt, 0) + row["count"]
        if row["reason"] is None:
            written[rt] = written.get(rt, 0) + row["count"]
        else:
            quarantined[row["reason"]] = quarantined.get(row["reason"], 0) + row["count"]
    report = {
        "job": "ingest_fhir",
        "runId": args["run_id"],
        "org": args["org"],
        "ingestDate": args["ingest_date"],
        "read": dict(sorted(read.items())),
        "written": dict(sorted(written.items())),
        "quarantined": dict(sorted(quarantined.items())),
        "linesRead": sum(read.values()),
        "durationSeconds": round(time.monotonic() - started, 3),
    }
    write_json(join(args["report_path"], "report.json"), report)
    return report
