import json
from pathlib import Path

from pyspark.sql import functions as F

from hoth_glue.legacy import COLUMNS, convert, stable_id

FIXTURES = Path(__file__).parent / "fixtures"


def members(spark):
    schema = ", ".join(f"{c} string" for c in COLUMNS)
    return spark.read.option("header", "true").schema(schema).csv(str(FIXTURES / "members.csv"))


def test_maps_valid_rows_to_linked_patient_and_coverage_with_stable_ids(spark):
    converted = convert(members(spark), "acme")
    rows = [
        json.loads(r.json) for r in converted.resources.orderBy("resource_type", "json").collect()
    ]
    by_type = {t: [r for r in rows if r["resourceType"] == t] for t in ("Patient", "Coverage")}
    assert [len(by_type["Patient"]), len(by_type["Coverage"])] == [2, 2]
    ada = next(p for p in by_type["Patient"] if p["identifier"][0]["value"] == "M001")
    ada_id = spark.range(1).select(stable_id("Patient", "acme", F.lit("M001")).alias("i")).first().i
    assert ada == {
        "resourceType": "Patient",
        "id": ada_id,
        "identifier": [{"system": "https://hoth.example/fhir/legacy-member-id", "value": "M001"}],
        "name": [{"family": "Lovelace", "given": ["Ada"]}],
        "telecom": [
            {"system": "phone", "value": "555-0101"},
            {"system": "email", "value": "ada@example.org"},
        ],
        "gender": "female",
        "birthDate": "1815-12-10",
        "address": [
            {
                "line": ["12 St James Sq"],
                "city": "London",
                "state": "NY",
                "postalCode": "10001",
                "country": "US",
            }
        ],
    }
    ada_coverage = next(
        c
        for c in by_type["Coverage"]
        if c["subscriberId"] == "S001" and c["relationship"]["coding"][0]["code"] == "self"
    )
    assert ada_coverage["beneficiary"] == {"reference": f"Patient/{ada_id}"}
    assert ada_coverage["period"] == {"start": "2026-01-01"}
    assert ada_coverage["status"] == "active"
    assert [c["value"] for c in ada_coverage["class"]] == ["GOLD", "G1"]
    alan = next(p for p in by_type["Patient"] if p["identifier"][0]["value"] == "M002")
    assert "telecom" not in alan or alan["telecom"] == []


def test_quarantines_every_row_it_cannot_map_with_its_reason(spark):
    refused = convert(members(spark), "acme").quarantine
    reasons = sorted((r.reason, json.loads(r.record).get("member_id")) for r in refused.collect())
    assert reasons == [
        ("DUPLICATE_MEMBER_ID", "M002"),
        ("INVALID_BIRTH_DATE", "M005"),
        ("INVALID_COVERAGE_PERIOD", "M007"),
        ("INVALID_RELATIONSHIP", "M008"),
        ("INVALID_SEX", "M006"),
        ("MISSING_MEMBER_ID", None),
        ("MISSING_NAME", "M004"),
    ]


def test_ids_are_stable_across_runs_and_differ_between_organisations(spark):
    df = spark.range(1)
    a1, a2, b = df.select(
        stable_id("Patient", "acme", F.lit("M001")),
        stable_id("Patient", "acme", F.lit("M001")),
        stable_id("Patient", "globex", F.lit("M001")),
    ).first()
    assert a1 == a2
    assert a1 != b
    assert len(a1) == 36
