import hashlib
import hmac

import pytest

from hoth_glue.args import ArgumentError, resolve
from hoth_glue.ingest import (
    BAD_JSON,
    INVALID_ID,
    INVALID_META,
    INVALID_RESOURCE_TYPE,
    MISSING_ID,
    MISSING_RESOURCE_TYPE,
    NOT_AN_OBJECT,
    classify_line,
)
from hoth_glue.scrub import scrub, token

KEY = b"k" * 32


def test_token_is_hmac_sha256_of_the_value_under_the_key():
    expected = hmac.new(KEY, b"Grace", hashlib.sha256).hexdigest()
    assert token(KEY, "Grace") == f"tok:{expected}"
    assert token(b"other-key-16byte", "Grace") != token(KEY, "Grace")
    assert token(KEY, None) is None


def test_scrub_tokenizes_every_direct_identifier_and_drops_narrative_and_attachments():
    doc = {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": "<div>Grace</div>"},
        "identifier": [{"system": "urn:ssn", "value": "999"}],
        "name": [{"family": "Hopper", "given": ["Grace"], "use": "official"}],
        "telecom": [{"system": "phone", "value": "555"}],
        "address": [{"line": ["1 Navy Yard"], "state": "VA"}],
        "extension": [{"url": "mmn", "valueString": "Van Horne"}],
        "photo": [{"contentType": "image/png", "data": "aGVsbG8="}],
        "gender": "female",
    }
    out = scrub(KEY, doc)
    assert "text" not in out
    assert out["identifier"] == [{"system": "urn:ssn", "value": token(KEY, "999")}]
    assert out["name"] == [
        {"family": token(KEY, "Hopper"), "given": [token(KEY, "Grace")], "use": "official"}
    ]
    assert out["telecom"] == [{"system": "phone", "value": token(KEY, "555")}]
    assert out["address"] == [{"line": [token(KEY, "1 Navy Yard")], "state": "VA"}]
    assert out["extension"] == [{"url": "mmn", "valueString": token(KEY, "Van Horne")}]
    assert out["photo"] == [{"contentType": "image/png"}]
    assert out["gender"] == "female"


def test_scrub_leaves_organisation_names_alone():
    org = {"resourceType": "Organization", "name": "General Hospital"}
    assert scrub(KEY, org) == org


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"resourceType":"Patient"', BAD_JSON),
        ("[1,2]", NOT_AN_OBJECT),
        ('{"id":"x"}', MISSING_RESOURCE_TYPE),
        ('{"resourceType":7,"id":"x"}', INVALID_RESOURCE_TYPE),
        ('{"resourceType":"patient","id":"x"}', INVALID_RESOURCE_TYPE),
        ('{"resourceType":"Patient"}', MISSING_ID),
        ('{"resourceType":"Patient","id":5}', INVALID_ID),
        ('{"resourceType":"Patient","id":"has space"}', INVALID_ID),
        ('{"resourceType":"Patient","id":"x","meta":"yesterday"}', INVALID_META),
        ('{"resourceType":"Patient","id":"x","meta":{"lastUpdated":5}}', INVALID_META),
    ],
)
def test_classify_names_the_reason_a_line_is_refused(line, reason):
    assert classify_line(KEY, line)[0] == reason


def test_classify_accepts_a_resource_and_returns_it_scrubbed():
    reason, rt, rid, updated, body = classify_line(
        KEY,
        '{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2026-01-01"},"name":[{"family":"X"}]}',
    )
    assert (reason, rt, rid, updated) == (None, "Patient", "p1", "2026-01-01")
    assert '"X"' not in body


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
