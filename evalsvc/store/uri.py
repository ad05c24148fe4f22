"""Turn an output or data URI (s3://bucket/prefix or a local path) into a pyarrow filesystem + path, and a boto3 client.

Credentials come from env references in the manifest's S3 options (resolved here, never stored) or the AWS chain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from evalsvc.envref import resolve_env
from evalsvc.errors import UserError


@dataclass(frozen=True)
class S3Conn:
    """Resolved S3 connection settings (holds secrets: never log, store or repr it)."""

    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None = None  # temporary credentials (STS, SSO, IRSA exports)

    def __repr__(self) -> str:
        return f"S3Conn(endpoint_url={self.endpoint_url!r}, region={self.region!r}, credentials=<redacted>)"

    @classmethod
    def from_options(cls, opts: object | None) -> S3Conn:
        """From the manifest's `output.s3` options (any object with its fields; None: the AWS env chain)."""
        def opt(name: str, default: str | None = None) -> str | None:
            return getattr(opts, name, default) if opts is not None else default

        from_manifest = opt("access_key_id") is not None
        token = resolve_env(opt("session_token"), "output.s3.session_token")
        if token is None and not from_manifest:
            token = os.environ.get("AWS_SESSION_TOKEN")  # belongs with the env's key pair, never with the manifest's
        return cls(
            endpoint_url=resolve_env(opt("endpoint_url"), "output.s3.endpoint_url")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL"),
            region=opt("region", "us-east-1") or "us-east-1",
            # Without references in the manifest, take the driver's AWS_* env explicitly: the filesystem object
            # then carries them to Ray workers, whose environment may not have them.
            access_key_id=resolve_env(opt("access_key_id"), "output.s3.access_key_id") or os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=resolve_env(opt("secret_access_key"), "output.s3.secret_access_key")
            or os.environ.get("AWS_SECRET_ACCESS_KEY"),
            session_token=token,
        )


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise UserError(f"{uri!r}: an S3 URI needs a bucket, like s3://bucket/prefix")
    return bucket, key.strip("/")


def filesystem(uri: str, conn: S3Conn | None = None) -> tuple[pafs.FileSystem, str]:
    """pyarrow filesystem and the path inside it for `uri` (bucket/key for S3, absolute path locally)."""
    if is_s3(uri):
        conn = conn or S3Conn.from_options(None)
        bucket, key = split_s3(uri)
        kwargs: dict = {"region": conn.region, "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=8)}
        if conn.endpoint_url:
            scheme, _, host = conn.endpoint_url.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        if conn.access_key_id:
            kwargs.update(access_key=conn.access_key_id, secret_key=conn.secret_access_key)
            if conn.session_token:
                kwargs["session_token"] = conn.session_token
        return pafs.S3FileSystem(**kwargs), f"{bucket}/{key}".rstrip("/")
    return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())


def boto3_client(conn: S3Conn):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=conn.endpoint_url,
        region_name=conn.region,
        aws_access_key_id=conn.access_key_id,
        aws_secret_access_key=conn.secret_access_key,
        aws_session_token=conn.session_token,
        config=Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=5, read_timeout=60),
    )


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *[p.strip("/") for p in parts]])
