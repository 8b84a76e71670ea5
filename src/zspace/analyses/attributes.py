"""Binary attributes against clusters: which attributes a cluster of latent points is purest in (CelebA's 40).

The series guessed that CelebA's latent space holds about 40 clusters because CelebA has 40 attributes. This
measures it: cluster the latent points, then for every cluster the attribute whose share in the cluster departs
most from its share in all images (present or absent: "Eyeglasses" at 90 % where 7 % wear them, or "not Male" at
100 % where 42 % are not male), and for every attribute how much the clustering tells about it (normalised mutual
information between the attribute and the cluster labels; 0 = nothing, 1 = the clusters decide it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class ClusterAttribute:
    """The purest attribute of one cluster."""

    cluster: int
    size: int
    attribute: str  # "Smiling" or "not Smiling"
    share: float  # share of the cluster's images with that value (known values only)
    base: float  # the same share over all images

    @property
    def excess(self) -> float:
        return self.share - self.base


@dataclass
class AttributePurity:
    clusters: list[ClusterAttribute]  # one per non-empty cluster, the purest first
    nmi: dict[str, float]  # attribute -> normalised mutual information with the cluster labels
    shares: np.ndarray  # (k, A) share of attribute present per cluster (NaN: no known value)
    base: np.ndarray  # (A,) share present over all images

    def to_metrics(self, rows: int = 12) -> dict:
        ranked = sorted(self.nmi.items(), key=lambda kv: -kv[1])
        return {
            "n_clusters": len(self.clusters),
            "clusters": [
                {"cluster": c.cluster, "size": c.size, "attribute": c.attribute, "share": c.share, "base": c.base}
                for c in self.clusters[:rows]
            ],
            "nmi": dict(ranked),
            "best_attribute": ranked[0][0] if ranked else None,
            "mean_excess": float(np.mean([abs(c.excess) for c in self.clusters])) if self.clusters else None,
        }


def attribute_purity(clusters: np.ndarray, attributes: np.ndarray, names: Sequence[str]) -> AttributePurity:
    """Purest attribute per cluster and the NMI of every attribute with the clusters.

    Parameters
    ----------
    clusters : (n,) int cluster label of every point.
    attributes : (n, A) values in {-1, 1} (CelebA's file), 0 where unknown; unknown values are left out.
    names : the A attribute names.
    """
    from sklearn.metrics import normalized_mutual_info_score

    clusters = np.asarray(clusters)
    attributes = np.asarray(attributes)
    if clusters.ndim != 1 or attributes.ndim != 2 or len(clusters) != len(attributes):
        raise ValueError(f"clusters (n,) and attributes (n, A) needed, got {clusters.shape} and {attributes.shape}")
    if attributes.shape[1] != len(names):
        raise ValueError(f"{attributes.shape[1]} attribute columns but {len(names)} names")
    present, known = attributes > 0, attributes != 0
    base = present.sum(0) / np.maximum(known.sum(0), 1)
    ids = np.unique(clusters)
    shares = np.full((len(ids), attributes.shape[1]), np.nan)
    result = []
    for i, c in enumerate(ids):
        rows = clusters == c
        k = known[rows].sum(0)
        shares[i] = np.where(k > 0, present[rows].sum(0) / np.maximum(k, 1), np.nan)
        excess = np.nan_to_num(shares[i] - base, nan=0.0)
        a = int(np.argmax(np.abs(excess)))
        positive = excess[a] >= 0
        share = float(shares[i, a]) if positive else float(1 - shares[i, a])
        result.append(
            ClusterAttribute(
                int(c),
                int(rows.sum()),
                names[a] if positive else f"not {names[a]}",
                share,
                float(base[a] if positive else 1 - base[a]),
            )
        )
    result.sort(key=lambda c: -abs(c.excess))
    nmi = {}
    for a, name in enumerate(names):
        rows = known[:, a]
        nmi[name] = float(normalized_mutual_info_score(present[rows, a], clusters[rows])) if rows.any() else 0.0
    return AttributePurity(result, nmi, shares, base)
