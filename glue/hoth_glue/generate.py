"""Deterministic synthetic data at any size, for tests and benchmarks.

    python -m hoth_glue.generate fhir --resources N --seed S --out DIR [--bad-fraction F]
    python -m hoth_glue.generate legacy --members N --seed S --out FILE [--bad-fraction F]
                                        [--edge-rows]

FHIR output is Bulk Data style (one `<Type>.000.ndjson` per type): Patients,
their Coverage, Encounters, Conditions, Observations and Procedures (the
last go to the generic table). The same seed always gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

FAMILY = ["Smith", "Jones", "Garcia", "Chen", "Okafor", "Novak", "Silva", "Khan", "Ito", "Müller"]
GIVEN = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jia"]
STATES = ["IL", "NY", "CA", "TX", "WA", "MA"]
# Share of each type among generated resources (Patient first: others refer to patients).
MIX = [
    ("Patient", 0.15),
    ("Coverage", 0.10),
    ("Encounter", 0.30),
    ("Condition", 0.20),
    ("Observation", 0.20),
    ("Procedure", 0.05),
]
BAD_LINES = [
    '{"resourceType":"Observation","id":"broken"',
    '{"id":"no-type"}',
    '{"resourceType":"Observation"}',
    "[]",
]


def _date(rng: random.Random) -> str:
    return f"{rng.randrange(1930, 2024)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"


def _patient(rng: random.Random, i: int) -> dict:
    return {
        "resourceType": "Patient",
        "id": f"pat-{i}",
        "meta": {"lastUpdated": "2026-11-01T00:00:00Z"},
        "identifier": [{"system": "https://example.org/mrn", "value": f"MRN{i:08d}"}],
        "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}],
        "telecom": [{"system": "phone", "value": f"555-{rng.randrange(10000):04d}"}],
        "gender": rng.choice(["male", "female", "other", "unknown"]),
        "birthDate": _date(rng),
        "address": [
            {
                "line": [f"{rng.randrange(1, 999)} Main St"],
                "state": rng.choice(STATES),
                "postalCode": f"{rng.randrange(10000, 99999)}",
                "country": "US",
            }
        ],
    }


def _other(rng: random.Random, rtype: str, i: int, patients: int) -> dict:
    subject = {"reference": f"Patient/pat-{rng.randrange(max(patients, 1))}"}
    code = {
        "coding": [{"system": "http://snomed.info/sct", "code": str(rng.randrange(100000, 999999))}]
    }
    if rtype == "Coverage":
        return {
            "resourceType": "Coverage",
            "id": f"cov-{i}",
            "status": "active",
            "subscriberId": f"SUB{i:08d}",
            "beneficiary": subject,
            "payor": [{"display": "Example Plan"}],
            "period": {"start": "2026-01-01"},
        }
    if rtype == "Encounter":
        return {
            "resourceType": "Encounter",
            "id": f"enc-{i}",
            "status": "finished",
            "class": {"code": rng.choice(["AMB", "EMER", "IMP"])},
            "type": [code],
            "subject": subject,
            "period": {"start": "2026-02-01T09:00:00Z", "end": "2026-02-01T10:00:00Z"},
        }
    if rtype == "Condition":
        return {
            "resourceType": "Condition",
            "id": f"con-{i}",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": code,
            "subject": subject,
            "onsetDateTime": "2025-06-01",
        }
    if rtype == "Observation":
        return {
            "resourceType": "Observation",
            "id": f"obs-{i}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": subject,
            "effectiveDateTime": "2026-02-01T09:10:00Z",
            "valueQuantity": {"value": round(rng.uniform(50, 120), 1), "unit": "/min"},
        }
    return {
        "resourceType": "Procedure",
        "id": f"proc-{i}",
        "status": "completed",
        "code": code,
        "subject": subject,
    }


def fhir(resources: int, seed: int, out: Path, bad_fraction: float = 0.0) -> dict[str, int]:
    """Writes about `resources` resources (plus bad lines); returns lines per file."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    counts = {t: int(resources * share) for t, share in MIX}
    counts["Patient"] += resources - sum(counts.values())
    written: dict[str, int] = {}
    for rtype, n in counts.items():
        path = out / f"{rtype}.000.ndjson"
        with path.open("w") as f:
            lines = 0
            for i in range(n):
                doc = (
                    _patient(rng, i)
                    if rtype == "Patient"
                    else _other(rng, rtype, i, counts["Patient"])
                )
                f.write(json.dumps(doc, separators=(",", ":")) + "\n")
                lines += 1
                if bad_fraction and rng.random() < bad_fraction:
                    f.write(rng.choice(BAD_LINES) + "\n")
                    lines += 1
        written[path.name] = lines
    return written


