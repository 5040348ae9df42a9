"""The process environment lorag runs under: telemetry off, Hugging Face offline.

This is the one place these variables are decided. `lorag/__init__` applies them (setdefault, so a user's own
value wins), and shell scripts export the same values with `python -m lorag.env`.
"""

from __future__ import annotations

import os

# Measured on the build machines (see docs): MLflow ignores DO_NOT_TRACK=1 and needs "true";
# without HF_HUB_OFFLINE a load of a local model still spends ~48 s retrying the hub.
OFFLINE_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # registration otherwise floods logs with download bars
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "GIT_TERMINAL_PROMPT": "0",
    # The throwaway local Prefect server a flow starts when no PREFECT_API_URL is set takes ~11 s on 2 busy
    # cores; Prefect's 20 s default fails the run under load.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


# Deprecation warnings raised inside our dependencies about their own internals, which no lorag setting can
# change (e.g. peft calling transformers' renamed `is_gradient_checkpointing`): a user would see them on every
# training and could do nothing about them. Matched by message, so any other warning still shows.
KNOWN_DEPENDENCY_WARNINGS = (r".*`is_gradient_checkpointing` is deprecated.*",)


def quiet_known_dependency_warnings() -> None:
    import warnings

    for message in KNOWN_DEPENDENCY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)


def apply_offline_defaults() -> None:
    """Set every default that the caller has not set already."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)


def shell_exports() -> str:
    """`export K=V` lines for shell scripts (`eval "$(python -c "from lorag.env import shell_exports; print(shell_exports())")"`)."""
    return "\n".join(f"export {k}=${{{k}:-{v}}}" for k, v in OFFLINE_DEFAULTS.items())


