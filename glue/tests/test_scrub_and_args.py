"""Tokens (Python and native Spark), the allow-list scrub, and job arguments."""

import hashlib
import hmac
import json

import pytest
from pyspark.sql import functions as F

from hoth_glue.args import ArgumentError, resolve
from hoth_glue.scrub import scrub
from hoth_glue.tokens import NativeTokens, id_token, local_id_token, reference_token, token

KEY = b"k" * 32
SAMPLES = [
    "Grace",
    "",
    "Müller",
    "José Ñúñez",
    "李小龙",
    "emoji 🩺 and \u00f3",
    "999-01-2345",
    "x" * 200,  # longer than a block
    "tab\tnewline\n",
]
KEYS = [b"k" * 16, bytes(range(32)), bytes(range(64)), bytes(range(100))]  # <, =, > a block


def test_token_is_hmac_sha256_of_the_value_under_the_key():
    expected = hmac.new(KEY, b"Grace", hashlib.sha256).hexdigest()
    assert token(KEY, "Grace") == f"tok:{expected}"
    assert token(b"other-key-16byte", "Grace") != token(KEY, "Grace")
    assert token(KEY, None) is None


@pytest.mark.parametrize("key", KEYS, ids=["16B", "32B", "64B", "100B"])
def test_native_hmac_is_bit_identical_to_pythons_hmac(spark, key):
    # Prepare
    df = spark.createDataFrame([(s,) for s in [*SAMPLES, None]], "v string")
    native = NativeTokens(key)
    # Act
    rows = df.select(
        "v", native.hmac_hex(F.col("v")).alias("h"), native.token(F.col("v")).alias("t")
    )
    got = {r.v: (r.h, r.t) for r in rows.collect()}
    # Assess: against the standard library, not against tokens.py
    for s in SAMPLES:
        expected = hmac.new(key, s.encode("utf-8"), hashlib.sha256).hexdigest()
        assert got[s] == (expected, f"tok:{expected}"), repr(s)
    assert got[None] == (None, None)


REFERENCES = [
    "Patient/p1",
    "Patient/p1/_history/3",
    "https://ehr.example/fhir/Patient/p1",
    "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974493",
    "Location?address-city=Boston",
    "urn:uuid:5b6f1ea2-0c5e-4a7f-9f5e-2d4f8f0e8a11",
    "#med1",
    "#",
    "patient/lowercase",
]


def test_native_references_and_ids_match_the_python_tokens(spark):
    native = NativeTokens(KEY)
    df = spark.createDataFrame([(r,) for r in REFERENCES], "r string")
    got = dict(
        df.select("r", native.reference(F.col("r")).alias("t")).collect()  # type: ignore[arg-type]
    )
    assert got == {r: reference_token(KEY, r) for r in REFERENCES}
    pid = id_token(KEY, "Patient", "p1")
    assert got["Patient/p1"] == f"Patient/{pid}"
    assert got["https://ehr.example/fhir/Patient/p1"] == f"Patient/{pid}"
    assert got["Patient/p1/_history/3"] == f"Patient/{pid}/_history/3"
    assert got[REFERENCES[3]] == (
        f"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{token(KEY, '9999974493')}"
    )
    assert got["#med1"] == f"#{local_id_token(KEY, 'med1')}"
    assert got["urn:uuid:5b6f1ea2-0c5e-4a7f-9f5e-2d4f8f0e8a11"].startswith("tok:")
    one = spark.range(1).select(native.id_token(F.lit("Patient"), F.lit("p1"))).first()[0]
    assert one == pid and len(pid) == 64


def test_query_plans_show_no_key_material(spark):
    key = bytes(range(200, 232))
    df = spark.range(1).select(NativeTokens(key).token(F.lit("x")).alias("t"))
    spark.conf.set("spark.sql.redaction.string.regex", "0x[0-9A-Fa-f]{128}")
    plan = df._jdf.queryExecution().explainString(
        spark._jvm.org.apache.spark.sql.execution.ExplainMode.fromString("extended")
    )
    padded = key.ljust(64, b"\0")
    for pad in (0x36, 0x5C):
        assert bytes(b ^ pad for b in padded).hex().upper() not in plan.upper()
    assert "redacted" in plan


