"""Control objects of a run (run.json, status.json, summary.json): small JSON documents, written whole.

S3 goes through boto3 (one atomic PUT per object); local files are written to a temp name and renamed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from evalsvc.errors import SystemError_, UserError
from evalsvc.store.uri import S3Conn, boto3_client, is_s3, split_s3


class ControlStore:
    def __init__(self, conn: S3Conn | None = None):
        self.conn = conn
        self._client = None

    def _s3(self):
        if self._client is None:
            self._client = boto3_client(self.conn or S3Conn.from_options(None))
        return self._client

    def put_json(self, uri: str, doc: dict) -> None:
        body = json.dumps(doc, indent=2, sort_keys=False, default=str).encode("utf-8")
        if is_s3(uri):
            bucket, key = split_s3(uri)
            try:
                self._s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
            except Exception as e:
                raise _s3_error(uri, e) from e
            return
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)

    def get_json(self, uri: str) -> dict | None:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            try:
                obj = self._s3().get_object(Bucket=bucket, Key=key)
            except Exception as e:
                if _code(e) in ("NoSuchKey", "404"):
                    return None
                raise _s3_error(uri, e) from e
            return json.loads(obj["Body"].read())
        path = Path(uri)
        return json.loads(path.read_text("utf-8")) if path.is_file() else None

    def check_writable(self, root: str) -> None:
        """Fail before any work if the output cannot be written (missing bucket, denied, read-only folder)."""
        probe = root.rstrip("/") + "/.evalsvc-write-probe"
        self.put_json(probe, {"probe": True})
        if is_s3(probe):
            bucket, key = split_s3(probe)
            self._s3().delete_object(Bucket=bucket, Key=key)
        else:
            Path(probe).unlink(missing_ok=True)


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _s3_error(uri: str, e: Exception) -> Exception:
    code = _code(e)
    if code == "NoSuchBucket":
        return UserError(f"output {uri}: the bucket does not exist; create it or fix output.uri")
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
        return UserError(f"output {uri}: access denied ({code}); check the credentials your env references point at")
    return SystemError_(f"output {uri}: S3 request failed ({type(e).__name__}: {code or e})")
