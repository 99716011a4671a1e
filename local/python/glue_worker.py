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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--jobs", required=True)
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="hoth-local-glue-"))
    worker = GlueWorker(json.loads(options.jobs), scratch)
    server = ThreadingHTTPServer(("127.0.0.1", options.port), handler_for(worker))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emit("listening", port=server.server_address[1])

    def stop() -> None:
        server.shutdown()
        worker.queue.put(None)
        # A run in progress is abandoned, as a stopped Glue job run would be.
        threading.Timer(3.0, lambda: os._exit(0)).start()

    stop_with_parent(stop)
    try:
        worker.serve()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(0)  # py4j's threads must not keep the process alive


if __name__ == "__main__":
    main()
