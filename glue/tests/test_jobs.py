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


def direct_identifiers(node, found: set[str], parent: str | None = None) -> set[str]:
    """Every human name part, identifier value, telecom value and address line in a resource."""
    if isinstance(node, list):
        for item in node:
            direct_identifiers(item, found, parent)
    elif isinstance(node, dict):
        if parent == "name" and ("family" in node or "given" in node):
            for part in ("family", "given", "prefix", "suffix", "text"):
                v = node.get(part)
                found.update(v if isinstance(v, list) else [v] if v else [])
        if parent in ("identifier", "telecom") and isinstance(node.get("value"), str):
            found.add(node["value"])
        if parent in ("address", "valueAddress"):
            found.update(node.get("line") or [])
        for k, v in node.items():
            direct_identifiers(v, found, k)
    return found


def curated_strings(spark, curated: Path) -> str:
    """Every string (and string array element) of every curated table, one per line."""
    out = []
    for table in sorted(curated.iterdir()):
        df = spark.read.parquet(str(table))
        for f in df.schema.fields:
            kind = f.dataType.simpleString()
            if kind == "string":
                out += [r[0] for r in df.select(f.name).collect() if r[0] is not None]
            elif kind == "array<string>":
                out += [v for r in df.select(f.name).collect() for v in (r[0] or []) if v]
    return "\n".join(out)


def test_ingests_every_resource_of_the_synthea_export_with_no_identifier_in_clear(
    spark, tmp_path, secret_id
):
    if not SYNTHEA.exists():
        pytest.skip("../shared/fixtures/synthea-10 is not present on this machine")
    # Prepare: the export, and every direct identifier it holds
    source = tmp_path / "synthea"
    source.mkdir()
    lines = {}
    phi: set[str] = set()
    for f in SYNTHEA.glob("*.ndjson"):
        if f.name == "log.ndjson":  # the export's log, not resources
            continue
        shutil.copy(f, source / f.name)
        rows = [json.loads(line) for line in f.open() if line.strip()]
        lines[f.name.split(".")[0]] = len(rows)
        for resource in rows:
            direct_identifiers(resource, phi)
    patient_ids = {
        json.loads(line)["id"] for line in (SYNTHEA / "Patient.000.ndjson").open() if line.strip()
    }
    assert len(phi) > 500 and patient_ids <= phi  # Synthea's record number is Patient.id
    # Act
    report = run_ingest(tmp_path, secret_id, "synthea", source)
    # Assess: every line written, none of the identifiers in any curated string
    assert report["quarantined"] == {}
    assert report["written"] == lines
    patient = spark.read.parquet(str(tmp_path / "curated" / "patient"))
    assert patient.count() == lines["Patient"]
    text = curated_strings(spark, tmp_path / "curated")
    forms = {v for value in phi for v in (value, json.dumps(value)[1:-1])}
    leaked = sorted(v for v in forms if v in text)
    assert len(leaked) == 0, f"{len(leaked)} identifiers in clear, e.g. of length {len(leaked[0])}"
    # Joins survive: every Encounter's subject is a curated Patient.
    encounter = spark.read.parquet(str(tmp_path / "curated" / "encounter"))
    orphans = encounter.join(
        patient.selectExpr("concat('Patient/', id) AS subject_ref"), "subject_ref", "left_anti"
    )
    assert orphans.count() == 0


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


