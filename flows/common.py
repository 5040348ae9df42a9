"""Wiring shared by the flows: which failures are worth a retry, and the global concurrency limits."""

from __future__ import annotations

from typing import Any


def io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what a retry can fix: I/O and connection errors, not bad data, a tripped guard or a failed
    training."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, (OSError, ConnectionError, TimeoutError))


def ensure_concurrency_limit(name: str, limit: int = 1) -> None:
    """Create the global limit if it is missing: with strict=True a missing limit is an error, and without
    strict it would silently be no lock at all."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit)
