"""Attributes against clusters, on constructed cases with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from zspace.analyses.attributes import attribute_purity


def test_purest_attribute_per_cluster_present_or_absent():
    clusters = np.array([0, 0, 0, 1, 1, 1])
    attributes = np.array(
        [
            [1, 1],
            [1, -1],
            [1, 1],
            [-1, -1],
            [-1, 1],
            [-1, -1],
        ]
    )  # A: exactly the cluster; B: 2 of 3 in cluster 0, 1 of 3 in cluster 1 (base 1/2 each)
    p = attribute_purity(clusters, attributes, ["A", "B"])
    by = {c.cluster: c for c in p.clusters}
    assert (by[0].attribute, by[0].share, by[0].base) == ("A", 1.0, 0.5)
    assert (by[1].attribute, by[1].share, by[1].base) == ("not A", 1.0, 0.5)
    assert by[0].size == 3
    np.testing.assert_allclose(p.shares, [[1.0, 2 / 3], [0.0, 1 / 3]])
    np.testing.assert_allclose(p.base, [0.5, 0.5])
    assert p.nmi["A"] == pytest.approx(1.0)  # the clusters decide A
    # B: H(B) = ln 2; H(B | cluster) = h(1/3) = ln 3 - (2/3) ln 2; NMI = 2 I / (H(B) + H(C)) with H(C) = ln 2
    h = np.log(3) - (2 / 3) * np.log(2)
    assert p.nmi["B"] == pytest.approx((np.log(2) - h) / np.log(2))
    m = p.to_metrics()
    assert m["best_attribute"] == "A"
    assert m["mean_excess"] == pytest.approx(0.5)


def test_unknown_values_are_left_out():
    clusters = np.array([0, 0, 1, 1])
    attributes = np.array([[1], [0], [-1], [-1]])  # the second image has no value
    p = attribute_purity(clusters, attributes, ["A"])
    assert p.base[0] == pytest.approx(1 / 3)
    np.testing.assert_allclose(p.shares[:, 0], [1.0, 0.0])
    assert p.clusters[0].cluster == 0  # share 1 against 1/3: the larger departure comes first
    assert p.clusters[0].share == 1.0


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="clusters"):
        attribute_purity(np.zeros(3), np.zeros((4, 2)), ["a", "b"])
    with pytest.raises(ValueError, match="2 attribute columns but 1 names"):
        attribute_purity(np.zeros(4), np.zeros((4, 2)), ["a"])