def test_scrub_keeps_only_what_the_allow_list_names():
    # Prepare: a Synthea-like Claim and CareTeam in one document
    doc = {
        "resourceType": "Claim",
        "id": "c1",
        "meta": {"lastUpdated": "2026-01-01T00:00:00Z", "source": "ehr-42"},
        "text": {"status": "generated", "div": "<div>Grace Hopper</div>"},
        "status": "active",
        "patient": {"reference": "Patient/p1", "display": "Grace Hopper"},
        "billablePeriod": {"start": "2026-01-01", "end": "not a date"},
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "institutional",
                    "display": "Institutional",
                }
            ],
            "text": "seen by Dr Kildare",
        },
        "note": [{"text": "Grace called twice"}],
        "total": {"value": 12.5, "currency": "USD"},
        "extension": [{"url": "http://example.org/x", "valueString": "Van Horne"}],
        "contained": [
            {"resourceType": "Organization", "id": "org1", "name": "Hopper Family Trust"}
        ],
        "insurer": {"reference": "#org1"},
        "provider": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|123"},
        "supportingInfo": [
            {
                "valueAttachment": {
                    "contentType": "text/plain",
                    "data": "R3JhY2U=",
                    "url": "http://x/grace.txt",
                }
            }
        ],
        "created": "2026-01-02T10:00:00-05:00",
        "priority": {"coding": [{"code": "normal"}]},
    }
    # Act
    out = scrub(KEY, doc)
    # Assess
    assert out == {
        "resourceType": "Claim",
        "id": id_token(KEY, "Claim", "c1"),
        "meta": {"lastUpdated": "2026-01-01T00:00:00Z", "source": token(KEY, "ehr-42")},
        "status": "active",
        "patient": {
            "reference": f"Patient/{id_token(KEY, 'Patient', 'p1')}",
            "display": token(KEY, "Grace Hopper"),
        },
        "billablePeriod": {"start": "2026-01-01", "end": token(KEY, "not a date")},
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "institutional",
                    "display": "Institutional",
                }
            ],
            "text": token(KEY, "seen by Dr Kildare"),
        },
        "note": [{"text": token(KEY, "Grace called twice")}],
        "total": {"value": 12.5, "currency": "USD"},
        "extension": [{"url": "http://example.org/x", "valueString": token(KEY, "Van Horne")}],
        "contained": [
            {
                "resourceType": "Organization",
                "id": local_id_token(KEY, "org1"),
                "name": token(KEY, "Hopper Family Trust"),
            }
        ],
        "insurer": {"reference": f"#{local_id_token(KEY, 'org1')}"},
        "provider": {
            "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|"
            + token(KEY, "123")
        },
        "supportingInfo": [
            {
                "valueAttachment": {
                    "contentType": "text/plain",
                    "url": token(KEY, "http://x/grace.txt"),
                }
            }
        ],
        "created": "2026-01-02T10:00:00-05:00",
        "priority": {"coding": [{"code": "normal"}]},
    }


def test_scrub_tokenizes_every_direct_identifier_of_a_patient():
    doc = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:ssn", "value": "999"}],
        "name": [{"family": "Hopper", "given": ["Grace"], "use": "official"}],
        "telecom": [{"system": "phone", "value": "555"}],
        "address": [
            {"line": ["1 Navy Yard"], "city": "Arlington", "postalCode": "22201", "state": "VA"}
        ],
        "photo": [{"contentType": "image/png", "data": "aGVsbG8="}],
        "gender": "female",
        "birthDate": "1906-12-09",
    }
    out = scrub(KEY, doc)
    assert out["identifier"] == [{"system": "urn:ssn", "value": token(KEY, "999")}]
    assert out["name"] == [
        {"family": token(KEY, "Hopper"), "given": [token(KEY, "Grace")], "use": "official"}
    ]
    assert out["telecom"] == [{"system": "phone", "value": token(KEY, "555")}]
    assert out["address"] == [
        {
            "line": [token(KEY, "1 Navy Yard")],
            "city": token(KEY, "Arlington"),
            "postalCode": token(KEY, "22201"),
            "state": "VA",
        }
    ]
    assert out["photo"] == [{"contentType": "image/png"}]
    assert (out["gender"], out["birthDate"]) == ("female", "1906-12-09")


def test_scrub_tokenizes_organisation_names_too():
    # Free text is tokenized whoever it names: the allow-list has no exceptions by resource.
    org = {"resourceType": "Organization", "id": "o1", "name": "General Hospital"}
    assert scrub(KEY, org)["name"] == token(KEY, "General Hospital")
    assert json.dumps(scrub(KEY, org)).count("General") == 0


def test_resolve_reads_glue_style_arguments_and_tolerates_extra_ones():
    argv = ["job.py", "--JOB_NAME", "j", "--run_id", "r1", "--org=acme", "--TempDir", "s3://t/"]
    assert resolve(argv, ["run_id", "org"]) == {
        "JOB_NAME": "j",
        "run_id": "r1",
        "org": "acme",
        "TempDir": "s3://t/",
    }


def test_resolve_names_every_missing_argument():
    with pytest.raises(ArgumentError, match="Missing job arguments: --org, --input_path"):
        resolve(["job.py", "--run_id", "r"], ["run_id", "org", "input_path"])
