#!/usr/bin/env bash
# Create .venv and install coder-lsp into it (with the test tools when given --dev).
# Idempotent: a second run only checks. llama-cpp-python is built from source; set CMAKE_ARGS
# for a GPU build (see README), otherwise it is a CPU build tuned for this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "coder-lsp needs Python >= 3.11 (found: $("$PY" --version 2>&1)); set PYTHON=python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv" >&2
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi

extras=""
if [ "${1:-}" = "--dev" ]; then extras="[dev]"; fi
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAVA_BUILD=OFF}"
if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
  echo "==> building llama-cpp-python from source (CMAKE_ARGS=$CMAKE_ARGS); ~3-6 min on 2 cores" >&2
fi
echo "==> installing coder-lsp$extras into .venv" >&2
.venv/bin/python -m pip install -q -e ".$extras"
