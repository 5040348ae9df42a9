"""Bootstrap confidence intervals over questions, for one cell and for the paired difference of two cells.

Percentile bootstrap with a fixed seed, so the same per-question values always give the same interval. NaN
per-question values are left out of each resample's mean (a metric undefined for a question, e.g. the validity
of an answer that cites nothing); a paired difference uses only the questions where both sides are defined.
Fewer than 2 defined questions, or a resample with none, gives NaN bounds: no interval, never a made-up one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NAN = float("nan")


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int  # questions with a defined value


def bootstrap_ci(values: Sequence[float], *, resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> Interval:
    """Mean of the defined values and its percentile-bootstrap interval."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if data.size == 0:
        return Interval(NAN, NAN, NAN, 0)
    mean = float(data.mean())
    if data.size < 2:
        return Interval(mean, NAN, NAN, int(data.size))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    means = data[idx].mean(axis=1)  # (resamples,)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), int(data.size))


def paired_diff_ci(a: Sequence[float], b: Sequence[float], **kwargs) -> Interval:
    """Interval of mean(a - b) over questions where both are defined (a and b are aligned by question)."""
    if len(a) != len(b):
        raise ValueError(f"paired values must be aligned by question: got {len(a)} and {len(b)} values")
    return bootstrap_ci([x - y for x, y in zip(a, b, strict=True)], **kwargs)
