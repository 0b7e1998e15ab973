"""Shared fixtures: a real S3-compatible server on 127.0.0.1, isolated storage."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_bucket_numbers = itertools.count()


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server over real HTTP; boto3 talks to it as to any endpoint."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint):
    """Env for a fresh, empty bucket on the local S3 server."""
    import boto3

    bucket = f"test-bucket-{os.getpid()}-{next(_bucket_numbers)}"
    env = {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": bucket,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "S3_ADDRESSING_STYLE": "path",
    }
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    return env


@pytest.fixture
def local_env(tmp_path):
    """Env for the local-directory backend in a temp folder."""
    return {"STORAGE_BACKEND": "local", "LOCAL_STORAGE_DIR": str(tmp_path / "storage")}
