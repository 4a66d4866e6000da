"""Top-K selection with per-user exclusions, shared by training (model scores) and evaluation (popularity).

Deterministic: equal scores are ordered by ascending item index, so reruns give identical lists.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def top_k_excluding(
    scores: np.ndarray, exclude: Sequence[np.ndarray], k: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Best ``k`` items per row of ``scores``, skipping each row's excluded item indices.

    Args:
        scores: float array, shape (n_users, n_items); higher is better.
        exclude: n_users arrays of item indices in [0, n_items) to skip (e.g. the user's training items).
        k: list length.

    Returns:
        ``(items, item_scores)``, both shape (n_users, k): item indices (int32) and their scores (float64),
        best first. When a row has fewer than ``k`` eligible items the tail is padded with -1 / -inf.
    """
    n_users, n_items = scores.shape
    items = np.full((n_users, k), -1, dtype=np.int32)
    out_scores = np.full((n_users, k), -np.inf, dtype=np.float64)
    for row in range(n_users):
        row_scores = scores[row].astype(np.float64, copy=True)
        row_scores[np.isnan(row_scores)] = -np.inf  # an undefined score is never recommended
        if len(exclude[row]):
            row_scores[np.asarray(exclude[row], dtype=np.int64)] = -np.inf
        eligible = int((row_scores > -np.inf).sum())
        take = min(k, eligible)
        if take == 0:
            continue
        # Everything scoring at least the take-th best value is a candidate; ties resolved by index.
        threshold = np.partition(row_scores, n_items - take)[n_items - take]
        candidates = np.nonzero(row_scores >= threshold)[0]
        order = np.lexsort((candidates, -row_scores[candidates]))[:take]
        chosen = candidates[order]
        items[row, :take] = chosen
        out_scores[row, :take] = row_scores[chosen]
    return items, out_scores