# Rows at the edges of the legacy format (issue 13), appended by --edge-rows:
# (member_id, what the row tests, the fields that differ from a complete row,
# the quarantine reason or None when the row maps). Every optional field blank,
# impossible dates, whitespace-only names (Unicode white space included).
EDGE_ROWS: list[tuple[str, str, dict[str, str], str | None]] = [
    (
        "E001",
        "every optional field blank",
        {
            "address_line": "", "city": "", "state": "", "postal_code": "", "phone": "",
            "email": "", "plan_id": "", "group_id": "", "subscriber_id": "",
            "relationship": "", "coverage_end": "",
        },
        None,
    ),
    ("E002", "birth date in year 0000", {"birth_date": "0000-01-01"}, "INVALID_BIRTH_DATE"),
    ("E003", "birth date Feb 30", {"birth_date": "1970-02-30"}, "INVALID_BIRTH_DATE"),
    ("E004", "whitespace-only first name", {"first_name": "   "}, None),
    (
        "E005",
        "whitespace-only names (tab, no-break space)",
        {"first_name": "\t", "last_name": "\u00a0 "},
        "MISSING_NAME",
    ),
    ("E006", "coverage end Feb 30", {"coverage_end": "2027-02-30"}, "INVALID_COVERAGE_PERIOD"),
    (
        "E007",
        "blank last name, whitespace-only address line and phone",
        {"last_name": "", "address_line": " \t ", "phone": "  ", "group_id": " "},
        None,
    ),
    (
        "E008",
        "coverage start in year 0000",
        {"coverage_start": "0000-01-01"},
        "INVALID_COVERAGE_PERIOD",
    ),
    (
        "E009",
        "blank e-mail and plan, padded values",
        {"email": "", "plan_id": "", "first_name": " Zoë ", "state": " IL "},
        None,
    ),
]  # fmt: skip


def legacy(
    members: int, seed: int, out: Path, bad_fraction: float = 0.0, edge_rows: bool = False
) -> int:
    """Writes a legacy member CSV (UTF-8) with `members` generated rows, then the
    EDGE_ROWS when asked; returns the row count."""
    from .legacy import COLUMNS

    rng = random.Random(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(members):
            row = {
                "member_id": f"M{i:08d}",
                "first_name": rng.choice(GIVEN),
                "last_name": rng.choice(FAMILY),
                "birth_date": _date(rng),
                "sex": rng.choice("MFOU"),
                "address_line": f"{rng.randrange(1, 999)} Main St",
                "city": "Springfield",
                "state": rng.choice(STATES),
                "postal_code": f"{rng.randrange(10000, 99999)}",
                "phone": f"555-{rng.randrange(10000):04d}",
                "email": f"member{i}@example.org",
                "plan_id": rng.choice(["GOLD", "SILVER", "BRONZE"]),
                "group_id": f"G{rng.randrange(100)}",
                "subscriber_id": f"S{i:08d}",
                "relationship": rng.choice(["self", "spouse", "child"]),
                "coverage_start": "2026-01-01",
                "coverage_end": "",
            }
            if bad_fraction and rng.random() < bad_fraction:
                row[rng.choice(["birth_date", "sex", "member_id"])] = rng.choice(
                    ["", "1990-13-45", "X"]
                )
            w.writerow([row[c] for c in COLUMNS])
        if edge_rows:
            for member_id, _, fields, _ in EDGE_ROWS:
                row = {
                    "member_id": member_id, "first_name": "Edge", "last_name": "Case",
                    "birth_date": "1980-05-17", "sex": "F", "address_line": "1 Edge Way",
                    "city": "Springfield", "state": "IL", "postal_code": "62701",
                    "phone": "555-0100", "email": f"{member_id.lower()}@example.org",
                    "plan_id": "GOLD", "group_id": "G1", "subscriber_id": f"S-{member_id}",
                    "relationship": "self", "coverage_start": "2026-01-01", "coverage_end": "",
                    **fields,
                }  # fmt: skip
                w.writerow([row[c] for c in COLUMNS])
    return members + (len(EDGE_ROWS) if edge_rows else 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hoth_glue.generate")
    sub = parser.add_subparsers(dest="kind", required=True)
    f = sub.add_parser("fhir")
    f.add_argument("--resources", type=int, required=True)
    g = sub.add_parser("legacy")
    g.add_argument("--members", type=int, required=True)
    for p in (f, g):
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--bad-fraction", type=float, default=0.0)
    g.add_argument(
        "--edge-rows", action="store_true", help="append the EDGE_ROWS (see generate.py)"
    )
    a = parser.parse_args(argv)
    if a.kind == "fhir":
        print(json.dumps(fhir(a.resources, a.seed, a.out, a.bad_fraction)))
    else:
        print(legacy(a.members, a.seed, a.out, a.bad_fraction, a.edge_rows))


if __name__ == "__main__":
    main()
