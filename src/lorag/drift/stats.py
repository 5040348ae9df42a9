"""Two-sample test for query drift: maximum mean discrepancy (MMD) with an RBF kernel, p-value by permutation.

Why MMD and not Evidently's default embedding drift: Evidently 0.7 decides embedding drift with a domain
classifier (ROC AUC of a model told apart reference and current) or a share of drifted components, needs
pandas frames and brings a large dependency tree; MMD is the standard kernel two-sample test for embeddings
(alibi-detect's MMDDrift is the same test), has one interpretable statistic, and its permutation p-value gives a
false-alarm rate equal to the threshold with no distributional assumption. scipy.stats.permutation_test does the
resampling; the kernel matrix of the pooled sample is computed once, and each permutation only re-indexes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DriftTest:
    mmd2: float  # biased MMD^2 estimate (>= 0); 0 = same distribution
    p_value: float  # share of label permutations with an MMD^2 at least as large
    bandwidth: float  # RBF bandwidth: the median pairwise distance of the pooled sample
    n_reference: int
    n_recent: int


def _rbf_kernel(x: np.ndarray) -> tuple[np.ndarray, float]:
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    off = d2[np.triu_indices_from(d2, k=1)]
    median = float(np.median(off)) if off.size else 1.0
    bandwidth2 = median if median > 0 else 1.0  # median heuristic; identical points fall back to 1
    return np.exp(-d2 / bandwidth2), float(np.sqrt(bandwidth2))


def mmd_test(reference: np.ndarray, recent: np.ndarray, permutations: int = 500, seed: int = 0) -> DriftTest:
    """Test whether `recent` (m, d) comes from the distribution of `reference` (n, d)."""
    from scipy.stats import permutation_test

    reference, recent = np.asarray(reference, dtype=np.float64), np.asarray(recent, dtype=np.float64)
    if len(reference) < 2 or len(recent) < 2:
        raise ValueError(f"MMD needs at least 2 points per window, got {len(reference)} and {len(recent)}")
    kernel, bandwidth = _rbf_kernel(np.vstack([reference, recent]))
    n = len(reference)

    def mmd2(ix: np.ndarray, iy: np.ndarray, axis: int = -1) -> np.ndarray:
        # ix, iy: (batch, n) and (batch, m) index arrays into the pooled sample (vectorized over permutations).
        ix, iy = np.atleast_2d(ix).astype(int), np.atleast_2d(iy).astype(int)
        kxx = kernel[ix[:, :, None], ix[:, None, :]].mean(axis=(1, 2))
        kyy = kernel[iy[:, :, None], iy[:, None, :]].mean(axis=(1, 2))
        kxy = kernel[ix[:, :, None], iy[:, None, :]].mean(axis=(1, 2))
        return kxx + kyy - 2.0 * kxy

    result = permutation_test(
        (np.arange(n, dtype=float), np.arange(n, n + len(recent), dtype=float)), mmd2, vectorized=True,
        n_resamples=permutations, alternative="greater", permutation_type="independent",
        rng=np.random.default_rng(seed), batch=min(permutations, 64),
    )
    statistic, p_value = float(np.ravel(result.statistic)[0]), float(np.ravel(result.pvalue)[0])
    return DriftTest(max(statistic, 0.0), p_value, bandwidth, n, len(recent))
