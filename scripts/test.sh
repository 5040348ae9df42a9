#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
eval "$(.venv/bin/python -c "from lorag.env import shell_exports; print(shell_exports())")"
# One thread per process: on a shared 2-core machine, 2 torch threads while another process is busy ran 10-50x
# slower (measured); tests run several processes (accelerate ranks, servers) at once.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec .venv/bin/python -m pytest "$@"
