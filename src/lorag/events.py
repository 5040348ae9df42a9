"""lorag's Prefect events, sent over the server's REST API so that delivery is confirmed.

Prefect's `emit_event` sends over a websocket and, when the server is down, drops the event while the process
still exits 0. `POST {api}/events` answers 204 only once the server accepted the batch: `send_event` retries
while it cannot connect and raises when the event was not delivered, so a watcher never believes a re-index was
requested when it was not. Plain HTTP: the library stays free of Prefect imports.

Every event names its project as its resource (`lorag.project.<slug>`), and the deployments of that project
match on it, so two projects served by one Prefect server never trigger each other.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib import error, request


class EventNotDelivered(RuntimeError):
    """The Prefect server did not accept the event."""


def project_slug(root: Path) -> str:
    """A stable, readable id of a project on a shared server: folder name + hash of its absolute path."""
    name = re.sub(r"[^a-z0-9]+", "-", root.resolve().name.lower()).strip("-")[:30] or "project"
    return f"{name}-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]}"


def project_resource(root: Path) -> str:
    return f"lorag.project.{project_slug(root)}"


def send_event(api_url: str, name: str, root: Path, payload: dict[str, Any] | None = None,
               labels: dict[str, str] | None = None, retries: int = 3, backoff_s: float = 1.0) -> str:
    """Deliver one event to the Prefect API at `api_url` (…/api); returns its id. Raises EventNotDelivered."""
    event_id = str(uuid.uuid4())
    resource = {"prefect.resource.id": project_resource(root), "prefect.resource.name": root.resolve().name,
                **(labels or {})}
    body = [{"id": event_id, "occurred": datetime.now(timezone.utc).isoformat(), "event": name,
             "resource": resource, "related": [], "payload": payload or {}}]
    data = json.dumps(body).encode("utf-8")
    last: Exception | None = None
    for attempt in range(retries + 1):
        req = request.Request(api_url.rstrip("/") + "/events", data=data, method="POST",
                              headers={"Content-Type": "application/json"})
        try:
            with request.urlopen(req, timeout=10) as resp:
                if resp.status in (200, 201, 202, 204):
                    return event_id
                last = EventNotDelivered(f"HTTP {resp.status}")
        except error.HTTPError as exc:  # the server answered and refused: retrying sends the same refusal
            raise EventNotDelivered(f"{api_url} refused event {name}: HTTP {exc.code} {exc.read()[:300]!r}") from exc
        except (error.URLError, OSError) as exc:
            last = exc
        if attempt < retries:
            time.sleep(backoff_s * (2**attempt))
    raise EventNotDelivered(
        f"event {name} not delivered to {api_url} after {retries + 1} tries ({last}): is the Prefect server up? "
        "Start it with `lorag serve`, or run `lorag watch --in-process` to re-index without a server"
    )


def api_healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    """True when the Prefect API answers its health check."""
    try:
        with request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout_s) as resp:
            return resp.status == 200
    except (error.URLError, OSError):
        return False
