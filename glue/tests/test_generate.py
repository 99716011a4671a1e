import hashlib

from hoth_glue.generate import fhir, legacy


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fhir_generation_is_deterministic_per_seed_and_sized(tmp_path):
    a = fhir(1000, 7, tmp_path / "a")
    b = fhir(1000, 7, tmp_path / "b")
    fhir(1000, 8, tmp_path / "c")
    assert a == b
    assert sum(a.values()) == 1000
    assert a["Patient.000.ndjson"] == 150
    assert all(digest(tmp_path / "a" / f) == digest(tmp_path / "b" / f) for f in a)
    assert digest(tmp_path / "a" / "Patient.000.ndjson") != digest(
        tmp_path / "c" / "Patient.000.ndjson"
    )


def test_bad_fraction_adds_refusable_lines(tmp_path):
    clean = fhir(500, 1, tmp_path / "clean")
    dirty = fhir(500, 1, tmp_path / "dirty", bad_fraction=0.1)
    assert sum(dirty.values()) > sum(clean.values())


def test_legacy_generation_writes_the_documented_columns(tmp_path):
    out = tmp_path / "members.csv"
    assert legacy(20, 3, out) == 20
    lines = out.read_text().splitlines()
    assert lines[0].startswith("member_id,first_name,last_name,birth_date,sex,")
    assert len(lines) == 21
