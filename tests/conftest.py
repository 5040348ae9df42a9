"""Session-wide fixtures: one Prefect server, one embedding cache, and the real-project factory for every folder."""

from __future__ import annotations

import pytest

import lorag  # noqa: F401  (first: telemetry off and Hugging Face offline before any library reads them)
from support.project import make_project  # noqa: F401  (fixture, shared by integration and flow tests)


@pytest.fixture(scope="session", autouse=True)
def _dvc_logs_to_session_streams():
    """DVC binds its log handlers to sys.stdout/stderr when first imported. Imported first inside a CliRunner
    invocation, they would hold that invocation's streams, closed afterwards, and every later DVC log line in
    the session would fail. Importing it once here binds them to pytest's own streams."""
    import dvc  # noqa: F401
from support.behavior import mlflow_server, mlflow_server_pg, sample_base_model  # noqa: F401  (session fixtures)
from support.answer import rag_project  # noqa: F401  (session fixture: indexed sample + a registered adapter)


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
