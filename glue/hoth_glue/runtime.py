"""What the job entry points share: the Spark session, the tokenization key,
reading and writing local paths or S3 URIs, and run reports."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession


class JobError(RuntimeError):
    """A job cannot run; the message names what and never holds a secret."""


def spark_session(app: str) -> SparkSession:
    builder = (
        SparkSession.builder.appName(app)
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if not os.environ.get("GLUE_VERSION") and not os.environ.get("SPARK_MASTER_URL"):
        # Local Spark: its Python workers import hoth_glue from here (on Glue,
        # --extra-py-files ships the package instead).
        package_root = str(Path(__file__).resolve().parents[1])
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if package_root not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([package_root, *paths])
        # ...with this interpreter (the project's .venv), not whatever python3 is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            builder.master(os.environ.get("HOTH_SPARK_MASTER", "local[2]"))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.driver.memory", "2g")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
    return builder.getOrCreate()


def read_once(df: DataFrame) -> DataFrame:
    """`df`, computed by the first action that reads it and kept for the rest of the
    run: a local checkpoint (its rows in the block manager, memory then disk). Not
    `persist()`: building the columnar cache hashed every string for its compression
    statistics, which cost the jobs more than computing the rows (bench/glue).
    Free it with `release`."""
    return df.localCheckpoint(eager=False)


def release(df: DataFrame) -> None:
    """Frees what `read_once` or `persist` kept of `df` (a no-op for anything else)."""
    df.unpersist()
    plan = df._jdf.queryExecution().logical()
    if plan.nodeName() == "LogicalRDD":
        plan.rdd().unpersist(False)


def tokenization_key(secret_id: str) -> bytes:
    """The HMAC key from the secret `{"key": "<base64>"}`; errors name the secret, not the key."""
    import boto3

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        key = base64.b64decode(json.loads(value)["key"], validate=True)
    except Exception as error:  # noqa: BLE001 - any failure means "cannot tokenize"
        raise JobError(
            f"Tokenization secret {secret_id} could not be read ({type(error).__name__})"
        ) from None
    if len(key) < 16:
        raise JobError(f"Tokenization secret {secret_id} holds a key shorter than 16 bytes")
    return key


def write_json(uri: str, value: object) -> None:
    body = json.dumps(value, indent=2, sort_keys=True).encode("utf-8")
    if uri.startswith("s3://"):
        import boto3

        bucket, _, key = uri[5:].partition("/")
        boto3.client("s3").put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/json"
        )
    else:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        Path(uri).write_bytes(body)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])