def test_a_run_keeps_one_row_per_resource_when_the_export_repeats_it(spark, tmp_path, secret_id):
    # Prepare: the fixture export three times over (as a source re-sending pages would)
    source = tmp_path / "repeated"
    source.mkdir()
    for copy in range(3):
        for f in (FIXTURES / "fhir").iterdir():
            shutil.copy(f, source / f"{f.stem}.{copy}.ndjson")
    # Act
    report = run_ingest(tmp_path, secret_id, "run-dup", source)
    # Assess: 7 resources kept once, their 14 older copies and 3 x 7 bad lines quarantined
    assert report["written"] == {
        "Condition": 1, "Coverage": 1, "Encounter": 1, "Observation": 1, "Patient": 2,
        "Practitioner": 1,
    }  # fmt: skip
    assert report["quarantined"] == {
        "BAD_JSON": 3, "DUPLICATE_SUPERSEDED": 14, "INVALID_ID": 3, "INVALID_META": 3,
        "INVALID_RESOURCE_TYPE": 3, "MISSING_ID": 3, "MISSING_RESOURCE_TYPE": 3,
        "NOT_AN_OBJECT": 3,
    }  # fmt: skip
    assert report["linesRead"] == 42
    curated = tmp_path / "curated"
    assert spark.read.parquet(str(curated / "patient")).count() == 2
    assert spark.read.parquet(str(curated / "resource")).count() == 1
    quarantine = spark.read.json(str(tmp_path / "quarantine" / "run-dup" / "fhir"))
    superseded = quarantine.where("reason = 'DUPLICATE_SUPERSEDED'").collect()
    assert len(superseded) == 14
    assert all(json.loads(r.line)["resourceType"] for r in superseded)  # kept raw


def test_one_poison_record_of_each_kind_does_not_fail_the_run(spark, tmp_path, secret_id):
    # Prepare: the records of the issue (a lone surrogate, 500 nested extensions), and more
    source = tmp_path / "poison"
    source.mkdir()
    shutil.copy(FIXTURES / "fhir" / "Patient.000.ndjson", source / "Patient.000.ndjson")
    ext = '{"url":"x","valueString":"v"}'
    for _ in range(500):
        ext = '{"url":"x","extension":[' + ext + "]}"
    (source / "Poison.000.ndjson").write_bytes(
        b"\n".join(
            [
                b'{"resourceType":"Patient","id":"s1","name":[{"given":["A\\ud800B"]}]}',
                ('{"resourceType":"Patient","id":"deep","extension":[' + ext + "]}").encode(),
                b'{"resourceType":"Patient","id":"latin1","name":[{"family":"M\xfcller"}]}',
                b'{"resourceType":"Unicorn","id":"u1"}',
                b'{"resourceType":"Patient","id":"big","text":{"div":"'
                + b"x" * (16 * 1024 * 1024)
                + b'"}}',
                b"this is not json",
            ]
        )
        + b"\n"
    )
    # Act
    report = run_ingest(tmp_path, secret_id, "run-poison", source)
    # Assess: the run succeeds with the rest, each poison line quarantined with its reason
    assert report["written"] == {"Patient": 2}
    assert report["quarantined"] == {
        "BAD_JSON": 1, "INVALID_ENCODING": 2, "LINE_TOO_LONG": 1, "TOO_DEEP": 1,
        "UNKNOWN_RESOURCE_TYPE": 1,
    }  # fmt: skip
    quarantine = spark.read.json(str(tmp_path / "quarantine" / "run-poison" / "fhir"))
    kept = [
        base64.b64decode(r.line_base64, validate=True)
        for r in quarantine.where("reason = 'INVALID_ENCODING'").collect()
    ]
    assert b'{"resourceType":"Patient","id":"latin1","name":[{"family":"M\xfcller"}]}' in kept


def test_rerunning_a_run_with_fewer_types_removes_what_it_no_longer_writes(
    spark, tmp_path, secret_id
):
    # Prepare: run-a over everything, run-b beside it
    run_ingest(tmp_path, secret_id, "run-a")
    run_ingest(tmp_path, secret_id, "run-b")
    patients_only = tmp_path / "patients-only"
    patients_only.mkdir()
    shutil.copy(FIXTURES / "fhir" / "Patient.000.ndjson", patients_only / "Patient.000.ndjson")
    # Act: run-a again, over Patients only
    run_ingest(tmp_path, secret_id, "run-a", patients_only)
    # Assess: run-a's partition of every other table is gone, run-b's untouched
    curated = tmp_path / "curated"
    for table in ("coverage", "encounter", "condition", "observation", "resource"):
        runs = {r.run_id for r in spark.read.parquet(str(curated / table)).collect()}
        assert runs == {"run-b"}, table
    patient_runs = spark.read.parquet(str(curated / "patient")).groupBy("run_id").count()
    assert {r.run_id: r["count"] for r in patient_runs.collect()} == {"run-a": 2, "run-b": 2}
