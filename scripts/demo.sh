#!/usr/bin/env bash
# The whole knowledge track on embedded defaults, from a fresh clone: no servers to start by hand.
# Prefect starts its own local server for each flow run (no PREFECT_API_URL is needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
eval "$(.venv/bin/python -c "from lorag.env import shell_exports; print(shell_exports())")"
export PATH="$PWD/.venv/bin:$PATH"
# Prefect's own state (the local server's database) stays inside the project unless the user points elsewhere.
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.lorag/prefect}"
mkdir -p "$PREFECT_HOME"  # Prefect does not create it, and its server then fails to open its database
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ ! -d data/docs ]; then
  step "copy the sample corpus (sample/docs) into the DVC-tracked documents folder data/docs"
  mkdir -p data && cp -r sample/docs data/docs
fi

step "1. re-index through the Prefect flow (DVC snapshot -> validate -> chunk -> embed -> write -> verify -> publish)"
python -m flows.reindex

step "2. run again with no changes: nothing is embedded"
python -m flows.reindex

step "3. edit one document, re-index: only its changed chunks are embedded"
grep -q "Demo addendum" data/docs/hive-management/inspections.md || cat >> data/docs/hive-management/inspections.md <<'MD'

## Demo addendum

During the demo run the cooperative added this section: inspections on rooftop apiaries stop when the wind is
stronger than 30 km/h, because open hives chill quickly and foragers cannot land safely.
MD
python -m flows.reindex

step "4. search with citations"
lorag search "Should I open rooftop hives on a windy day?"
lorag search "How is varroa treated in winter?" --top-k 3

step "5. behavior track with DVC: build and pre-train the tiny base model, validate the examples, train a LoRA adapter (2 CPU processes under accelerate), evaluate, register in MLflow, run the evaluation matrix"
dvc repro

step "6. dvc repro again: nothing changed, every stage is skipped"
dvc repro

step "6b. review version 1 (gates against the base model: it is the first) and release it as champion"
lorag review 1
lorag approve 1 --by alice --reason "first release: gates passed against the base model"

step "7. the same stages as a Prefect flow: retrain, register a new challenger version, gate it against the champion"
# --no-wait: the flow records its gate decision and leaves the review to the terminal (step 10); without it the
# run pauses for a reviewer (Prefect UI form, or lorag approve with PREFECT_API_URL pointing at its server).
python -m flows.retrain --no-wait

step "8. the RAG x fine-tune matrix of the new challenger (recorded by the flow; README: Reading the evaluation matrix)"
lorag eval --logged

step "9. answer a question with the challenger, citing path > heading of the passages it used"
lorag ask "Should I open rooftop hives on a windy day?"

step "10. review the challenger beside the champion, approve it from the terminal, then roll back"
CHALLENGER=$(lorag status --json | python -c "import json,sys; print(json.load(sys.stdin)['models']['challenger']['version'])")
lorag review "$CHALLENGER"
lorag approve "$CHALLENGER" --by bob --reason "gates passed; answers read in lorag review"
lorag status
lorag rollback --index --by alice --reason "demo: back to the previous release, index included"
lorag history

step "11. drift: the signals the monitor checks and its routing decision, without acting (lorag serve runs the monitor every 30 minutes)"
lorag drift

step "done"
echo "MLflow UI (runs, registered model lorag-adapter with its lineage tags; each version's eval-matrix-v<N> run"
echo "holds the matrix table, eval_matrix.png and the per-question table under Artifacts):"
echo "  .venv/bin/mlflow ui --backend-store-uri sqlite:///.lorag/mlflow.db"
