"""DevS3 against the real SeaweedFS binary: credentials enforced, boto3 and pyarrow round-trips, side-by-side servers,
outages (stop / kill / restart keep the data), and clear errors when weed does not come up."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from evalsvc.errors import SystemError_
from evalsvc.store.devs3 import DevS3, WeedPorts, weed_binary
from evalsvc.store.uri import filesystem, split_s3


def _client(s3: DevS3, key_id: str, secret: str):
    return boto3.client(
        "s3", endpoint_url=s3.endpoint_url, region_name="us-east-1", aws_access_key_id=key_id,
        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip


def test_weed_binary_is_the_packaged_executable():
    path = Path(weed_binary())
    assert path.is_file() and os.access(path, os.X_OK)


def test_free_ports_are_distinct_and_leave_room_for_the_admin_grpc_port():
    ports = WeedPorts.free()
    every = ports.all()
    assert len(set(every)) == len(every) == 10
    assert every[-1] == ports.admin + 10000 <= 65535


def test_object_round_trip_with_boto3(s3, s3_uri, s3_keys):
    bucket, prefix = split_s3(s3_uri)
    client = s3.client()
    client.put_object(Bucket=bucket, Key=f"{prefix}/a.txt", Body=b"first")
    client.put_object(Bucket=bucket, Key=f"{prefix}/sub/b.bin", Body=bytes(range(256)) * 100)
    assert client.get_object(Bucket=bucket, Key=f"{prefix}/a.txt")["Body"].read() == b"first"
    assert client.get_object(Bucket=bucket, Key=f"{prefix}/sub/b.bin")["Body"].read() == bytes(range(256)) * 100
    assert s3_keys(prefix) == [f"{prefix}/a.txt", f"{prefix}/sub/b.bin"]


def test_parquet_round_trip_with_pyarrow(s3, s3_uri, s3_keys):
    table = pa.table({"item_id": ["a", "b", "c"], "score": [1, 5, None]})
    fs, path = filesystem(f"{s3_uri}/records/part-0.parquet", s3.conn)
    assert type(fs).__name__ == "S3FileSystem"
    pq.write_table(table, path, filesystem=fs)
    assert pq.read_table(path, filesystem=fs).equals(table)
    assert s3_keys(split_s3(s3_uri)[1]) == [f"{split_s3(s3_uri)[1]}/records/part-0.parquet"]


@pytest.mark.parametrize("who", ["wrong secret", "unknown key", "anonymous"])
def test_requests_without_the_right_credentials_are_rejected(s3, who):
    if who == "anonymous":
        from botocore import UNSIGNED

        client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name="us-east-1",
                              config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))  # fmt: skip
    else:
        key_id = s3.access_key_id if who == "wrong secret" else "AKIAUNKNOWN000000000"
        client = _client(s3, key_id, s3.secret_access_key[::-1])
    with pytest.raises(ClientError) as e:
        client.list_objects_v2(Bucket="evalsvc-test")
    assert e.value.response["Error"]["Code"] in {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}
    assert _client(s3, s3.access_key_id, s3.secret_access_key).list_objects_v2(Bucket="evalsvc-test")


def test_env_points_a_child_process_at_the_server(s3, s3_uri):
    fs, path = filesystem(f"{s3_uri}/t.parquet", s3.conn)
    pq.write_table(pa.table({"x": [1, 2, 3]}), path, filesystem=fs)
    child = textwrap.dedent(f"""
        import json, boto3, pyarrow.parquet as pq
        from evalsvc.store.uri import S3Conn, filesystem
        fs, path = filesystem({s3_uri + '/t.parquet'!r}, S3Conn.from_options(None))
        keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="evalsvc-test")["Contents"]]
        print(json.dumps({{"x": pq.read_table(path, filesystem=fs).column("x").to_pylist(), "keys": keys}}))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | s3.env()
    out = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["x"] == [1, 2, 3] and f"{split_s3(s3_uri)[1]}/t.parquet" in got["keys"]


