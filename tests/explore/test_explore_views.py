"""The explorer's views beyond the PCA plane and beyond what a browser draws: the UMAP map (computed in a child
process like the t-SNE map), nearest-point lookup and the density layer on hand-made layouts, a map's child process
stopped or killed. (Ctrl-C during a real ``zspace explore``'s t-SNE and the UMAP view in headless Chromium are in
test_explore.py, on its digits run.)"""

from __future__ import annotations

import base64
import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from zspace.errors import ConfigError
from zspace.explore import ExploreConfig, Explorer, create_app
from zspace.explore.data import density
from zspace.explore.maps import MapJob, _read_exactly, cache_files


def blobs(n: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [8, 0, 0, 0], [0, 8, 0, 0]], dtype=np.float32)
    return (centres[np.arange(n) % 3] + rng.normal(size=(n, 4))).astype(np.float32)


def floats(b64_text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64_text), dtype="<f4")


def uint32s(b64_text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64_text), dtype="<u4")


# --- nearest point and density on hand-made layouts ------------------------------------------------------------

PLANE = np.array([[0, 0], [1, 0], [0, 1], [5, 5], [5, 5.5]], dtype=np.float32)


def test_nearest_point_on_a_hand_made_plane():
    ex = Explorer(np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32))
    row, dist = ex.nearest("umap", PLANE, (1, 2), 0.9, 0.2)
    assert row == 1
    assert dist == pytest.approx(np.hypot(0.1, 0.2))
    assert ex.nearest("umap", PLANE, (1, 2), 5.0, 5.3)[0] == 4
    ex.umap.map = PLANE  # a map that is "ready": the endpoint answers on it
    body = TestClient(create_app(ex)).get("/api/nearest?view=umap&x=4.9&y=4.8").json()
    assert body == {"view": "umap", "row": 3, "x": 5.0, "y": 5.0, "distance": pytest.approx(np.hypot(0.1, 0.2))}


def test_density_counts_a_hand_made_layout():
    xy = np.array([[0, 0], [1, 1], [1, 0], [0.5, 0.5], [0.25, 0.75], [2, 0]], dtype=np.float32)  # the last outside
    counts = density(xy, (0, 1, 0, 1), (2, 2))
    np.testing.assert_array_equal(counts, [[1, 1], [1, 2]])  # row 0 is y in [0, 0.5); edges count in the last bin
    assert counts.sum() == 5
    assert density(xy, (0, 2, 0, 1), (4, 3)).sum() == len(xy)


def test_a_large_view_is_a_subsample_over_a_density_of_every_point():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(3000, 2)).astype(np.float32) * [3, 1]
    ex = Explorer(points, cfg=ExploreConfig(max_drawn=1000, density_bins=32))
    client = TestClient(create_app(ex))
    body = client.get("/api/points?view=pca&pcs=1,2").json()
    rows, xy = uint32s(body["rows"]), ex.plane((1, 2))
    assert body["sampled"]
    assert body["n"] == 1000
    assert body["n_total"] == 3000
    assert len(np.unique(rows)) == 1000
    np.testing.assert_array_equal(floats(body["x"]), xy[rows, 0])
    d = body["density"]
    counts = uint32s(d["counts"]).reshape(d["bins"][1], d["bins"][0])
    assert counts.sum() == d["total"] == 3000
    assert d["bins"][0] == 32  # PC1 has the longer side
    # zoomed in: the points of that region only, their count, and a density of the region
    box = (-1.0, 1.0, -0.5, 0.5)
    inside = (xy[:, 0] >= -1) & (xy[:, 0] <= 1) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= 0.5)
    zoom = client.get("/api/points?view=pca&pcs=1,2&x0=-1&x1=1&y0=-0.5&y1=0.5").json()
    assert zoom["n_inside"] == inside.sum()
    assert set(uint32s(zoom["rows"]).tolist()) <= set(np.flatnonzero(inside).tolist())
    if zoom["density"] is not None:
        assert uint32s(zoom["density"]["counts"]).sum() == inside.sum()
    # every point is reachable: the nearest lookup finds a point that is not drawn
    hidden = int(np.setdiff1d(np.arange(3000), rows)[0])
    x, y = (float(v) for v in xy[hidden])
    assert client.get(f"/api/nearest?view=pca&pcs=1,2&x={x!r}&y={y!r}").json()["row"] == hidden
    assert client.get("/api/density?view=pca&bins=8").json()["total"] == 3000
    assert client.get(f"/api/points?view=pca&x0={box[1]}&x1={box[0]}&y0=0&y1=1").status_code == 400
    assert client.get("/api/points?view=pca&x0=0").status_code == 400
    assert client.get("/api/points?view=bogus").status_code == 400
    with pytest.raises(ConfigError, match="max_drawn"):
        Explorer(points, cfg=ExploreConfig(max_drawn=5))


