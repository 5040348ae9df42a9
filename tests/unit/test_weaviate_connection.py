"""Where lorag connects for Weaviate, checked by the real weaviate-client's own validation (no server needed).

The client's `ConnectionParams` refuses HTTP and gRPC on one host:port, which is what every `https://host` URL
without a port used to derive (443 for both). Unreachable servers are real closed ports on this machine.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lorag.config import ConfigError, WeaviateParams, load_params
from lorag.index.protocol import IndexStoreError
from lorag.index.weaviate_connect import (
    INIT_TIMEOUT,
    INSERT_TIMEOUT,
    QUERY_TIMEOUT,
    check_grpc,
    client_options,
    connect_weaviate,
    derive_endpoint,
    endpoint_from_env,
)

REPO = Path(__file__).resolve().parents[2]
CLOUD = "abc123xyz.c0.europe-west3.gcp.weaviate.cloud"


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grpc_of(endpoint) -> tuple[str, int, bool]:
    params = endpoint.connection_params()  # the client's model, validated by the client
    return params.grpc.host, params.grpc.port, params.grpc.secure


def http_of(endpoint) -> tuple[str, int, bool]:
    params = endpoint.connection_params()
    return params.http.host, params.http.port, params.http.secure


# -- derivation ------------------------------------------------------------------------------------------------
def test_local_http_gets_grpc_50051_on_the_same_host():
    endpoint = derive_endpoint("http://localhost:8080")
    assert http_of(endpoint) == ("localhost", 8080, False)
    assert grpc_of(endpoint) == ("localhost", 50051, False)
    assert http_of(derive_endpoint("localhost")) == ("localhost", 8080, False)  # no scheme: http, Weaviate's port


def test_https_without_port_keeps_443_for_http_and_never_puts_grpc_there():
    endpoint = derive_endpoint("https://weaviate.example.com")
    assert http_of(endpoint) == ("weaviate.example.com", 443, True)
    assert grpc_of(endpoint) == ("weaviate.example.com", 50051, True)
    import weaviate

    client = weaviate.WeaviateClient(**client_options(endpoint))  # the real client accepts it (no connection made)
    assert not client.is_connected()
    client.close()


def test_https_url_without_port_reaches_the_connection_attempt(monkeypatch):
    """Before the fix this failed in the client's validation (443/443) before any connection was tried."""
    # 127.1 is 127.0.0.1 spelled so that the old code did not treat it as localhost; nothing listens on 443.
    monkeypatch.setenv("WEAVIATE_URL", "https://127.1")
    monkeypatch.delenv("WEAVIATE_GRPC_URL", raising=False)
    with pytest.raises(IndexStoreError, match="cannot reach Weaviate") as err:
        connect_weaviate(WeaviateParams())
    assert "127.1:50051" in str(err.value)  # where gRPC was looked for is part of what to check


@pytest.mark.parametrize(
    ("grpc_url", "expected"),
    [
        ("grpc.example.com:443", ("grpc.example.com", 443, True)),  # no scheme: TLS follows the https URL
        ("grpcs://grpc.example.com", ("grpc.example.com", 443, True)),
        ("grpc://weaviate.example.com:50052", ("weaviate.example.com", 50052, False)),
        ("grpc://weaviate.example.com", ("weaviate.example.com", 50051, False)),  # no port: 50051 without TLS
    ],
)
def test_grpc_endpoint_comes_from_its_own_variable(grpc_url, expected):
    assert grpc_of(derive_endpoint("https://weaviate.example.com", grpc_url)) == expected


def test_grpc_on_the_http_port_of_the_same_host_is_refused_with_the_fix():
    with pytest.raises(IndexStoreError, match="WEAVIATE_GRPC_URL"):
        derive_endpoint("https://weaviate.example.com", "weaviate.example.com:443")


def test_weaviate_cloud_uses_the_clients_own_grpc_host_rule():
    from weaviate.connect import helpers

    client_rule = vars(helpers)["__parse_weaviate_cloud_cluster_url"]  # what connect_to_weaviate_cloud uses
    for host in (CLOUD, "mycluster.weaviate.network"):
        endpoint = derive_endpoint(f"https://{host}", api_key="secret")
        assert http_of(endpoint) == (host, 443, True)
        assert grpc_of(endpoint) == (client_rule(host)[1], 443, True)
    assert grpc_of(derive_endpoint(f"https://{CLOUD}", api_key="k"))[0] == f"grpc-{CLOUD}"


def test_weaviate_cloud_without_an_api_key_is_refused():
    with pytest.raises(IndexStoreError, match="WEAVIATE_API_KEY"):
        derive_endpoint(f"https://{CLOUD}")


