"""The jobs end to end through main(), on local Spark, with the key in Secrets Manager (moto)."""

import base64
import contextlib
import json
import shutil
from pathlib import Path

import boto3
import pytest

import ingest_fhir
import legacy_members_to_fhir
from hoth_glue.runtime import JobError
from hoth_glue.tokens import id_token, token

FIXTURES = Path(__file__).parent / "fixtures"
SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "synthea-10"
KEY = bytes(range(32))
P1 = f"Patient/{id_token(KEY, 'Patient', 'p1')}"

# Every direct identifier in the FHIR fixtures: none may appear in curated data.
CLEAR = [
    "999-01-2345",
    "Hopper",
    "Grace",
    "Brewster",
    "555-0199",
    "grace@example.org",
    "1 Navy Yard",
    "Van Horne",
    "MRN-77",
    "Babbage",
    "Charles",
    "SUB-42",
    "1234567893",
    "Kildare",
    "555-0111",
    "3 Hospital Rd",
]


@pytest.fixture(scope="module")
def secret_id(moto_server):
    name = "hoth-test/tokenization-key"
    client = boto3.client("secretsmanager")
    with contextlib.suppress(client.exceptions.ResourceExistsException):
        client.create_secret(
            Name=name, SecretString=json.dumps({"key": base64.b64encode(KEY).decode()})
        )
    return name


def run_ingest(
    tmp: Path,
    secret: str,
    run_id: str,
    source: Path = FIXTURES / "fhir",
    org: str = "acme",
    quarantine: Path | None = None,
):
    return ingest_fhir.main(
        [
            "ingest_fhir.py",
            "--JOB_NAME", "hoth-test-ingest",
            "--run_id", run_id,
            "--org", org,
            "--ingest_date", "2026-11-22",
            "--input_path", str(source),
            "--curated_path", str(tmp / "curated"),
            "--quarantine_path", str(quarantine or tmp / "quarantine" / run_id),
            "--report_path", str(tmp / "reports" / run_id),
            "--tokenization_secret_id", secret,
        ]
    )  # fmt: skip


def test_ingest_writes_each_table_and_a_report_and_quarantines_bad_lines(
    spark, tmp_path, secret_id
):
    report = run_ingest(tmp_path, secret_id, "run-1")
    assert report["written"] == {
        "Condition": 1,
        "Coverage": 1,
        "Encounter": 1,
        "Observation": 1,
        "Patient": 2,
        "Practitioner": 1,
    }
    assert report["quarantined"] == {
        "BAD_JSON": 1,
        "INVALID_ID": 1,
        "INVALID_META": 1,
        "INVALID_RESOURCE_TYPE": 1,
        "MISSING_ID": 1,
        "MISSING_RESOURCE_TYPE": 1,
        "NOT_AN_OBJECT": 1,
    }
    assert report["linesRead"] == 14
    saved = json.loads((tmp_path / "reports" / "run-1" / "report.json").read_text())
    assert saved["written"] == report["written"]
    curated = tmp_path / "curated"
    patient = spark.read.parquet(str(curated / "patient"))
    assert patient.count() == 2
    grace = patient.where(f"id = '{id_token(KEY, 'Patient', 'p1')}'").first()
    assert (grace.gender, grace.birth_date, grace.state, grace.postal_code_3, grace.deceased) == (
        "female", "1906-12-09", "VA", "222", False,
    )  # fmt: skip
    assert grace.identifier_tokens[0].startswith("tok:")
    assert (grace.org, str(grace.ingest_date), grace.run_id) == ("acme", "2026-11-22", "run-1")
    assert patient.where(f"id = '{id_token(KEY, 'Patient', 'p2')}'").first().deceased is True
    obs = spark.read.parquet(str(curated / "observation")).first()
    assert (obs.code_system, obs.code, obs.value_quantity, obs.value_unit, obs.subject_ref) == (
        "http://loinc.org", "8302-2", 165.5, "cm", P1,
    )  # fmt: skip
    cond = spark.read.parquet(str(curated / "condition")).first()
    assert (cond.code, cond.clinical_status, cond.encounter_ref) == (
        "44054006",
        "active",
        f"Encounter/{id_token(KEY, 'Encounter', 'e1')}",
    )
    enc = spark.read.parquet(str(curated / "encounter")).first()
    assert (enc.class_code, enc.type_code, enc.period_end) == (
        "AMB",
        "185349003",
        "2026-02-01T09:30:00Z",
    )
    cov = spark.read.parquet(str(curated / "coverage")).first()
    assert (cov.beneficiary_ref, cov.plan, cov.relationship_code) == (P1, "GOLD", "self")
    assert cov.payors == [token(KEY, "Plan A")]  # Reference.display: free text
    generic = spark.read.parquet(str(curated / "resource")).collect()
    assert [(r.resource_type, r.id) for r in generic] == [
        ("Practitioner", id_token(KEY, "Practitioner", "d1"))
    ]
    quarantine = spark.read.json(str(tmp_path / "quarantine" / "run-1" / "fhir"))
    assert sorted(r.reason for r in quarantine.collect()) == sorted(report["quarantined"])


