"""The offline sample-quality measure: FID and precision/recall/density/coverage on constructed cases, and the
feature network zspace trains itself (on the bundled digits), cached so that it trains once."""

from __future__ import annotations

import numpy as np
import pytest

from zspace.errors import DataError
from zspace.latents.feature_net import FeatureConfig, data_features, default_folder, extract, feature_network
from zspace.latents.quality import fid, frechet_distance, prdc, score


def test_frechet_distance_by_hand():
    # diagonal: |(3, 4)|^2 + (1 + 4 + 9 + 1) - 2 (sqrt(1 * 9) + sqrt(4 * 1)) = 25 + 15 - 10
    assert frechet_distance([0, 0], np.diag([1.0, 4.0]), [3, 4], np.diag([9.0, 1.0])) == pytest.approx(30.0)
    # C1 = 4 I and a rotated C2 = R diag(9, 1) R^T: Tr (C1 C2)^(1/2) = 2 (3 + 1); |(1, 1)|^2 + 8 + 10 - 16 = 4
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s], [s, c]])
    c2 = rot @ np.diag([9.0, 1.0]) @ rot.T
    assert frechet_distance([0, 0], 4 * np.eye(2), [1, 1], c2) == pytest.approx(4.0)
    assert frechet_distance([1, 2], c2, [1, 2], c2) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(DataError, match="mismatched"):
        frechet_distance([0, 0], np.eye(2), [0, 0, 0], np.eye(3))


def test_fid_of_samples_matches_the_two_gaussians():
    rng = np.random.default_rng(0)
    a = rng.multivariate_normal([0, 0], np.diag([1.0, 4.0]), size=40_000)
    b = rng.multivariate_normal([3, 4], np.diag([9.0, 1.0]), size=40_000)
    assert fid(a, b) == pytest.approx(30.0, rel=0.02)


def test_identical_sets_score_perfect():
    x = np.random.default_rng(1).standard_normal((400, 8))
    q = score(x, x.copy())
    assert q.fid == pytest.approx(0.0, abs=1e-8)
    assert (q.precision, q.recall, q.coverage) == (1.0, 1.0, 1.0)
    assert 0.8 < q.density < 1.5
    assert (q.n_real, q.n_fake, q.k) == (400, 400, 5)


def test_disjoint_sets_score_zero():
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((300, 10)), 100 + rng.standard_normal((200, 10))
    q = score(real, fake)
    assert q.fid == pytest.approx(100**2 * 10, rel=0.02)
    assert (q.precision, q.recall, q.density, q.coverage) == (0.0, 0.0, 0.0, 0.0)


def test_prdc_by_hand():
    real = np.arange(6.0)[:, None]  # 0..5: each real point's nearest other real point is 1 away
    fake = np.array([[0.5], [10.0]])  # nearest other fake point: 9.5 away
    # precision: 0.5 lies in the balls of 0 and 1, 10 in none -> 1/2; density: (2 + 0) / (k = 1 * 2 fakes) = 1;
    # coverage: only reals 0 and 1 have a fake within 1 -> 2/6; recall: every real is within 9.5 of 0.5 -> 1.
    assert prdc(real, fake, k=1) == pytest.approx({"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 1 / 3})


def test_bad_feature_sets():
    with pytest.raises(DataError, match=r"got \[3\]"):
        fid(np.zeros(3), np.zeros((3, 2)))
    with pytest.raises(DataError, match="differ in width"):
        score(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(DataError, match=r"n >= 6"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)))
    with pytest.raises(DataError, match="NaN"):
        fid(np.full((4, 2), np.nan), np.zeros((4, 2)))


@pytest.fixture(scope="module")
def digits():
    from zspace.config import DataConfig
    from zspace.data import load_dataset

    return load_dataset(DataConfig(name="digits"))


def test_feature_net_trains_once_and_separates_digits_from_noise(digits, tmp_path, caplog):
    cfg = FeatureConfig(epochs=3)
    folder = tmp_path / "features"
    net = feature_network(digits, cfg=cfg, folder=folder)
    assert (folder / "model.safetensors").is_file()
    assert net.info["target"] == "10 class labels"
    assert net.info["test_accuracy"] > 0.7  # chance: 0.1
    assert "10 class labels" in net.describe()
    with caplog.at_level("INFO", logger="zspace.latents.feature_net"):
        again = feature_network(digits, cfg=cfg, folder=folder)
    assert "reusing" in caplog.text
    x = np.asarray(digits.x[:50])
    np.testing.assert_allclose(extract(again, x), extract(net, x), rtol=1e-5, atol=1e-6)
    assert extract(net, x).shape == (50, net.width)
    assert default_folder(digits, cfg) != default_folder(digits, FeatureConfig(epochs=4))

    test = data_features(net, digits, "test", 1000)
    train = data_features(net, digits, "train", 500, seed=1)
    noise = np.random.default_rng(0).integers(0, 256, size=(500, 8, 8, 1), dtype=np.uint8)
    data_vs_data, data_vs_noise = score(test, train), score(test, extract(net, noise))
    assert data_vs_data.fid < 0.2 * data_vs_noise.fid
    assert data_vs_data.precision > 0.8 > 0.5 > data_vs_noise.precision  # precision is outlier-prone (Naeem 2020)
    assert data_vs_data.density > 0.8 > 0.2 > data_vs_noise.density
    assert data_vs_data.recall > 0.8 > 0.2 > data_vs_noise.recall
    assert data_vs_data.coverage > 0.8 > 0.3 > data_vs_noise.coverage
