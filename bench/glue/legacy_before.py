"""Baseline for bench/glue: legacy_members_to_fhir as it was before issue 18
(commit 51256a4, transforms and job main unchanged), which reads its input three
times. Only the benchmark imports it; it is not shipped."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hoth_glue.args import resolve
from hoth_glue.runtime import join, spark_session, write_json

REQUIRED = [
    "run_id", "org", "ingest_date", "input_path", "landing_path", "quarantine_path", "report_path",
]  # fmt: skip

COLUMNS = [
    "member_id",
    "first_name",
    "last_name",
    "birth_date",
    "sex",
    "address_line",
    "city",
    "state",
    "postal_code",
    "phone",
    "email",
    "plan_id",
    "group_id",
    "subscriber_id",
    "relationship",
    "coverage_start",
    "coverage_end",
]
MEMBER_ID_SYSTEM = "https://hoth.example/fhir/legacy-member-id"
GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown"}
RELATIONSHIPS = ["self", "spouse", "child", "other"]
DATE = r"^\d{4}-\d{2}-\d{2}$"

# Quarantine reason codes, checked in this order.
MISSING_MEMBER_ID = "MISSING_MEMBER_ID"
DUPLICATE_MEMBER_ID = "DUPLICATE_MEMBER_ID"
MISSING_NAME = "MISSING_NAME"
INVALID_BIRTH_DATE = "INVALID_BIRTH_DATE"
INVALID_SEX = "INVALID_SEX"
INVALID_COVERAGE_PERIOD = "INVALID_COVERAGE_PERIOD"
INVALID_RELATIONSHIP = "INVALID_RELATIONSHIP"


def _blank(c: str) -> Column:
    return F.col(c).isNull() | (F.trim(F.col(c)) == "")


def _valid_date(c: str) -> Column:
    return F.col(c).rlike(DATE) & F.to_date(F.col(c), "yyyy-MM-dd").isNotNull()


def stable_id(kind: str, org: str, member_id: Column) -> Column:
    """A UUID-shaped id from SHA-256 of kind, organisation and member id."""
    h = F.sha2(F.concat_ws("|", F.lit(kind), F.lit(org), member_id), 256)
    return F.concat_ws(
        "-",
        F.substring(h, 1, 8),
        F.substring(h, 9, 4),
        F.substring(h, 13, 4),
        F.substring(h, 17, 4),
        F.substring(h, 21, 12),
    )


def with_reasons(members: DataFrame) -> DataFrame:
    """Adds `reason` (null when the row maps) to every row."""
    first = Window.partitionBy("member_id").orderBy(F.monotonically_increasing_id())
    rows = members.withColumn("_n", F.row_number().over(first))
    relationship = F.lower(F.coalesce(F.trim("relationship"), F.lit("self")))
    reason = (
        F.when(_blank("member_id"), MISSING_MEMBER_ID)
        .when(F.col("_n") > 1, DUPLICATE_MEMBER_ID)
        .when(_blank("first_name") & _blank("last_name"), MISSING_NAME)
        .when(
            ~_valid_date("birth_date") | (F.to_date("birth_date", "yyyy-MM-dd") > F.current_date()),
            INVALID_BIRTH_DATE,
        )
        .when(~F.upper(F.trim("sex")).isin(list(GENDER)), INVALID_SEX)
        .when(
            ~_valid_date("coverage_start")
            | (
                ~_blank("coverage_end")
                & (~_valid_date("coverage_end") | (F.col("coverage_end") < F.col("coverage_start")))
            ),
            INVALID_COVERAGE_PERIOD,
        )
        .when(~relationship.isin(RELATIONSHIPS), INVALID_RELATIONSHIP)
    )
    return rows.withColumn("reason", reason).drop("_n")


def _nonblank(c: str) -> Column:
    return F.when(_blank(c), None).otherwise(F.trim(F.col(c)))


def patients(valid: DataFrame, org: str) -> DataFrame:
    gender = F.create_map(*[x for k, v in GENDER.items() for x in (F.lit(k), F.lit(v))])
    telecom = F.filter(
        F.array(
            F.struct(F.lit("phone").alias("system"), _nonblank("phone").alias("value")),
            F.struct(F.lit("email").alias("system"), _nonblank("email").alias("value")),
        ),
        lambda t: t.value.isNotNull(),
    )
    given = F.filter(F.array(_nonblank("first_name")), lambda g: g.isNotNull())
    patient = F.struct(
        F.lit("Patient").alias("resourceType"),
        stable_id("Patient", org, F.col("member_id")).alias("id"),
        F.array(
            F.struct(
                F.lit(MEMBER_ID_SYSTEM).alias("system"),
                F.trim("member_id").alias("value"),
            )
        ).alias("identifier"),
        F.array(F.struct(_nonblank("last_name").alias("family"), given.alias("given"))).alias(
            "name"
        ),
        telecom.alias("telecom"),
        gender[F.upper(F.trim("sex"))].alias("gender"),
        F.col("birth_date").alias("birthDate"),
        F.array(
            F.struct(
                F.filter(F.array(_nonblank("address_line")), lambda x: x.isNotNull()).alias("line"),
                _nonblank("city").alias("city"),
                _nonblank("state").alias("state"),
                _nonblank("postal_code").alias("postalCode"),
                F.lit("US").alias("country"),
            )
        ).alias("address"),
    )
    return valid.select(F.lit("Patient").alias("resource_type"), F.to_json(patient).alias("json"))


def coverages(valid: DataFrame, org: str) -> DataFrame:
    def klass(kind: str, col: str) -> Column:
        coding = F.struct(
            F.lit("http://terminology.hl7.org/CodeSystem/coverage-class").alias("system"),
            F.lit(kind).alias("code"),
        )
        return F.struct(
            F.struct(F.array(coding).alias("coding")).alias("type"), _nonblank(col).alias("value")
        )

    patient_ref = F.concat(F.lit("Patient/"), stable_id("Patient", org, F.col("member_id")))
    relationship = F.lower(F.coalesce(F.trim("relationship"), F.lit("self")))
    coverage = F.struct(
        F.lit("Coverage").alias("resourceType"),
        stable_id("Coverage", org, F.col("member_id")).alias("id"),
        F.when(
            _blank("coverage_end") | (F.to_date("coverage_end", "yyyy-MM-dd") >= F.current_date()),
            "active",
        )
        .otherwise("cancelled")
        .alias("status"),
        F.coalesce(_nonblank("subscriber_id"), F.trim("member_id")).alias("subscriberId"),
        F.struct(patient_ref.alias("reference")).alias("beneficiary"),
        F.struct(
            F.array(
                F.struct(
                    F.lit("http://terminology.hl7.org/CodeSystem/subscriber-relationship").alias(
                        "system"
                    ),
                    relationship.alias("code"),
                )
            ).alias("coding")
        ).alias("relationship"),
        F.struct(
            F.col("coverage_start").alias("start"), _nonblank("coverage_end").alias("end")
        ).alias("period"),
        F.array(
            F.struct(F.coalesce(_nonblank("plan_id"), F.lit("unknown")).alias("display"))
        ).alias("payor"),
        F.filter(
            F.array(klass("plan", "plan_id"), klass("group", "group_id")),
            lambda c: c.value.isNotNull(),
        ).alias("class"),
    )
    return valid.select(F.lit("Coverage").alias("resource_type"), F.to_json(coverage).alias("json"))


@dataclass
class Converted:
    resources: DataFrame  # resource_type, json
    quarantine: DataFrame  # reason, record (the row as JSON)


def convert(members: DataFrame, org: str) -> Converted:
    rows = with_reasons(members.select(*COLUMNS))
    valid = rows.where(F.col("reason").isNull())
    refused = rows.where(F.col("reason").isNotNull()).select(
        "reason", F.to_json(F.struct(*COLUMNS)).alias("record")
    )
    return Converted(
        resources=patients(valid, org).unionByName(coverages(valid, org)), quarantine=refused
    )


def main(argv: list[str] | None = None) -> dict:
    args = resolve(argv, REQUIRED)
    started = time.monotonic()
    spark = spark_session("hoth-legacy-members-to-fhir")
    schema = ", ".join(f"{c} string" for c in COLUMNS)
    members = (
        spark.read.option("header", "true")
        .option("mode", "PERMISSIVE")
        .schema(schema)
        .csv(args["input_path"])
    )
    converted = convert(members, args["org"])
    converted.resources.persist()
    try:
        for resource_type in ("Patient", "Coverage"):
            converted.resources.where(F.col("resource_type") == resource_type).select(
                "json"
            ).write.mode("overwrite").text(join(args["landing_path"], resource_type))
        quarantined = {
            r["reason"]: r["count"]
            for r in converted.quarantine.groupBy("reason").count().collect()
        }
        converted.quarantine.write.mode("overwrite").json(join(args["quarantine_path"], "legacy"))
        written = {
            r["resource_type"]: r["count"]
            for r in converted.resources.groupBy("resource_type").count().collect()
        }
    finally:
        converted.resources.unpersist()
    report = {
        "job": "legacy_members_to_fhir",
        "runId": args["run_id"],
        "org": args["org"],
        "ingestDate": args["ingest_date"],
        "rowsRead": written.get("Patient", 0) + sum(quarantined.values()),
        "written": dict(sorted(written.items())),
        "quarantined": dict(sorted(quarantined.items())),
        "durationSeconds": round(time.monotonic() - started, 3),
    }
    write_json(join(args["report_path"], "legacy-report.json"), report)
    return report
