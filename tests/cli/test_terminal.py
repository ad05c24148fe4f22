"""The terminal keeps evalsvc's own output: what Python, C code and child processes write to fds 1 and 2 during a
command goes to the log file (a fresh Python process, so the test's own descriptors are never touched)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import os, subprocess, sys
    from pathlib import Path
    from evalsvc.cli.terminal import Terminal

    log = None if sys.argv[1] == "-" else Path(sys.argv[1])
    with Terminal(log, json_stdout=sys.argv[2] == "json") as term:
        print("python stdout noise")
        print("python stderr noise", file=sys.stderr)
        os.write(1, b"fd1 noise\\n")
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b'child stderr noise\\\\n')"])
        term.out.write("ours on stdout\\n")
        term.err.write("ours on stderr\\n")
    print("after: stdout is back")
    """
)


def run_script(tmp_path: Path, log: str, mode: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, log, mode], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)  # fmt: skip


def test_everything_else_goes_to_the_log(tmp_path):
    log = tmp_path / "runs" / "r1" / "logs" / "run.log"
    p = run_script(tmp_path, str(log))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "ours on stdout\nafter: stdout is back\n"
    assert p.stderr == "ours on stderr\n"
    noise = log.read_text()
    for line in ("python stdout noise", "python stderr noise", "fd1 noise", "child stderr noise"):
        assert line in noise


def test_verbose_json_keeps_stdout_for_the_result_alone(tmp_path):
    p = run_script(tmp_path, "-", "json")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "ours on stdout\nafter: stdout is back\n"
    for line in ("python stdout noise", "fd1 noise", "child stderr noise", "ours on stderr"):
        assert line in p.stderr


def test_an_empty_log_and_the_folders_made_for_it_are_removed(tmp_path):
    script = ("import sys; from pathlib import Path; from evalsvc.cli.terminal import Terminal\n"
              "with Terminal(Path(sys.argv[1])) as term: term.out.write('only ours\\n')\n")  # fmt: skip
    (tmp_path / "runs").mkdir()
    log = tmp_path / "runs" / "r1" / "logs" / "run.log"
    p = subprocess.run([sys.executable, "-c", script, str(log)], capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO)}, timeout=60)  # fmt: skip
    assert p.returncode == 0 and p.stdout == "only ours\n", p.stderr
    assert not (tmp_path / "runs" / "r1").exists() and (tmp_path / "runs").is_dir()


RAY_SCRIPT = textwrap.dedent(
    """
    import sys, types
    from evalsvc.cli.terminal import Terminal

    up = {"now": sys.argv[1] == "up"}
    ray = types.ModuleType("ray")
    ray.is_initialized = lambda: up["now"]
    ray.shutdown = lambda: (print("shutdown"), up.update(now=False))
    sys.modules["ray"] = ray
    with Terminal(None):
        up["now"] = True  # the command starts Ray (or finds the caller's still up)
    print("ray up after:", up["now"])
    """
)


def test_a_ray_the_command_started_is_shut_down_and_a_callers_own_is_left_running(tmp_path):
    """`evalsvc run` in a fresh process stops the local Ray it started; called inside a process that already holds
    Ray (a notebook, a test session), it leaves that Ray for the caller."""
    def run(state: str) -> str:
        p = subprocess.run([sys.executable, "-c", RAY_SCRIPT, state], cwd=tmp_path, capture_output=True, text=True,
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)  # fmt: skip
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert run("down") == "shutdown\nray up after: False\n"
    assert run("up") == "ray up after: True\n"


def test_the_commands_environment_is_its_own_and_a_users_setting_is_kept(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from evalsvc.cli.terminal import ray_console

        os.environ["RAY_COLOR_PREFIX"] = "1"  # the user's own choice
        with ray_console(Path(sys.argv[1]), False, say=lambda _: None) as term:
            term.out.write(f"inside {os.environ.get('EVALSVC_RAY_LOGS')} {os.environ['RAY_COLOR_PREFIX']}\\n")
        print(f"after {os.environ.get('EVALSVC_RAY_LOGS')} {os.environ['RAY_COLOR_PREFIX']}")
        """
    )
    p = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run.log")], capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout == "inside 1 1\nafter None 1\n"  # set for the command, gone after it; the user's value untouched
