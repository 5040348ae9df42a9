"""Connecting to Weaviate: the endpoint from environment variables, the client's settings, reachability checks.

Endpoint rule (documented in README "### Weaviate" and params.yaml):
- HTTP comes from the URL in `index.weaviate.url_env` (WEAVIATE_URL). No scheme means http; no port means 443
  for https and 8080 (Weaviate's own default) for http.
- gRPC comes from `index.weaviate.grpc_url_env` (WEAVIATE_GRPC_URL) when set: `host:port`, `grpcs://host:port`
  (TLS) or `grpc://host:port` (plain); without a scheme TLS follows the HTTP URL. Unset: Weaviate Cloud hosts
  (*.weaviate.cloud, *.weaviate.network) use the client's own rule (`grpc-<host>:443`, as
  `weaviate.connect_to_weaviate_cloud` does, and they need an API key); any other host uses port 50051 on the
  same host. gRPC is never derived onto the HTTP port: the client refuses one host:port for both.

The client is built unconnected (so the derivation is testable without a server) with explicit timeouts and
`skip_init_checks=True`, which turns off the client's PyPI version lookup on every connect; the gRPC and
server-version checks it would also skip are done here instead, with bounded waits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lorag.index.protocol import IndexStoreError

if TYPE_CHECKING:
    from lorag.config import WeaviateParams

HTTP_DEFAULT_PORT = 8080
GRPC_DEFAULT_PORT = 50051
CLOUD_SUFFIXES = (".weaviate.cloud", ".weaviate.network")
MIN_SERVER = (1, 32)  # collection aliases
# Seconds. `init` bounds the connect-time checks; `query` each read attempt; `insert` one insert_many call.
# The client retries a gRPC call that finds the server UNAVAILABLE with exponential backoff: twice for
# insert_many (about 7 s of waiting on top of the timeouts), four times for queries (about 1 minute). Both are
# fixed inside the client; the batch API lorag used before retried for about 34 minutes.
INIT_TIMEOUT = 5
QUERY_TIMEOUT = 60
INSERT_TIMEOUT = 120
COMPOSE_HINT = "docker compose -f infra/docker-compose.yml up -d weaviate"


@dataclass(frozen=True)
class Endpoint:
    """Where the HTTP and gRPC APIs of one Weaviate are, and which variables said so (for error messages)."""

    url: str
    http_host: str
    http_port: int
    http_secure: bool
    grpc_host: str
    grpc_port: int
    grpc_secure: bool
    api_key: str | None
    url_env: str = "WEAVIATE_URL"
    grpc_env: str = "WEAVIATE_GRPC_URL"
    key_env: str = "WEAVIATE_API_KEY"

    @property
    def grpc_target(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"

    def hint(self) -> str:
        """What to check when this Weaviate does not answer: one clause, used at the end of error lines."""
        return (
            f"check that Weaviate runs at {self.url} ({self.url_env}; locally: {COMPOSE_HINT}) with gRPC at "
            f"{self.grpc_target} ({self.grpc_env})"
        )

    def connection_params(self) -> Any:
        """The client's ConnectionParams: its own validation (ports, host/port collision) applies here."""
        from pydantic import ValidationError
        from weaviate.connect.base import ConnectionParams

        try:
            return ConnectionParams.from_params(
                http_host=self.http_host, http_port=self.http_port, http_secure=self.http_secure,
                grpc_host=self.grpc_host, grpc_port=self.grpc_port, grpc_secure=self.grpc_secure,
            )  # fmt: skip
        except ValidationError as exc:
            reason = "; ".join(e["msg"] for e in exc.errors())
            raise IndexStoreError(
                f"Weaviate endpoint rejected by the client ({reason}): HTTP {self.http_host}:{self.http_port} from "
                f"{self.url_env}, gRPC {self.grpc_target}; set {self.grpc_env} to the gRPC host:port"
            ) from None


