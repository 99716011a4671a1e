"""The local Glue's S3 mirroring and run states, with a stand-in job script
(the real jobs run through it in the mocha end-to-end test of the local stack)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest
from glue_worker import (
    OWNER_FILE,
    SCRATCH_PREFIX,
    UNOWNED_GRACE_SECONDS,
    GlueWorker,
    claim_scratch,
    process_identity,
    remove_leftovers,
)
from moto import mock_aws

BUCKET = "hoth-dev-lake"

# Reads every file under --input_path, writes their line count to
# <--landing_path>/counts/part-0.txt (with a .crc beside it, as Hadoop does),
# deletes <--landing_path>/stale.txt if present, writes report.json.
JOB = """
import json, os, pathlib
from hoth_glue.args import resolve

def main(argv):
    args = resolve(argv, ["input_path", "landing_path", "report_path", "mode"])
    if args["mode"] == "fail":
        raise RuntimeError("boom\\nsecond line with row data")
    src = pathlib.Path(args["input_path"])
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    lines = sum(len(p.read_text().splitlines()) for p in files)
    out = pathlib.Path(args["landing_path"])
    seen = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    (out / "counts").mkdir(parents=True, exist_ok=True)
    (out / "counts" / "part-0.txt").write_text(str(lines))
    (out / "counts" / ".part-0.txt.crc").write_text("crc")
    (out / "stale.txt").unlink(missing_ok=True)
    report = {"files": len(files), "lines": lines, "outputSeen": seen, "tenant": args["org"]}
    pathlib.Path(args["report_path"], "report.json").write_text(json.dumps(report))
"""


@pytest.fixture
def s3(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def worker(s3, tmp_path: Path) -> GlueWorker:
    script = tmp_path / "count_job.py"
    script.write_text(textwrap.dedent(JOB))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return GlueWorker(
        {
            "count": {
                "script": str(script),
                "defaultArguments": {"--org": "acme", "--TempDir": "s3://x/"},
            }
        },
        scratch,
    )


def run(worker: GlueWorker, **arguments: str):
    job_run = worker.start_run("count", {f"--{k}": v for k, v in arguments.items()})
    worker.execute(worker.queue.get())
    return job_run


def run_job(worker: GlueWorker, run_id: str, input_key: str, mode: str = "ok"):
    """A run reading s3://BUCKET/<input_key>, writing out/<run_id>/ and reports/<run_id>/."""
    return run(
        worker,
        mode=mode,
        input_path=f"s3://{BUCKET}/{input_key}",
        landing_path=f"s3://{BUCKET}/out/{run_id}/",
        report_path=f"s3://{BUCKET}/reports/{run_id}/",
    )


def keys(s3, prefix: str) -> list[str]:
    return sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    )


def test_runs_a_job_on_an_input_directory_and_mirrors_its_output(s3, worker):
    # Prepare
    s3.put_object(Bucket=BUCKET, Key="landing/acme/exp/a.ndjson", Body=b"1\n2\n")
    s3.put_object(Bucket=BUCKET, Key="landing/acme/exp/sub/b.ndjson", Body=b"3\n")
    s3.put_object(Bucket=BUCKET, Key="landing/acme/expired/c.ndjson", Body=b"4\n")
    s3.put_object(Bucket=BUCKET, Key="out/r1/stale.txt", Body=b"old")
    s3.put_object(Bucket=BUCKET, Key="out/r1/keep/kept.txt", Body=b"kept")
    # Act
    job_run = run_job(worker, "r1", "landing/acme/exp", mode="ok")
    # Assess: 'exp' is a directory (not the 'expired' sibling); the job saw
    # the output's existing objects; what it deleted is gone, .crc never lands
    assert (job_run.state, job_run.error) == ("SUCCEEDED", None)
    assert keys(s3, "out/") == ["out/r1/counts/part-0.txt", "out/r1/keep/kept.txt"]
    body = s3.get_object(Bucket=BUCKET, Key="out/r1/counts/part-0.txt")["Body"].read()
    assert body == b"3"
    report = s3.get_object(Bucket=BUCKET, Key="reports/r1/report.json")["Body"].read()
    assert report == (
        b'{"files": 2, "lines": 3, "outputSeen": ["keep/kept.txt", "stale.txt"], "tenant": "acme"}'
    )
    assert list(worker.scratch.iterdir()) == []


