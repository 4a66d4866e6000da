"""Synthetic user x item confidence matrices drawn from the clickstream generator's world model.

:func:`tools.datagen.clickstream.build_world` fixes who is active (log-normal activity), which taste
group each user belongs to and each group's slice of items (Zipf popularity). Here events are drawn from
that world as (user, item) pairs only, without writing JSON lines: each event is in the user's group
with probability ``in_group_prob``, else from the global Zipf law. A pair's confidence is its number of
events (every event weighs 1, as views do in build_features). So the matrices carry the same kind of
signal as the pipeline's synthetic data, at sizes (1M, 10M non-zeros) the text path would take too long
to produce.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix

from benchmarks.split import stratified_split_mask
from tools.datagen.clickstream import build_world

CHUNK = 2_000_000  # events drawn per numpy batch (bounds memory: ~100 MB per batch)


@dataclass(frozen=True)
class MatrixSpec:
    """Parameters of one synthetic matrix; ``events`` draws give somewhat fewer non-zeros (repeats)."""

    name: str
    users: int
    items: int
    events: int
    groups: int = 20
    in_group_prob: float = 0.85
    zipf: float = 0.9
    seed: int = 42

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


def synthetic_matrix(spec: MatrixSpec) -> csr_matrix:
    """The (users x items) float32 CSR matrix of event counts for ``spec`` (deterministic per spec)."""
    world = build_world(spec.seed, spec.users, spec.items, spec.groups, spec.zipf)
    rng = np.random.default_rng([spec.seed, 7])
    parts = []
    remaining = spec.events
    while remaining > 0:
        n = min(CHUNK, remaining)
        remaining -= n
        user = np.searchsorted(world.user_cdf, rng.random(n), side="right")
        item = world.rank_item[np.searchsorted(world.global_cdf, rng.random(n), side="right")]
        in_group = rng.random(n) < spec.in_group_prob
        pick = rng.random(n)
        group = world.user_group[user]
        for g, (members, cdf) in enumerate(zip(world.slice_items, world.slice_cdf)):
            mask = in_group & (group == g)
            item[mask] = members[np.searchsorted(cdf, pick[mask], side="right")]
        parts.append(
            coo_matrix(
                (np.ones(n, dtype=np.float32), (user.astype(np.int32), item.astype(np.int32))),
                shape=(spec.users, spec.items),
            ).tocsr()
        )
    matrix = parts[0]
    for part in parts[1:]:
        matrix = matrix + part
    matrix.sum_duplicates()
    return matrix.astype(np.float32)


def split_matrix(matrix: csr_matrix, train_ratio: float, seed: int) -> tuple:
    """``(train, test)`` CSR matrices of the same shape: each user's entries split at random with
    :func:`benchmarks.split.stratified_split_mask` (``floor(train_ratio * n)`` kept for training)."""
    coo = matrix.tocoo()
    train = stratified_split_mask(coo.row, train_ratio, seed)

    def build(mask: np.ndarray) -> csr_matrix:
        return coo_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=matrix.shape).tocsr()

    return build(train), build(~train)
