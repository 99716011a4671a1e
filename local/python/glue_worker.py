"""A local stand-in for AWS Glue: runs the real job scripts under glue/jobs on
one warm local Spark session, against the S3 data of the AWS emulator (moto).

    python local/python/glue_worker.py --port N --jobs JSON

`--jobs` maps job names to `{"script": <path>, "defaultArguments": {...}}`,
as the Glue jobs are defined in components/glueJobs.ts. Over HTTP on loopback:

    POST /runs {"JobName", "Arguments"} -> {"JobRunId"}            (StartJobRun)
    GET  /runs/<id>                     -> {"JobRun": {...}}       (GetJobRun)

Runs execute one at a time (one Spark session). S3 paths are mirrored: the
`--input_path` objects and everything under each output path are copied to a
scratch directory, the job runs on local paths (so Spark's own overwrite
semantics apply), and on success each output path in S3 is made equal to its
local copy (new and changed files uploaded, files the job removed deleted).
That costs a copy of each output prefix per run: meant for development-size
data, not for a production lake.

The scratch directory (`<tmp>/hoth-local-glue-*`, mode 0700) holds extracts
and untokenized FHIR while a run lasts. Each run's part is removed when the
run ends, the whole directory when the worker stops (SIGTERM, its parent
gone, an error); the Node side removes it when the process exits any other
way (SIGKILL), and a worker starting removes what a dead worker left (its
`owner` file names the pid and that process's start time).

A `{"event": "heartbeat"}` line is printed every HEARTBEAT_SECONDS: the
local Step Functions fails a task whose worker falls silent (e.g. SIGSTOP),
see local/glue.ts.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import boto3
from supervise import emit, stop_with_parent

SCRATCH_PREFIX = "hoth-local-glue-"
OWNER_FILE = "owner"
# A scratch directory without an owner file (a worker killed between creating it and
# naming itself, or one from before owner files) is a leftover once this old.
UNOWNED_GRACE_SECONDS = 24 * 3600
HEARTBEAT_SECONDS = 1.0

INPUT_ARGS = ("--input_path",)
OUTPUT_ARGS = ("--landing_path", "--curated_path", "--quarantine_path", "--report_path")
# Arguments that only mean something on Glue itself.
GLUE_ONLY_ARGS = (
    "--extra-py-files",
    "--TempDir",
    "--job-bookmark-option",
    "--enable-continuous-cloudwatch-log",
    "--continuous-log-logGroup",
    "--enable-metrics",
    "--job-language",
)
# Files a local Hadoop filesystem writes that S3 never holds.
LOCAL_ONLY = (".crc",)


class InputNotFound(RuntimeError):
    """The input path holds no object (Spark on S3: 'Path does not exist')."""


@dataclass
class Run:
    id: str
    job: str
    arguments: dict[str, str]
    state: str = "WAITING"
    error: str | None = None
    started: float = field(default_factory=time.time)
    completed: float | None = None

    def describe(self) -> dict[str, object]:
        run: dict[str, object] = {
            "Id": self.id,
            "JobName": self.job,
            "JobRunState": self.state,
            "StartedOn": self.started,
            "ExecutionTime": round((self.completed or time.time()) - self.started),
        }
        if self.completed is not None:
            run["CompletedOn"] = self.completed
        if self.error is not None:
            run["ErrorMessage"] = self.error
        return run


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def safe_join(root: Path, relative: str) -> Path:
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"S3 key escapes its prefix: {relative!r}")
    return target


class S3Mirror:
    """Copies S3 prefixes to local directories and back."""

    def __init__(self, s3: object) -> None:
        self.s3 = s3

    def objects(self, bucket: str, prefix: str) -> dict[str, str]:
        """Key -> ETag (MD5 for single-part uploads) of every object under prefix."""
        found: dict[str, str] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj["ETag"].strip('"')
        return found

    def download_input(self, uri: str, root: Path) -> str:
        """The input object, or every object under the input 'directory', copied under root."""
        bucket, key = split_uri(uri)
        objects = self.objects(bucket, key)
        if key in objects and not key.endswith("/"):
            target = root / Path(key).name
            self.s3.download_file(bucket, key, str(target))
            return str(target)
        directory = key if key.endswith("/") or not key else f"{key}/"
        keys = [k for k in objects if k.startswith(directory) and not k.endswith("/")]
        if not keys:
            raise InputNotFound(f"Path does not exist: {uri}")
        for k in keys:
            target = safe_join(root, k[len(directory) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, k, str(target))
        return str(root) + "/"

    def download_output(self, uri: str, root: Path) -> dict[str, str]:
        """What the output path holds now (so the job sees it as on S3); returns key -> ETag."""
        bucket, key = split_uri(uri)
        directory = key if key.endswith("/") or not key else f"{key}/"
        objects = {k: e for k, e in self.objects(bucket, directory).items() if not k.endswith("/")}
        for k in objects:
            target = safe_join(root, k[len(directory) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, k, str(target))
        return objects

    def sync_up(self, root: Path, uri: str, before: dict[str, str]) -> tuple[int, int]:
        """Makes the S3 prefix equal to root; returns (uploaded, deleted)."""
        bucket, key = split_uri(uri)
        directory = key if key.endswith("/") or not key else f"{key}/"
        now: dict[str, Path] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.endswith(LOCAL_ONLY):
                now[directory + path.relative_to(root).as_posix()] = path
        uploaded = 0
        for k, path in now.items():
            if before.get(k) != hashlib.md5(path.read_bytes()).hexdigest():  # noqa: S324 - ETag
                self.s3.upload_file(str(path), bucket, k)
                uploaded += 1
        gone = [k for k in before if k not in now]
        for i in range(0, len(gone), 1000):
            self.s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in gone[i : i + 1000]]}
            )
        return uploaded, len(gone)


class GlueWorker:
    def __init__(self, jobs: dict[str, dict], scratch: Path) -> None:
        self.jobs = jobs
        self.scratch = scratch
        self.runs: dict[str, Run] = {}
        self.queue: queue.Queue[Run | None] = queue.Queue()
        self.modules: dict[str, ModuleType] = {}
        self.mirror = S3Mirror(boto3.client("s3"))

    def start_run(self, job: str, arguments: dict[str, str]) -> Run:
        run = Run(id=f"jr_{uuid.uuid4().hex}", job=job, arguments=arguments)
        self.runs[run.id] = run
        self.queue.put(run)
        return run

    def serve(self) -> None:
        started = time.monotonic()
        from hoth_glue.runtime import spark_session

        spark = spark_session("hoth-local-glue")
        emit("spark-ready", seconds=round(time.monotonic() - started, 1))
        # Warm the JVM with a tiny job before the first run is taken off the queue.
        spark.range(1).count()
        emit("spark-warm", seconds=round(time.monotonic() - started, 1))
        while (run := self.queue.get()) is not None:
            self.execute(run)
        spark.stop()

    def module(self, script: str) -> ModuleType:
        if script not in self.modules:
            spec = importlib.util.spec_from_file_location(Path(script).stem, script)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self.modules[script] = module
        return self.modules[script]

    def execute(self, run: Run) -> None:
        job = self.jobs[run.job]
        run.state = "RUNNING"
        emit("run", id=run.id, job=run.job, state=run.state)
        work = Path(tempfile.mkdtemp(prefix=f"{run.id}-", dir=self.scratch))
        try:
            args = {**job.get("defaultArguments", {}), **run.arguments}
            for name in GLUE_ONLY_ARGS:
                args.pop(name, None)
            outputs: list[tuple[Path, str, dict[str, str]]] = []
            for name, value in list(args.items()):
                if not value.startswith("s3://"):
                    continue
                local = work / name.strip("-")
                local.mkdir(parents=True)
                if name in INPUT_ARGS:
                    args[name] = self.mirror.download_input(value, local)
                elif name in OUTPUT_ARGS:
                    outputs.append((local, value, self.mirror.download_output(value, local)))
                    args[name] = str(local) + "/"
                else:
                    raise ValueError(f"{name} is an S3 path the local Glue does not map")
            argv = [job["script"], "--JOB_NAME", run.job]
            for name, value in args.items():
                argv += [name, value]
            self.module(job["script"]).main(argv)
            for local, uri, before in outputs:
                self.mirror.sync_up(local, uri, before)
            run.state = "SUCCEEDED"
        except Exception as error:  # noqa: BLE001 - any failure fails the run, as on Glue
            run.state = "FAILED"
            # The class and first line only: enough to act on, no data rows.
            first_line = (str(error).strip().splitlines() or [""])[0][:500]
            run.error = f"{type(error).__name__}: {first_line}"
        finally:
            run.completed = time.time()
            shutil.rmtree(work, ignore_errors=True)
        emit(
            "run", id=run.id, job=run.job, state=run.state, seconds=run.describe()["ExecutionTime"]
        )


def handler_for(worker: GlueWorker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:  # requests are not worth a log line
            pass

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/runs":
                return self.reply(404, {"__type": "EntityNotFoundException"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                job, arguments = body["JobName"], body.get("Arguments") or {}
            except (ValueError, KeyError, TypeError):
                return self.reply(400, {"__type": "InvalidInputException"})
            if job not in worker.jobs:
                return self.reply(
                    400, {"__type": "EntityNotFoundException", "message": f"Job {job} not found"}
                )
            return self.reply(200, {"JobRunId": worker.start_run(job, arguments).id})

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            run = worker.runs.get(self.path.removeprefix("/runs/"))
            if run is None:
                return self.reply(400, {"__type": "EntityNotFoundException"})
            return self.reply(200, {"JobRun": run.describe()})

    return Handler


def process_identity(pid: int) -> str | None:
    """`<pid> <start time>` of a live process (start time from /proc, in clock ticks), else None."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return f"{pid} ?"
    # Field 22, counted after the parenthesised command name (which may hold spaces).
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def remove_leftovers(root: Path) -> list[Path]:
    """Removes the scratch directories of workers that are gone; returns them."""
    removed: list[Path] = []
    for directory in root.glob(f"{SCRATCH_PREFIX}*"):
        if not directory.is_dir() or directory.is_symlink():
            continue
        try:
            owner = (directory / OWNER_FILE).read_text().strip()
        except FileNotFoundError:
            owner = None
        except OSError:
            continue  # another user's: not ours to judge
        if owner is None:
            dead = time.time() - directory.stat().st_mtime > UNOWNED_GRACE_SECONDS
        else:
            pid = owner.split(" ")[0]
            dead = not pid.isdigit() or process_identity(int(pid)) != owner
        if dead:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def claim_scratch(root: Path) -> Path:
    """A fresh scratch directory owned by this process, after removing dead workers' ones."""
    removed = remove_leftovers(root)
    if removed:
        emit("leftovers-removed", count=len(removed))
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=root))
    (scratch / OWNER_FILE).write_text(process_identity(os.getpid()) or str(os.getpid()))
    return scratch


def heartbeat(stopping: threading.Event) -> None:
    """Proves this process is scheduled: a stopped or hung worker falls silent."""
    while not stopping.wait(HEARTBEAT_SECONDS):
        emit("heartbeat")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--jobs", required=True)
    options = parser.parse_args()
    scratch = claim_scratch(Path(tempfile.gettempdir()))

    def exit_now(code: int) -> None:
        # Every way out of this process that runs code removes the scratch data.
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(code)  # py4j's threads must not keep the process alive

    worker = GlueWorker(json.loads(options.jobs), scratch)
    server = ThreadingHTTPServer(("127.0.0.1", options.port), handler_for(worker))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emit("listening", port=server.server_address[1], scratch=str(scratch))

    def stop() -> None:
        server.shutdown()
        worker.queue.put(None)
        # A run in progress is abandoned, as a stopped Glue job run would be.
        threading.Timer(3.0, lambda: exit_now(0)).start()

    stopping = stop_with_parent(stop)
    threading.Thread(target=heartbeat, args=(stopping,), daemon=True).start()
    code = 1
    try:
        worker.serve()
        code = 0
    finally:
        exit_now(code)


if __name__ == "__main__":
    main()
