"""The CLI starts without loading heavy libraries, and its help shows the commands with examples."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "mlflow", "prefect", "lancedb", "great_expectations", "dvc", "sentence_transformers")


def test_importing_the_cli_loads_no_heavy_library():
    code = "import sys, lorag.cli; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported at CLI start-up: {out}"


def test_help_lists_commands_and_examples():
    out = subprocess.run([sys.executable, "-m", "lorag.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("reindex", "search", "status"):
        assert command in out.stdout
    sub = subprocess.run(
        [sys.executable, "-m", "lorag.cli", "reindex", "--help"], capture_output=True, text=True, check=True
    )
    assert "--dry-run" in sub.stdout and "lorag reindex --full" in sub.stdout