def test_reads_a_single_input_object(s3, worker):
    s3.put_object(Bucket=BUCKET, Key="landing/acme/members.csv", Body=b"h\nr1\nr2\n")
    job_run = run_job(worker, "r2", "landing/acme/members.csv", mode="ok")
    assert job_run.state == "SUCCEEDED"
    assert s3.get_object(Bucket=BUCKET, Key="out/r2/counts/part-0.txt")["Body"].read() == b"3"


def test_fails_a_run_whose_input_path_holds_nothing_and_writes_nothing(s3, worker):
    job_run = run_job(worker, "r3", "landing/acme/nothing/", mode="ok")
    assert job_run.state == "FAILED"
    assert (
        job_run.error == f"InputNotFound: Path does not exist: s3://{BUCKET}/landing/acme/nothing/"
    )
    assert keys(s3, "") == []


def test_reports_only_the_first_line_of_a_job_error_and_uploads_nothing(s3, worker):
    s3.put_object(Bucket=BUCKET, Key="landing/acme/x.csv", Body=b"h\n")
    job_run = run_job(worker, "r4", "landing/acme/x.csv", mode="fail")
    assert (job_run.state, job_run.error) == ("FAILED", "RuntimeError: boom")
    assert job_run.describe()["ErrorMessage"] == "RuntimeError: boom"
    assert keys(s3, "out/") == [] and keys(s3, "reports/") == []


def test_refuses_an_s3_argument_it_cannot_map(s3, worker):
    job_run = run(worker, mode="ok", other_path=f"s3://{BUCKET}/x/")
    assert job_run.state == "FAILED"
    assert job_run.error == "ValueError: --other_path is an S3 path the local Glue does not map"


def test_refuses_keys_that_escape_their_prefix(s3, worker):
    s3.put_object(Bucket=BUCKET, Key="landing/acme/d/../../../../etc/x", Body=b"1\n")
    job_run = run_job(worker, "r5", "landing/acme/d/", mode="ok")
    assert job_run.state == "FAILED"
    assert job_run.error.startswith("ValueError: S3 key escapes its prefix")
    assert not os.path.exists("/etc/x")


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603 - our own interpreter
    child.wait()
    return child.pid


def scratch_dir(root: Path, name: str, owner: str | None, age_seconds: float = 0) -> Path:
    directory = root / f"{SCRATCH_PREFIX}{name}"
    (directory / "jr_1-x" / "input").mkdir(parents=True)
    (directory / "jr_1-x" / "input" / "members.csv").write_text("id,name\n1,Doe\n")
    if owner is not None:
        (directory / OWNER_FILE).write_text(owner)
    if age_seconds:
        then = time.time() - age_seconds
        os.utime(directory, (then, then))
    return directory


def test_removes_the_scratch_data_of_dead_workers_and_keeps_live_ones(tmp_path: Path):
    live = scratch_dir(tmp_path, "live", process_identity(os.getpid()))
    dead = scratch_dir(tmp_path, "dead", f"{dead_pid()} 12345")
    # The same pid as a live process, but another start time: the pid was reused.
    reused = scratch_dir(tmp_path, "reused", f"{os.getpid()} 1")
    garbage = scratch_dir(tmp_path, "garbage", "not a pid")
    old_unowned = scratch_dir(tmp_path, "old-unowned", None, age_seconds=UNOWNED_GRACE_SECONDS + 60)
    young_unowned = scratch_dir(tmp_path, "young-unowned", None)
    unrelated = tmp_path / "someone-else"
    unrelated.mkdir()

    removed = remove_leftovers(tmp_path)

    assert sorted(p.name for p in removed) == sorted(
        p.name for p in (dead, reused, garbage, old_unowned)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, young_unowned, unrelated)
    )


def test_claims_a_private_scratch_directory_named_for_this_process(tmp_path: Path):
    leftover = scratch_dir(tmp_path, "dead", f"{dead_pid()} 1")

    scratch = claim_scratch(tmp_path)

    assert not leftover.exists()
    assert scratch.parent == tmp_path and scratch.name.startswith(SCRATCH_PREFIX)
    assert (scratch / OWNER_FILE).read_text() == process_identity(os.getpid())
    assert scratch.stat().st_mode & 0o777 == 0o700
    assert remove_leftovers(tmp_path) == []


def test_removes_a_runs_scratch_data_when_the_run_fails(s3, worker):
    job_run = run_job(worker, "m-fail", "in/members.csv", mode="fail")

    assert job_run.state == "FAILED"
    assert list(worker.scratch.iterdir()) == []