def test_curated_output_holds_no_direct_identifier_in_clear(spark, tmp_path, secret_id):
    run_ingest(tmp_path, secret_id, "run-scan")
    for table in (tmp_path / "curated").iterdir():
        df = spark.read.parquet(str(table))
        for row in df.collect():
            text = json.dumps(row.asDict(recursive=True), default=str)
            for value in CLEAR:
                assert value not in text, f"{table.name} holds an identifier in clear"


def test_rerunning_a_run_replaces_its_partitions_and_another_run_adds(spark, tmp_path, secret_id):
    run_ingest(tmp_path, secret_id, "run-a")
    run_ingest(tmp_path, secret_id, "run-a")
    patient = str(tmp_path / "curated" / "patient")
    assert spark.read.parquet(patient).count() == 2
    run_ingest(tmp_path, secret_id, "run-b")
    counts = {
        r.run_id: r["count"]
        for r in spark.read.parquet(patient).groupBy("run_id").count().collect()
    }
    assert counts == {"run-a": 2, "run-b": 2}


def test_fails_with_a_message_naming_the_secret_when_the_key_cannot_be_read(tmp_path, moto_server):
    with pytest.raises(JobError) as failure:
        run_ingest(tmp_path, "hoth-test/no-such-secret", "run-x")
    assert str(failure.value) == (
        "Tokenization secret hoth-test/no-such-secret could not be read (ResourceNotFoundException)"
    )


def test_ingests_every_resource_of_the_synthea_export(spark, tmp_path, secret_id):
    if not SYNTHEA.exists():
        pytest.skip("../shared/fixtures/synthea-10 is not present on this machine")
    source = tmp_path / "synthea"
    source.mkdir()
    lines = {}
    for f in SYNTHEA.glob("*.ndjson"):
        if f.name == "log.ndjson":  # the export's log, not resources
            continue
        shutil.copy(f, source / f.name)
        lines[f.name.split(".")[0]] = sum(1 for line in f.open() if line.strip())
    report = run_ingest(tmp_path, secret_id, "synthea", source)
    assert report["quarantined"] == {}
    assert report["written"] == lines
    patient = spark.read.parquet(str(tmp_path / "curated" / "patient"))
    assert patient.count() == lines["Patient"]


def test_legacy_job_writes_fhir_ndjson_that_ingest_reads(spark, tmp_path, secret_id):
    # Prepare
    args = [
        "legacy_members_to_fhir.py",
        "--run_id", "run-legacy",
        "--org", "acme",
        "--ingest_date", "2026-11-22",
        "--input_path", str(FIXTURES / "members.csv"),
        "--landing_path", str(tmp_path / "landing" / "converted"),
        "--quarantine_path", str(tmp_path / "quarantine"),
        "--report_path", str(tmp_path / "reports"),
    ]  # fmt: skip
    # Act: both jobs get the same quarantine path, as the state machine passes it
    report = legacy_members_to_fhir.main(args)
    ingested = run_ingest(
        tmp_path,
        secret_id,
        "run-legacy",
        tmp_path / "landing" / "converted",
        quarantine=tmp_path / "quarantine",
    )
    # Assess: the ingest job's quarantine output leaves the legacy job's in place
    assert spark.read.json(str(tmp_path / "quarantine" / "legacy")).count() == 7
    assert report["written"] == {"Coverage": 2, "Patient": 2}
    assert sum(report["quarantined"].values()) == 7
    assert report["rowsRead"] == 9
    assert ingested["written"] == {"Coverage": 2, "Patient": 2}
    assert ingested["quarantined"] == {}


def test_writes_exactly_the_columns_the_catalog_declares(spark, tmp_path, secret_id):
    declared = json.loads((Path(__file__).parents[1] / "curated_tables.json").read_text())
    run_ingest(tmp_path, secret_id, "run-schema")
    for table, columns in declared["tables"].items():
        schema = spark.read.parquet(str(tmp_path / "curated" / table)).schema
        written = [[f.name, f.dataType.simpleString()] for f in schema.fields]
        assert written == columns + declared["partitionKeys"], table