@pytest.mark.parametrize("url", ["ftp://weaviate.example.com", "http://localhost:99999", "http://"])
def test_malformed_urls_are_refused_with_an_example(url):
    with pytest.raises(IndexStoreError, match="WEAVIATE_URL"):
        derive_endpoint(url)


def test_names_of_the_variables_come_from_params():
    params = WeaviateParams(url_env="MY_URL", grpc_url_env="MY_GRPC", api_key_env="MY_KEY")
    env = {"MY_URL": "https://weaviate.example.com", "MY_GRPC": "grpc.example.com:8443", "MY_KEY": "k"}
    endpoint = endpoint_from_env(params, env)
    assert grpc_of(endpoint) == ("grpc.example.com", 8443, True) and endpoint.api_key == "k"
    with pytest.raises(IndexStoreError, match="MY_URL is not set.*infra/docker-compose.yml"):
        endpoint_from_env(params, {})


# -- client settings -------------------------------------------------------------------------------------------
def test_client_has_explicit_timeouts_and_no_pypi_check_on_connect():
    options = client_options(derive_endpoint("http://localhost:8080"))
    assert options["skip_init_checks"] is True  # the only switch for the client's PyPI version lookup
    timeout = options["additional_config"].timeout
    assert (timeout.init, timeout.query, timeout.insert) == (INIT_TIMEOUT, QUERY_TIMEOUT, INSERT_TIMEOUT)
    assert options["auth_client_secret"] is None
    assert client_options(derive_endpoint(f"https://{CLOUD}", api_key="k"))["auth_client_secret"].api_key == "k"


# -- unreachable servers: one line that says what to check ----------------------------------------------------
def test_unreachable_weaviate_is_one_line_naming_what_to_check(monkeypatch):
    monkeypatch.setenv("WEAVIATE_URL", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(IndexStoreError) as err:
        connect_weaviate(WeaviateParams())
    message = str(err.value)
    assert "\n" not in message and "Connection refused" in message  # the cause, not the client's empty "Details"
    assert "WEAVIATE_URL" in message and "docker compose -f infra/docker-compose.yml up -d weaviate" in message


def test_a_grpc_port_that_does_not_answer_names_its_variable():
    endpoint = derive_endpoint("http://127.0.0.1:8080", f"127.0.0.1:{closed_port()}")
    with pytest.raises(IndexStoreError, match="WEAVIATE_GRPC_URL") as err:
        check_grpc(endpoint, timeout=1.0)
    assert "\n" not in str(err.value)


def test_cli_prints_one_line_for_an_unreachable_weaviate(tmp_path):
    (tmp_path / "params.yaml").write_text("index:\n  backend: weaviate\n  weaviate:\n    project: clitest\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEAVIATE_URL": f"http://127.0.0.1:{closed_port()}"}
    cmd = [sys.executable, "-m", "lorag.cli", "search", "hives", "--params", str(tmp_path / "params.yaml")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and "WEAVIATE_URL" in lines[0], done.stderr


# -- configuration ---------------------------------------------------------------------------------------------
def test_project_is_required_to_open_a_weaviate_store(monkeypatch):
    from lorag.index.weaviate_store import open_weaviate_store

    monkeypatch.setenv("WEAVIATE_URL", "http://localhost:8080")
    with pytest.raises(IndexStoreError, match=r"index\.weaviate\.project"):
        open_weaviate_store(WeaviateParams())


@pytest.mark.parametrize("bad", ["my__docs", "docs_", "_docs", "1docs", "my-docs", "x" * 41])
def test_project_names_that_would_make_weaviate_names_ambiguous_are_refused(tmp_path, bad):
    (tmp_path / "params.yaml").write_text(f"index:\n  weaviate:\n    project: '{bad}'\n")
    with pytest.raises(ConfigError, match=r"index\.weaviate\.project"):
        load_params(tmp_path / "params.yaml")


def test_embedded_weaviate_was_removed_with_a_pointer_to_lancedb(tmp_path):
    (tmp_path / "params.yaml").write_text("index:\n  weaviate:\n    embedded: true\n")
    with pytest.raises(ConfigError, match=r"embedded was removed.*index\.backend=lancedb"):
        load_params(tmp_path / "params.yaml")


def test_dependency_floor_has_configure_vectors_and_aliases_and_admits_the_pinned_version():
    from packaging.requirements import Requirement

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(Requirement(d) for d in deps if d.startswith("weaviate-client")).specifier
    assert not spec.contains("4.10.0") and not spec.contains("4.15.9")  # no Configure.Vectors, no aliases
    assert not spec.contains("4.16.0")  # 4.16.0-4.16.3: 'invalid properties' errors
    pinned = next(
        line.split("==")[1].strip()
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line.startswith("weaviate-client==")
    )
    assert spec.contains(pinned)