def test_credentials_stay_out_of_repr_argv_and_log(s3):
    assert s3.secret_access_key not in repr(s3) and s3.access_key_id not in repr(s3)
    assert s3.secret_access_key not in repr(s3.conn)
    argv = Path(f"/proc/{s3._proc.pid}/cmdline").read_bytes().decode()
    assert s3.secret_access_key not in argv and s3.access_key_id not in argv
    log = s3.log_path.read_text(errors="replace")
    assert "SeaweedFS" in log  # the log is weed's real output
    assert s3.secret_access_key not in log and s3.access_key_id not in log


def test_two_servers_side_by_side_are_independent(s3, tmp_path):
    with DevS3(tmp_path / "other") as other:
        assert not set(other.ports.all()) & set(s3.ports.all())
        other.create_bucket("only-here")
        other.client().put_object(Bucket="only-here", Key="k", Body=b"v")
        assert [b["Name"] for b in other.client().list_buckets()["Buckets"]] == ["only-here"]
        assert "only-here" not in [b["Name"] for b in s3.client().list_buckets()["Buckets"]]
        with pytest.raises(ClientError):  # each server accepts only its own credentials
            _client(other, s3.access_key_id, s3.secret_access_key).list_buckets()


@pytest.mark.slow  # two clean shutdowns and a restart: ~4-6 s
def test_stop_and_restart_keep_the_data_and_the_endpoint(tmp_path):
    with DevS3(tmp_path / "s3") as server:
        server.create_bucket("keep")
        server.client().put_object(Bucket="keep", Key="a/b.txt", Body=b"survives")
        endpoint = server.endpoint_url
        server.stop()
        assert not server.running
        from botocore.exceptions import BotoCoreError

        with pytest.raises(BotoCoreError):  # nothing listens: a connection error, not an S3 answer
            _client(server, server.access_key_id, server.secret_access_key).list_buckets()
        server.start()
        assert server.endpoint_url == endpoint
        assert server.client().get_object(Bucket="keep", Key="a/b.txt")["Body"].read() == b"survives"
    assert not server.running


@pytest.mark.slow  # the volume server may take ~5 s to re-register after a crash
def test_restart_after_kill_recovers_what_was_written(tmp_path):
    with DevS3(tmp_path / "s3") as server:
        server.create_bucket("crash")
        server.client().put_object(Bucket="crash", Key="before", Body=b"x" * 10_000)
        server.kill()
        assert not server.running
        server.restart()
        assert server.client().get_object(Bucket="crash", Key="before")["Body"].read() == b"x" * 10_000
        server.client().put_object(Bucket="crash", Key="after", Body=b"y")
        assert sorted(o["Key"] for o in server.client().list_objects_v2(Bucket="crash")["Contents"]) == ["after", "before"]


def _fake_weed(tmp_path: Path, body: str, monkeypatch) -> None:
    script = tmp_path / "fake-weed"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("EVALSVC_WEED", str(script))


def test_a_weed_that_exits_gives_a_system_error_with_the_log_tail(tmp_path, monkeypatch):
    _fake_weed(tmp_path, "echo 'bind: address already in use'; exit 3", monkeypatch)
    server = DevS3(tmp_path / "s3")
    with pytest.raises(SystemError_, match=r"exited with code 3(.|\n)*address already in use"):
        server.start()
    assert not server.running


def test_a_weed_that_never_answers_gives_a_system_error_at_the_deadline(tmp_path, monkeypatch):
    _fake_weed(tmp_path, "echo 'still starting'; exec sleep 60", monkeypatch)
    server = DevS3(tmp_path / "s3", start_timeout_s=1.0)
    with pytest.raises(SystemError_, match=r"did not answer S3 at http://127\.0\.0\.1:\d+ within 1 s(.|\n)*still starting"):
        server.start()
    assert not server.running  # the hung process was killed, not leaked
