"""legacy_members_to_fhir transforms: a legacy member extract -> FHIR R4 NDJSON.

Input: CSV with a header and the columns in COLUMNS (glue/README.md). Each
valid row becomes a Patient and a Coverage (beneficiary -> the Patient), with
ids derived from the organisation and member id so a re-run yields the same
resources. Rows that cannot be mapped go to quarantine with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from .runtime import read_once

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
UUID_SHAPE = r"^(.{8})(.{4})(.{4})(.{4})(.{12}).*$"
# What a blank is made of: Unicode white space (Java's \s is ASCII only).
WHITESPACE = (
    "\t\n\u000b\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)

# Quarantine reason codes, checked in this order.
MISSING_MEMBER_ID = "MISSING_MEMBER_ID"
DUPLICATE_MEMBER_ID = "DUPLICATE_MEMBER_ID"
MISSING_NAME = "MISSING_NAME"
INVALID_BIRTH_DATE = "INVALID_BIRTH_DATE"
INVALID_SEX = "INVALID_SEX"
INVALID_COVERAGE_PERIOD = "INVALID_COVERAGE_PERIOD"
INVALID_RELATIONSHIP = "INVALID_RELATIONSHIP"


def _trim(c: str) -> Column:
    """The value trimmed of Unicode white space: computed once per row (`with_trimmed`)."""
    return F.col(f"_t_{c}")


def _blank(c: str) -> Column:
    return _nonblank(c).isNull()


def _nonblank(c: str) -> Column:
    """The trimmed value, or null when blank (absent, empty or only white space)."""
    return F.when(_trim(c) != "", _trim(c))


def _trimmed(c: str) -> Column:
    return F.btrim(F.col(c), F.lit(WHITESPACE))


def with_trimmed(members: DataFrame) -> DataFrame:
    """Adds `_t_<column>`, each value trimmed once: every rule and field below reads these
    (a trim with a 26-character set, done for each use, was most of the job's time)."""
    return members.select("*", *[_trimmed(c).alias(f"_t_{c}") for c in COLUMNS])


def _valid_date(c: str) -> Column:
    """A real calendar date (no Feb 30) of year 0001 or later, as FHIR's date needs."""
    return (
        F.col(c).rlike(DATE)
        & F.to_date(F.col(c), "yyyy-MM-dd").isNotNull()
        & ~F.col(c).startswith("0000")
    )


def stable_id(kind: str, org: str, member_id: Column) -> Column:
    """A UUID-shaped id from SHA-256 of kind, organisation and member id (its first 32
    hex digits as 8-4-4-4-12). One regex, not five substrings: Spark evaluates the
    digest once per substring otherwise."""
    h = F.sha2(F.concat_ws("|", F.lit(kind), F.lit(org), member_id), 256)
    return F.regexp_replace(h, UUID_SHAPE, "$1-$2-$3-$4-$5")


def duplicated_members(members: DataFrame) -> DataFrame:
    """(member_id, _first) for the member ids that come more than once: only keys
    are shuffled, and the result (usually empty or small) joins back by broadcast."""
    return (
        members.where(_trimmed("member_id") != "")
        .groupBy("member_id")
        .agg(F.count(F.lit(1)).alias("_copies"), F.min("_line").alias("_first"))
        .where(F.col("_copies") > 1)
        .select("member_id", "_first")
    )


def with_reasons(members: DataFrame, duplicated: DataFrame | None = None) -> DataFrame:
    """Adds `reason` (null when the row maps) and the trimmed values to every row of
    `members`, which has a `_line` column in file order (the first row of a member id
    wins)."""
    if duplicated is None:
        duplicated = duplicated_members(members)
    rows = with_trimmed(members.join(F.broadcast(duplicated), "member_id", "left"))
    relationship = F.lower(F.coalesce(_nonblank("relationship"), F.lit("self")))
    reason = (
        F.when(_blank("member_id"), MISSING_MEMBER_ID)
        .when(
            F.col("_first").isNotNull() & (F.col("_line") != F.col("_first")), DUPLICATE_MEMBER_ID
        )
        .when(_blank("first_name") & _blank("last_name"), MISSING_NAME)
        .when(
            ~_valid_date("birth_date") | (F.to_date("birth_date", "yyyy-MM-dd") > F.current_date()),
            INVALID_BIRTH_DATE,
        )
        .when(~F.upper(_trim("sex")).isin(list(GENDER)), INVALID_SEX)
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
    return rows.withColumn("reason", reason).drop("_first")


def _present(*items: tuple[Column, Column]) -> Column:
    """An array of the values whose condition holds, in order, or null (left out of the
    JSON) when none does: FHIR has no empty arrays. Built with `when`, not a lambda, so
    Spark compiles it."""
    result: Column | None = None
    for present, value in reversed(items):
        one = F.array(value)
        result = (
            F.when(present, one)
            if result is None
            else F.when(
                present, F.when(result.isNull(), one).otherwise(F.concat(one, result))
            ).otherwise(result)
        )
    return result if result is not None else F.lit(None)


def _one(c: str) -> Column:
    """[value] when the column is not blank, else null (left out)."""
    return _present((_nonblank(c).isNotNull(), _nonblank(c)))


def patient_json(patient_id: Column) -> Column:
    gender = F.create_map(*[x for k, v in GENDER.items() for x in (F.lit(k), F.lit(v))])

    def contact(system: str, c: str) -> tuple[Column, Column]:
        value = F.struct(F.lit(system).alias("system"), _nonblank(c).alias("value"))
        return (_nonblank(c).isNotNull(), value)

    address_given = ~(
        _blank("address_line") & _blank("city") & _blank("state") & _blank("postal_code")
    )
    patient = F.struct(
        F.lit("Patient").alias("resourceType"),
        patient_id.alias("id"),
        F.array(
            F.struct(
                F.lit(MEMBER_ID_SYSTEM).alias("system"),
                _trim("member_id").alias("value"),
            )
        ).alias("identifier"),
        # with_reasons guarantees a family or a given name.
        F.array(
            F.struct(_nonblank("last_name").alias("family"), _one("first_name").alias("given"))
        ).alias("name"),
        _present(contact("phone", "phone"), contact("email", "email")).alias("telecom"),
        gender[F.upper(_trim("sex"))].alias("gender"),
        F.col("birth_date").alias("birthDate"),
        F.when(
            address_given,
            F.array(
                F.struct(
                    _one("address_line").alias("line"),
                    _nonblank("city").alias("city"),
                    _nonblank("state").alias("state"),
                    _nonblank("postal_code").alias("postalCode"),
                    F.lit("US").alias("country"),
                )
            ),
        ).alias("address"),
    )
    return F.to_json(patient)


def coverage_json(org: str, patient_id: Column) -> Column:
    def klass(kind: str, col: str) -> tuple[Column, Column]:
        coding = F.struct(
            F.lit("http://terminology.hl7.org/CodeSystem/coverage-class").alias("system"),
            F.lit(kind).alias("code"),
        )
        value = F.struct(
            F.struct(F.array(coding).alias("coding")).alias("type"), _nonblank(col).alias("value")
        )
        return (_nonblank(col).isNotNull(), value)

    relationship = F.lower(F.coalesce(_nonblank("relationship"), F.lit("self")))
    coverage = F.struct(
        F.lit("Coverage").alias("resourceType"),
        stable_id("Coverage", org, F.col("member_id")).alias("id"),
        F.when(
            _blank("coverage_end") | (F.to_date("coverage_end", "yyyy-MM-dd") >= F.current_date()),
            "active",
        )
        .otherwise("cancelled")
        .alias("status"),
        F.coalesce(_nonblank("subscriber_id"), _trim("member_id")).alias("subscriberId"),
        F.struct(F.concat(F.lit("Patient/"), patient_id).alias("reference")).alias("beneficiary"),
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
        _present(klass("plan", "plan_id"), klass("group", "group_id")).alias("class"),
    )
    return F.to_json(coverage)


@dataclass
class Converted:
    resources: DataFrame  # resource_type, json
    quarantine: DataFrame  # reason, record (the row as JSON)
    rows: DataFrame  # every row of the extract with its reason (null when it maps)
    cached: list[DataFrame]  # what convert(cache=True) keeps: the caller releases it


def convert(members: DataFrame, org: str, cache: bool = False) -> Converted:
    """The resources and the quarantine. Each row is converted once, into one row holding
    its reason and either both resources or the refused record; with `cache`, the
    extract is read once and the converted rows are cached, so the counts and every
    write read that cache."""
    lined = members.select(*COLUMNS, F.monotonically_increasing_id().alias("_line"))
    duplicated = None
    cached = []
    if cache:
        lined = read_once(lined)
        duplicated = duplicated_members(lined).persist()
        cached = [lined, duplicated]
    rows = with_reasons(lined, duplicated)
    # The Patient id once per row (the Patient's and the Coverage's beneficiary).
    with_id = rows.select("*", stable_id("Patient", org, F.col("member_id")).alias("_patient_id"))
    valid = F.col("reason").isNull()
    patient_id = F.col("_patient_id")
    out = with_id.select(
        "reason",
        F.when(valid, patient_json(patient_id)).alias("patient"),
        F.when(valid, coverage_json(org, patient_id)).alias("coverage"),
        F.when(~valid, F.to_json(F.struct(*COLUMNS))).alias("record"),
    )
    if cache:
        out = read_once(out)
        cached.append(out)
    resources = out.where(valid)
    return Converted(
        resources=resources.select(
            F.lit("Patient").alias("resource_type"), F.col("patient").alias("json")
        ).unionByName(
            resources.select(
                F.lit("Coverage").alias("resource_type"), F.col("coverage").alias("json")
            )
        ),
        quarantine=out.where(~valid).select("reason", "record"),
        rows=out.select("reason"),
        cached=cached,
    )
