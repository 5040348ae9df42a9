"""`lorag rollback`: `champion` back to the previous release, verified; with --index, its index too.

The previous release is what `previous-champion` points at. After the move, `previous-champion` points at the
release that preceded that one in the ledger (or is removed), so repeated rollbacks walk back through history.
The result is verified by reading the alias back and loading the model; with --index the release's frozen index
is published again (lorag.promotion.index_release) while the live one keeps serving until the switch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params


class RollbackError(RuntimeError):
    """Nothing to roll back to, or the result did not verify; the message says what to do."""


def rollback(params: Params, by: str, reason: str, *, index: bool = False, load: bool = True) -> dict[str, Any]:
    """Move `champion` to the previous release; returns {from, to, verified, index}."""
    from lorag.promotion.promote import _event, current_manifest, move_alias, require_approver
    from lorag.tracking.rag_app import follow_release
    from lorag.tracking.registry import CHAMPION, PREVIOUS_CHAMPION, alias_version, champion_source, registry_client

    if not reason.strip():
        raise RollbackError("a rollback needs a reason: pass --reason '...'")
    require_approver(params, None, by, "roll back")
    client = registry_client(params)
    name = params.promotion.released_model
    current = champion_source(params, client)
    target = alias_version(client, name, PREVIOUS_CHAMPION)
    if current is None or target is None:
        what = "no champion" if current is None else f"no {PREVIOUS_CHAMPION} alias"
        raise RollbackError(f"no previous release to roll back to ({what} on {name!r}): approve a version first")
    target_released = str(target.version)
    before_target = _release_before(params, client, target_released)
    move_alias(params, client, CHAMPION, target_released, by, reason)
    move_alias(params, client, PREVIOUS_CHAMPION, before_target, by, reason)
    follow_release(params, client)
    verified = verify_champion(params, client, target_released, load=load)
    manifest = current_manifest(params, target_released) or {}
    restored = None
    if index:
        from lorag.promotion.index_release import restore_index

        if "index_state" not in manifest:
            raise RollbackError(f"release {target_released} recorded no index state: roll back without --index")
        restored = restore_index(params, manifest)
        _event(params, "index_restore", manifest.get("model_version"), by, reason, details=restored)
    _event(params, "rollback", manifest.get("model_version"), by, reason, alias=CHAMPION, from_version=current[1],
           to_version=manifest.get("model_version"), details={"index": restored, "verified": verified})
    return {"from_version": current[1], "to_version": manifest.get("model_version"),
            "released_version": target_released, "verified": verified, "index": restored}


def _release_before(params: Params, client: Any, released: str) -> str | None:
    """The released version that was champion just before `released` last became champion (None: none)."""
    from lorag.tracking.audit import read_events
    from lorag.tracking.registry import CHAMPION, TAG_SOURCE_VERSION, released_for

    source = client.get_model_version(params.promotion.released_model, released).tags.get(TAG_SOURCE_VERSION)
    moves = [e for e in read_events(params, kind="alias_move") if e.alias == CHAMPION and e.to_version == source]
    if not moves or moves[-1].from_version is None:
        return None
    return released_for(params, client, moves[-1].from_version)


def verify_champion(params: Params, client: Any, expected: str, *, load: bool = True) -> dict[str, Any]:
    """Read `champion` back and (with `load`) load the model it names: a rollback that does not serve is none."""
    from lorag.tracking.registry import CHAMPION, alias_version

    name = params.promotion.released_model
    found = alias_version(client, name, CHAMPION)
    if found is None or str(found.version) != expected:
        raise RollbackError(f"champion of {name!r} reads {None if found is None else found.version}, expected "
                            f"{expected}: run `lorag rollback` again (alias moves are idempotent)")
    out: dict[str, Any] = {"alias": CHAMPION, "version": expected, "loaded": False}
    if load:
        import mlflow

        mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
        out["loaded"] = True
    return out
