"""Session-wide fixtures: one Prefect server, one embedding cache, and the real-project factory for every folder."""

from __future__ import annotations

import pytest

import lorag  # noqa: F401  (first: telemetry off and Hugging Face offline before any library reads them)
from support.project import make_project  # noqa: F401  (fixture, shared by integration and flow tests)


@pytest.fixture(scope="session")
def prefect_server():
    """One real Prefect server (prefect_test_harness) for the whole session: it costs ~10 s to start."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def shared_embedding_cache(tmp_path_factory):
    """An embedding cache shared by tests that build the same sample corpus: later builds reuse vectors."""
    return tmp_path_factory.mktemp("embedding-cache") / "cache.sqlite"
