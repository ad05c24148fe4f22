"""S3 connection settings: env references resolved at use, the AWS env as fallback, temporary session tokens."""

from __future__ import annotations

import pytest

from evalsvc.errors import UserError
from evalsvc.manifest.schema import S3Options
from evalsvc.store.uri import S3Conn, filesystem, split_s3


@pytest.fixture
def aws_env(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_env_chain_carries_the_session_token(aws_env):
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    aws_env.setenv("AWS_SESSION_TOKEN", "envtoken")
    conn = S3Conn.from_options(None)
    assert (conn.access_key_id, conn.secret_access_key, conn.session_token) == ("AKIAENV", "envsecret", "envtoken")
    assert "envtoken" not in repr(conn) and "envsecret" not in repr(conn)


def test_manifest_keys_never_pair_with_the_envs_token(aws_env):
    aws_env.setenv("AWS_SESSION_TOKEN", "envtoken")
    aws_env.setenv("MY_KEY", "AKIAMINE")
    aws_env.setenv("MY_SECRET", "minesecret")
    conn = S3Conn.from_options(S3Options(access_key_id="${MY_KEY}", secret_access_key="${MY_SECRET}"))
    assert conn.session_token is None
    aws_env.setenv("MY_TOKEN", "minetoken")
    opts = S3Options(access_key_id="${MY_KEY}", secret_access_key="${MY_SECRET}", session_token="${MY_TOKEN}")
    assert S3Conn.from_options(opts).session_token == "minetoken"


def test_session_token_is_an_env_reference_only():
    with pytest.raises(ValueError, match="env reference"):
        S3Options(session_token="FQoGZXIvYXdzEJr")


def test_unset_reference_names_the_field(aws_env):
    with pytest.raises(UserError, match="output.s3.session_token: environment variable NOPE_TOKEN is not set"):
        S3Conn.from_options(S3Options(session_token="${NOPE_TOKEN}"))


def test_filesystem_accepts_temporary_credentials(aws_env):
    conn = S3Conn("http://127.0.0.1:9", "us-east-1", "AKIA", "secret", "token")
    fs, path = filesystem("s3://bucket/runs/x", conn)
    assert path == "bucket/runs/x" and type(fs).__name__ == "S3FileSystem"


def test_split_s3_needs_a_bucket():
    assert split_s3("s3://b/k/") == ("b", "k")
    with pytest.raises(UserError, match="needs a bucket"):
        split_s3("s3:///k")