@pytest.fixture(scope="module")
def small_client() -> TestClient:
    return TestClient(create_app(Explorer(np.random.default_rng(0).normal(size=(3000, 4)).astype(np.float32))))


@pytest.mark.parametrize(
    ("url", "status", "phrase"),
    [
        ("/api/nearest?view=pca&x=0", 400, "missing query parameter 'y'"),
        ("/api/nearest?view=pca&x=1e30&y=0", 400, "x must be a finite number within"),
        ("/api/nearest?view=pca&x=nan&y=0", 400, "x must be a finite number"),
        ("/api/nearest?view=../etc&x=0&y=0", 400, "unknown view '../etc'"),
        ("/api/nearest?view=pca&pcs=1,9&x=0&y=0", 400, "component 9 does not exist"),
        ("/api/density?view=pca&bins=0", 400, "bins must be in 1..1024"),
        ("/api/density?view=pca&bins=" + "9" * 5000, 400, "bins must be an integer"),
        ("/api/density?view=pca&bins=2000", 400, "bins must be in 1..1024"),
        ("/api/density?view=pca&x0=1&x1=1&y0=0&y1=1", 400, "x0 < x1"),
        ("/api/points?view=pca&x0=0&x1=1&y0=0", 400, "needs all of x0, x1, y0, y1"),
        ("/api/points?view=pca&x0=-inf&x1=1&y0=0&y1=1", 400, "x0 must be a finite number"),
        ("/api/points?view=pca&x0=٣&x1=1&y0=0&y1=1", 400, "x0 must be a number"),
        ("/api/decode?base=" + "9" * 13, 400, "base must be 'mean' or a point's row number"),
        ("/api/decode?base=3000", 404, "no point 3000"),
    ],
)
def test_hostile_view_requests_are_one_line_4xx(small_client, url, status, phrase):
    response = small_client.get(url)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert phrase in error
    assert "\n" not in error
    assert len(error) < 200


# --- maps in child processes ---------------------------------------------------------------------------------------


def test_umap_view_returns_n_points_deterministic_for_a_seed(tmp_path):
    from zspace.analyses.umap import umap_embed

    points = blobs()
    explorer = Explorer(points, tsne_cache=tmp_path)
    explorer.umap.isolate = False  # numba compiles UMAP once per process: here, and the check below reuses it
    client = TestClient(create_app(explorer))
    first = client.get("/api/points?view=umap")
    if first.status_code == 202:
        assert first.json() == {"status": "computing", "view": "umap"}
        assert explorer.umap.wait(240) == "ready", explorer.umap.error
    body = client.get("/api/points?view=umap").json()
    assert body["n"] == 60
    assert body["labels"] == ["UMAP 1", "UMAP 2"]
    Y = np.stack([floats(body["x"]), floats(body["y"])], axis=1)
    assert Y.shape == (60, 2)
    assert np.isfinite(Y).all()
    np.testing.assert_array_equal(Y, umap_embed(points, n_neighbors=15, min_dist=0.1, random_state=0))
    np.testing.assert_array_equal(np.load(tmp_path / cache_files("umap")[0]), Y)  # cached beside the t-SNE's
    assert Explorer(points, tsne_cache=tmp_path).umap.status == "ready"  # read back
    assert Explorer(points, tsne_cache=tmp_path, cfg=ExploreConfig(seed=1)).umap.status == "absent"


