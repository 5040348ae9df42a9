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
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -c constraints.txt "torch==2.13.0"
  .venv/bin/pip install --quiet -c constraints.txt -e ".[dev,onnx,bench]"
  echo "$want" > "$stamp"
fi
