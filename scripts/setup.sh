#!/usr/bin/env bash
# Create .venv and install lorag with its pinned stack. Idempotent: re-installs only when pyproject.toml or
# constraints.txt changed. torch comes first from constraints.txt, else pip pulls GBs of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "lorag needs Python >= 3.11"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.lorag-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing lorag and its pinned stack into .venv (the first time takes several minutes; log: .venv/install.log)"
  {
    .venv/bin/pip install --upgrade pip &&
    .venv/bin/pip install -c constraints.txt "torch==2.13.0" &&
    .venv/bin/pip install -c constraints.txt -e ".[dev,onnx,bench]"
  } > .venv/install.log 2>&1 || { tail -n 40 .venv/install.log; echo "install failed: see .venv/install.log" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