def _child_pid(job: MapJob, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while job._proc is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job._proc is not None, "no child process started"
    return job._proc.pid


class _Trickle(io.RawIOBase):
    """A pipe that hands out at most 5 bytes per read, as a pipe may."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(5, len(b), len(self.data) - self.pos)
        b[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def test_the_map_child_reads_its_points_in_place_across_short_reads():
    points = np.arange(12, dtype="<f4").reshape(4, 3) / 7
    out = np.zeros((4, 3), dtype="<f4")
    assert _read_exactly(_Trickle(points.tobytes()), out) is out  # filled in place, no second copy
    np.testing.assert_array_equal(out, points)
    with pytest.raises(EOFError, match="after 20 of 48 bytes"):
        _read_exactly(_Trickle(points.tobytes()[:20]), np.zeros((4, 3), dtype="<f4"))


def test_a_stopped_map_leaves_no_process_and_no_cache(tmp_path):
    job = MapJob(blobs(2000), tmp_path, params={"preset": "default", "pca_components": None, "seed": 0})
    assert job.start() == "computing"
    pid = _child_pid(job)
    job.close()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert job.wait(10) == "absent"
    assert job.error is None
    assert job.start() == "absent"  # a closed job starts nothing
    assert not (tmp_path / cache_files("tsne")[0]).exists()


def test_a_killed_map_process_is_a_failed_map(tmp_path):
    job = MapJob(blobs(2000), tmp_path, params={"preset": "default", "pca_components": None, "seed": 0})
    job.start()
    os.kill(_child_pid(job), signal.SIGKILL)
    assert job.wait(30) == "failed"
    assert "t-SNE process ended with signal 9" in job.error


# --- a view past max_drawn in a browser ------------------------------------------------------------------------------


@pytest.fixture
def served_large(serving):

    rng = np.random.default_rng(0)
    points = (rng.normal(size=(20_000, 6)) * [3, 1, 1, 1, 1, 1]).astype(np.float32)
    explorer = Explorer(points, labels=rng.integers(0, 5, 20_000), cfg=ExploreConfig(max_drawn=1000, density_bins=32))
    with serving(explorer) as url:
        yield url, explorer


def test_a_large_view_draws_a_density_and_hover_finds_points_not_drawn(browser, served_large):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    url, explorer = served_large
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return !!(window.zspaceExplorer || {}).ready;"))
    assert browser.execute_script("return document.getElementById('plot').data.map(t => t.type);") == [
        "heatmap",
        "scattergl" if browser.execute_script("return window.zspaceExplorer.webgl;") else "scatter",
    ]
    state = "window.zspaceExplorer.state"
    assert browser.execute_script(f"return {state}.x.length;") == 1000
    drawn = set(browser.execute_script(f"return Array.from({state}.rows);"))
    xy = explorer.plane((1, 2))
    hidden = next(r for r in np.argsort(np.abs(xy[:, 0]) + np.abs(xy[:, 1])) if int(r) not in drawn)  # a central one
    plot = browser.find_element("id", "plot")
    px = browser.execute_script(
        f"return window.zspaceExplorer.pixelOf({float(xy[hidden, 0])}, {float(xy[hidden, 1])});"
    )
    size = plot.size
    ActionChains(browser).move_to_element_with_offset(
        plot, round(px["x"] - size["width"] / 2), round(px["y"] - size["height"] / 2)
    ).perform()
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(f"return {state}.hovered;") is not None)
    hovered = browser.execute_script(f"return {state}.hovered;")
    at = browser.execute_script(f"return window.zspaceExplorer.dataAt({px['x']}, {px['y']});")
    assert hovered == explorer.nearest("pca", xy, (1, 2), at["x"], at["y"])[0]  # the nearest of all points
    # zoomed in: the region's points, none outside it
    draws = browser.execute_script("return window.zspaceExplorer.draws;")
    browser.execute_script("Plotly.relayout('plot', {'xaxis.range': [-1, 1], 'yaxis.range': [-0.5, 0.5]});")
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(f"return {state}.box !== null;"))
    WebDriverWait(browser, 20).until(lambda d: d.execute_script("return window.zspaceExplorer.draws;") > draws)
    rows = np.asarray(browser.execute_script(f"return Array.from({state}.rows);"), dtype=np.int64)
    inside = (np.abs(xy[:, 0]) <= 1) & (np.abs(xy[:, 1]) <= 0.5)
    assert set(rows.tolist()) <= set(np.flatnonzero(inside).tolist())
    assert len(rows) == min(1000, inside.sum())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
