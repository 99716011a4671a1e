"""ingest_fhir's classification: every line kept or quarantined with its reason,
read from real files (bytes as a source writes them), on local Spark."""

import base64
import json

import pytest
from pyspark.sql import functions as F

from hoth_glue import ingest as I
from hoth_glue.ingest import classify, deduplicate
from hoth_glue.tokens import id_token

KEY = bytes(range(32))
GOOD = b'{"resourceType":"Patient","id":"ok","name":[{"family":"Good"}]}'


def run(spark, tmp_path, lines: list[bytes], dedup: bool = False):
    """Classifies the lines of one NDJSON file; returns {reason or None: [rows]}."""
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    df = spark.read.text(str(path)).select("value", F.input_file_name().alias("source_file"))
    classified = classify(df, KEY)
    if dedup:
        classified = deduplicate(classified)
    out: dict = {}
    for row in classified.orderBy("line_no").collect():
        out.setdefault(row.reason, []).append(row)
    return out


def reasons(spark, tmp_path, lines):
    got = run(spark, tmp_path, [*lines, GOOD])
    assert [r.id for r in got.pop(None)] == [id_token(KEY, "Patient", "ok")]  # the rest is kept
    return sorted((reason, len(rows)) for reason, rows in got.items())


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"resourceType":"Patient"', I.BAD_JSON),
        (b"[1,2]", I.NOT_AN_OBJECT),
        (b'"just a string"', I.NOT_AN_OBJECT),
        (b'{"id":"x"}', I.MISSING_RESOURCE_TYPE),
        (b'{"resourceType":7,"id":"x"}', I.INVALID_RESOURCE_TYPE),
        (b'{"resourceType":"patient","id":"x"}', I.INVALID_RESOURCE_TYPE),
        (b'{"resourceType":"Patient"}', I.MISSING_ID),
        (b'{"resourceType":"Patient","id":5}', I.INVALID_ID),
        (b'{"resourceType":"Patient","id":true}', I.INVALID_ID),
        (b'{"resourceType":"Patient","id":"has space"}', I.INVALID_ID),
        (b'{"resourceType":"Patient","id":"x","meta":"yesterday"}', I.INVALID_META),
        (b'{"resourceType":"Patient","id":"x","meta":{"lastUpdated":5}}', I.INVALID_META),
        (b'{"resourceType":"Patient","id":"x","name":"Bob"}', I.INVALID_ELEMENT),
        (b'{"resourceType":"Patient","id":"x","deceasedBoolean":"yes"}', I.INVALID_ELEMENT),
        (
            b'{"resourceType":"Observation","id":"x","valueQuantity":{"value":"9"}}',
            I.INVALID_ELEMENT,
        ),
    ],
)
def test_names_the_reason_a_line_is_refused(spark, tmp_path, line, reason):
    assert reasons(spark, tmp_path, [line]) == [(reason, 1)]


def test_keeps_other_types_whose_elements_differ_from_the_core_types(spark, tmp_path):
    lines = [
        b'{"resourceType":"Organization","id":"o","name":"General Hospital","type":[{"text":"x"}]}',
        b'{"resourceType":"Procedure","id":"p","category":{"text":"surgery"},"status":"done"}',
        b'{"resourceType":"Coverage","id":"c","type":{"text":"medical"},"class":[{"value":"G"}]}',
    ]
    got = run(spark, tmp_path, lines)
    assert list(got) == [None] and len(got[None]) == 3


def test_keeps_a_numeric_looking_id_written_as_a_string(spark, tmp_path):
    got = run(
        spark,
        tmp_path,
        [b'{"resourceType":"Patient","id":"123","meta":{"lastUpdated":"2026-01-01"}}'],
    )
    assert list(got) == [None]
    assert got[None][0].last_updated == "2026-01-01"


# One test per class of poison record: each is quarantined, the rest is kept.


def test_quarantines_non_json(spark, tmp_path):
    lines = [
        b"not json",
        b'{"resourceType":"Patient","id":"a"} trailing',
        b"{'resourceType':'Patient'}",
        b"NaN",
    ]
    assert reasons(spark, tmp_path, lines) == [(I.BAD_JSON, 4)]


