"""Moved: MLflow I/O of training lives in `lorag.registry.runs` (kept here for the launcher's import)."""

from __future__ import annotations

from lorag.registry.runs import record_training

__all__ = ["record_training"]
