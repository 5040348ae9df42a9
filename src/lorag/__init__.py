"""lorag: an incremental RAG index and LoRA fine-tuning, orchestrated by Prefect, recorded in MLflow."""

from lorag.env import apply_offline_defaults, quiet_known_dependency_warnings

# Environment variables only (no I/O): they must be in place before mlflow, prefect or transformers are
# imported by any entry point (CLI, flows, DVC stages, tests), and this import always comes first.
apply_offline_defaults()
quiet_known_dependency_warnings()

__version__ = "0.1.0"