def test_quarantines_invalid_utf8_and_lone_surrogates_and_keeps_their_bytes(spark, tmp_path):
    bad_utf8 = b'{"resourceType":"Patient","id":"u","name":[{"family":"M\xfcller"}]}'  # Latin-1
    lone = b'{"resourceType":"Patient","id":"s","name":[{"family":"A\\ud800B"}]}'
    lone_low = b'{"resourceType":"Patient","id":"t","name":[{"family":"A\\udc00B"}]}'
    pair = b'{"resourceType":"Patient","id":"pair","name":[{"family":"A\\ud83e\\ude7aB"}]}'
    escaped = b'{"resourceType":"Patient","id":"esc","name":[{"family":"A\\\\ud800B"}]}'
    got = run(spark, tmp_path, [bad_utf8, lone, lone_low, pair, escaped])
    assert len(got[I.INVALID_ENCODING]) == 3
    assert sorted(r.id for r in got[None]) == sorted(
        id_token(KEY, "Patient", i) for i in ("pair", "esc")
    )
    assert base64.b64decode(got[I.INVALID_ENCODING][0].value_base64) == bad_utf8


def test_quarantines_nesting_deeper_than_the_limit(spark, tmp_path):
    def nested(n: int) -> bytes:
        ext = '{"url":"x","valueString":"v"}'
        for _ in range(n):
            ext = '{"url":"x","extension":[' + ext + "]}"
        return f'{{"resourceType":"Patient","id":"d{n}","extension":[{ext}]}}'.encode()

    # The resource is depth 1, each extension 2 more: n nested extensions are 2n + 3 deep.
    at_limit = nested((I.MAX_DEPTH - 3) // 2)
    lines = [nested(500), nested(5000), nested(I.MAX_DEPTH), at_limit]
    got = run(spark, tmp_path, lines)
    assert len(got[I.TOO_DEEP]) == 3
    assert [r.id for r in got[None]] == [id_token(KEY, "Patient", f"d{(I.MAX_DEPTH - 3) // 2}")]

    # The boundary: the resource is depth 1, so 63 arrays inside it are 64 deep.
    def depth(d: int) -> bytes:
        return f'{{"resourceType":"Basic","id":"b{d}","x":{"[" * (d - 1)}{"]" * (d - 1)}}}'.encode()

    got = run(spark, tmp_path, [depth(I.MAX_DEPTH), depth(I.MAX_DEPTH + 1)])
    assert [r.id for r in got[None]] == [id_token(KEY, "Basic", f"b{I.MAX_DEPTH}")]
    assert len(got[I.TOO_DEEP]) == 1
    # Brackets inside strings do not count.
    strings = b'{"resourceType":"Patient","id":"b","text":{"div":"' + b"[{" * 200 + b'"}}'
    assert list(run(spark, tmp_path, [strings])) == [None]


def test_quarantines_lines_over_the_size_limit(spark, tmp_path):
    filler = b"x" * I.MAX_LINE_BYTES
    big = b'{"resourceType":"Patient","id":"big","text":{"div":"' + filler + b'"}}'
    assert reasons(spark, tmp_path, [big]) == [(I.LINE_TOO_LONG, 1)]


def test_quarantines_resource_types_r4_does_not_define(spark, tmp_path):
    lines = [
        b'{"resourceType":"Patients","id":"x"}',
        b'{"resourceType":"MedicationStatementX","id":"y"}',
    ]
    assert reasons(spark, tmp_path, lines) == [(I.UNKNOWN_RESOURCE_TYPE, 2)]


def test_keeps_only_the_latest_copy_of_a_resource_and_quarantines_the_rest(spark, tmp_path):
    def patient(rid, updated=None, version=None, family="X"):
        meta = {k: v for k, v in (("lastUpdated", updated), ("versionId", version)) if v}
        return json.dumps(
            {"resourceType": "Patient", "id": rid, "meta": meta, "name": [{"family": family}]}
        ).encode()

    lines = [
        patient("a", "2026-01-02T00:00:00Z", family="newest"),
        patient("a", "2026-01-01T23:00:00-05:00", family="older"),  # 04:00Z the 2nd: newer!
        patient("a", "2026-01-01T00:00:00Z", family="oldest"),
        patient("b", "2026-01-01T00:00:00Z", "2", family="v2"),
        patient("b", "2026-01-01T00:00:00Z", "10", family="v10"),
        patient("c", family="first"),
        patient("c", family="second"),
        patient("d", "2026-01-01T00:00:00Z"),
    ]
    got = run(spark, tmp_path, lines, dedup=True)
    kept = {r.id: json.loads(r.value)["name"][0]["family"] for r in got[None]}
    assert kept == {
        id_token(KEY, "Patient", "a"): "older",
        id_token(KEY, "Patient", "b"): "v10",
        id_token(KEY, "Patient", "c"): "second",
        id_token(KEY, "Patient", "d"): "X",
    }
    assert len(got[I.DUPLICATE_SUPERSEDED]) == 4
    # The superseded copies are kept raw, for the quarantine.
    superseded = [json.loads(r.value)["name"][0]["family"] for r in got[I.DUPLICATE_SUPERSEDED]]
    assert sorted(superseded) == ["first", "newest", "oldest", "v2"]