def endpoint_from_env(params: WeaviateParams, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The Endpoint the environment variables named in params describe (nothing is contacted)."""
    env = os.environ if environ is None else environ
    url = env.get(params.url_env, "").strip()
    if not url:
        raise IndexStoreError(
            f"index.backend is weaviate but {params.url_env} is not set. Export {params.url_env}="
            f"http://localhost:8080 ({COMPOSE_HINT}) or your Weaviate Cloud URL (with {params.api_key_env}), "
            "or use index.backend=lancedb."
        )
    return derive_endpoint(
        url, env.get(params.grpc_url_env, "").strip() or None, env.get(params.api_key_env, "").strip() or None,
        url_env=params.url_env, grpc_env=params.grpc_url_env, key_env=params.api_key_env,
    )  # fmt: skip


def derive_endpoint(
    url: str,
    grpc_url: str | None = None,
    api_key: str | None = None,
    url_env: str = "WEAVIATE_URL",
    grpc_env: str = "WEAVIATE_GRPC_URL",
    key_env: str = "WEAVIATE_API_KEY",
) -> Endpoint:
    """HTTP and gRPC endpoints from the URLs (rule in the module docstring); checked by the client's validation."""
    host, port, secure = _split(url, url_env, HTTP_DEFAULT_PORT)
    cloud = host.endswith(CLOUD_SUFFIXES)
    if grpc_url:
        grpc_host, grpc_port, grpc_secure = _split_grpc(grpc_url, grpc_env, secure)
    elif cloud:
        grpc_host, grpc_port, grpc_secure = _cloud_grpc_host(host), 443, True
    else:
        grpc_host, grpc_port, grpc_secure = host, GRPC_DEFAULT_PORT, secure
    if cloud and not api_key:
        raise IndexStoreError(f"{host} is a Weaviate Cloud cluster: set {key_env} to one of its API keys")
    if cloud and not secure:
        raise IndexStoreError(f"Weaviate Cloud only speaks https: set {url_env}=https://{host}")
    endpoint = Endpoint(url, host, port, secure, grpc_host, grpc_port, grpc_secure, api_key, url_env, grpc_env, key_env)
    endpoint.connection_params()
    return endpoint


def _split(url: str, env: str, default_port: int) -> tuple[str, int, bool]:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise IndexStoreError(f"{env}={url!r} is not an http(s) URL: use e.g. http://localhost:8080")
    try:
        port = parsed.port
    except ValueError:
        raise IndexStoreError(f"{env}={url!r} has an invalid port: use e.g. http://localhost:8080") from None
    secure = parsed.scheme == "https"
    return parsed.hostname, port or (443 if secure else default_port), secure


def _split_grpc(url: str, env: str, http_secure: bool) -> tuple[str, int, bool]:
    parsed = urlparse(url if "://" in url else f"//{url}")
    schemes = {"grpcs": True, "https": True, "grpc": False, "http": False, "": http_secure}
    if parsed.scheme not in schemes or not parsed.hostname:
        raise IndexStoreError(f"{env}={url!r} is not a gRPC endpoint: use host:port, grpcs://host:port or grpc://...")
    try:
        port = parsed.port
    except ValueError:
        raise IndexStoreError(f"{env}={url!r} has an invalid port: use e.g. localhost:50051") from None
    secure = schemes[parsed.scheme]
    return parsed.hostname, port or (443 if secure else GRPC_DEFAULT_PORT), secure


def _cloud_grpc_host(host: str) -> str:
    """Weaviate Cloud's gRPC host, as weaviate.connect_to_weaviate_cloud derives it."""
    if host.endswith(".weaviate.network"):  # legacy WCS clusters
        ident, domain = host.split(".", 1)
        return f"{ident}.grpc.{domain}"
    return f"grpc-{host}"


def client_options(endpoint: Endpoint) -> dict[str, Any]:
    """Keyword arguments for weaviate.WeaviateClient: explicit timeouts, no PyPI lookup on connect."""
    from weaviate.classes.init import AdditionalConfig, Auth, Timeout

    return {
        "connection_params": endpoint.connection_params(),
        "auth_client_secret": Auth.api_key(endpoint.api_key) if endpoint.api_key else None,
        "additional_config": AdditionalConfig(
            timeout=Timeout(init=INIT_TIMEOUT, query=QUERY_TIMEOUT, insert=INSERT_TIMEOUT)
        ),
        "skip_init_checks": True,
    }


def client_errors() -> tuple[type[BaseException], ...]:
    """Everything the client raises for a failed call: its own errors, and transport errors it lets through."""
    import grpc
    import httpx
    from weaviate.exceptions import WeaviateBaseError

    return (WeaviateBaseError, httpx.HTTPError, grpc.RpcError)


def one_line(error: object, limit: int = 300) -> str:
    """A client error (or its message) as one short line: its messages span lines and embed whole responses,
    and sometimes leave out the cause ("Details: ."), which is then added from the innermost exception."""
    text = " ".join(str(error).split()) or type(error).__name__
    root, seen = error, 0
    while isinstance(root, BaseException) and (root.__cause__ or root.__context__) and seen < 10:
        root, seen = root.__cause__ or root.__context__, seen + 1
    cause = " ".join(str(root).split()) or type(root).__name__
    if root is not error and cause not in text:
        text = f"{text} [{cause}]"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def connect_weaviate(params: WeaviateParams, environ: Mapping[str, str] | None = None) -> Any:
    """A connected weaviate client for the endpoint in the environment; IndexStoreError (one line) if unreachable."""
    import weaviate

    endpoint = endpoint_from_env(params, environ)
    client = weaviate.WeaviateClient(**client_options(endpoint))
    try:
        client.connect()
        check_grpc(endpoint)
        check_server_version(client, endpoint)
    except IndexStoreError:
        client.close()
        raise
    except client_errors() as exc:
        client.close()
        raise IndexStoreError(f"cannot reach Weaviate ({one_line(exc)}): {endpoint.hint()}") from exc
    return client


def check_grpc(endpoint: Endpoint, timeout: float = INIT_TIMEOUT) -> None:
    """Raise IndexStoreError unless a gRPC channel to the endpoint comes up within `timeout` seconds.

    The client would only find a wrong gRPC address at the first query, after about a minute of retries.
    """
    import grpc

    if endpoint.grpc_secure:
        channel = grpc.secure_channel(endpoint.grpc_target, grpc.ssl_channel_credentials())
    else:
        channel = grpc.insecure_channel(endpoint.grpc_target)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise IndexStoreError(
            f"Weaviate's gRPC API at {endpoint.grpc_target} ({'TLS' if endpoint.grpc_secure else 'plain'}) did not "
            f"answer within {timeout:g} s while HTTP at {endpoint.url} did: set {endpoint.grpc_env} to its gRPC "
            "host:port (docker compose: map port 50051)"
        ) from None
    finally:
        channel.close()


def check_server_version(client: Any, endpoint: Endpoint) -> None:
    """lorag publishes through collection aliases, which Weaviate has since 1.32."""
    version = str(client.get_meta().get("version", ""))
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if len(parts) == 2 and parts < MIN_SERVER:
        raise IndexStoreError(
            f"Weaviate at {endpoint.url} is {version}; lorag needs >= {'.'.join(map(str, MIN_SERVER))} "
            "(collection aliases): upgrade it (infra/docker-compose.yml pins a version that works)"
        )
