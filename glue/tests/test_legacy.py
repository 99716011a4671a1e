import json
from pathlib import Path

from pyspark.sql import functions as F

from hoth_glue.generate import EDGE_ROWS, legacy
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
    assert "telecom" not in alan  # no phone or e-mail: left out, never []


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


def edge_members(spark, tmp_path):
    path = tmp_path / "edge.csv"
    assert legacy(0, 1, path, edge_rows=True) == len(EDGE_ROWS)
    schema = ", ".join(f"{c} string" for c in COLUMNS)
    return spark.read.option("header", "true").schema(schema).csv(str(path))


def no_empty_values(node) -> bool:
    if isinstance(node, dict):
        return bool(node) and all(no_empty_values(v) for v in node.values())
    if isinstance(node, list):
        return bool(node) and all(no_empty_values(v) for v in node)
    if isinstance(node, str):
        return node.strip() == node and node != ""
    return True


def test_edge_rows_map_without_empty_values_or_impossible_dates(spark, tmp_path):
    # Act
    converted = convert(edge_members(spark, tmp_path), "acme")
    resources = [json.loads(r.json) for r in converted.resources.collect()]
    refused = sorted(
        (json.loads(r.record)["member_id"], r.reason) for r in converted.quarantine.collect()
    )
    # Assess: exactly the rows EDGE_ROWS says are refused, with their reasons
    assert refused == sorted((m, reason) for m, _, _, reason in EDGE_ROWS if reason)
    assert all(no_empty_values(r) for r in resources)
    patients = {r["identifier"][0]["value"]: r for r in resources if r["resourceType"] == "Patient"}
    coverages = {r["subscriberId"]: r for r in resources if r["resourceType"] == "Coverage"}
    assert sorted(patients) == ["E001", "E004", "E007", "E009"]
    pid = patients["E001"]["id"]
    assert patients["E001"] == {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "https://hoth.example/fhir/legacy-member-id", "value": "E001"}],
        "name": [{"family": "Case", "given": ["Edge"]}],
        "gender": "female",
        "birthDate": "1980-05-17",
    }
    assert coverages["E001"] == {
        "resourceType": "Coverage",
        "id": coverages["E001"]["id"],
        "status": "active",
        "subscriberId": "E001",
        "beneficiary": {"reference": f"Patient/{pid}"},
        "relationship": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                    "code": "self",
                }
            ]
        },
        "period": {"start": "2026-01-01"},
        "payor": [{"display": "unknown"}],
    }
    assert patients["E004"]["name"] == [{"family": "Case"}]
    assert patients["E007"]["name"] == [{"given": ["Edge"]}]
    assert patients["E007"]["telecom"] == [{"system": "email", "value": "e007@example.org"}]
    assert patients["E007"]["address"] == [
        {"city": "Springfield", "state": "IL", "postalCode": "62701", "country": "US"}
    ]
    assert [c["value"] for c in coverages["S-E007"]["class"]] == ["GOLD"]
    assert patients["E009"]["name"] == [{"family": "Case", "given": ["Zoë"]}]
    assert patients["E009"]["address"][0]["state"] == "IL"
    assert patients["E009"]["telecom"] == [{"system": "phone", "value": "555-0100"}]
    assert [c["value"] for c in coverages["S-E009"]["class"]] == ["G1"]


def test_legacy_job_reports_edge_rows_exactly(spark, tmp_path):
    import legacy_members_to_fhir

    csv = tmp_path / "members.csv"
    legacy(20, 5, csv, edge_rows=True)
    report = legacy_members_to_fhir.main(
        [
            "job.py", "--run_id", "edge", "--org", "acme", "--ingest_date", "2026-11-22",
            "--input_path", str(csv), "--landing_path", str(tmp_path / "landing"),
            "--quarantine_path", str(tmp_path / "q"), "--report_path", str(tmp_path / "r"),
        ]
    )  # fmt: skip
    assert report["rowsRead"] == 29
    assert report["written"] == {"Coverage": 24, "Patient": 24}
    assert report["quarantined"] == {
        "INVALID_BIRTH_DATE": 2,
        "INVALID_COVERAGE_PERIOD": 2,
        "MISSING_NAME": 1,
    }
    lines = [
        json.loads(line)
        for f in sorted((tmp_path / "landing").glob("*/part-*"))
        for line in f.read_text(encoding="utf-8").splitlines()
    ]
    assert len(lines) == 48 and all(no_empty_values(r) for r in lines)
