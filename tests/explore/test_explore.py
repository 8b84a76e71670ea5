"""zspace explore: the data behind the page on hand-made points, the JSON API on a tiny digits run (TestClient),
the page in headless Chromium (hover shows a thumbnail, a click decodes), and the CLI serving on a free port."""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.decomposition import PCA
from starlette.testclient import TestClient

from zspace.errors import ConfigError
from zspace.explore import Explorer, create_app, open_explorer
from zspace.explore.app import plotly_js
from zspace.explore.data import b64, png_bytes
from zspace.explore.maps import MAP_FILE, METHODS, PARAMS_FILE, MapJob

ROOT = Path(__file__).resolve().parents[2]
ZSPACE = Path(sys.executable).with_name("zspace")


def floats(b64_text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64_text), dtype="<f4")


def png_array(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


# --- the data layer on hand-made points -------------------------------------------------------------------------

# Six points on the three axes, spread 2, 1 and 0.5: mean 0, PC1 = +-e1, PC2 = +-e2, PC3 = +-e3.
AXES = np.array([[2, 0, 0], [-2, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 0.5], [0, 0, -0.5]], dtype=np.float32)


def test_plane_is_the_projection_on_two_components():
    ex = Explorer(AXES)
    np.testing.assert_allclose(np.abs(ex.plane((1, 2))), [[2, 0], [2, 0], [0, 1], [0, 1], [0, 0], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(np.abs(ex.plane((3, 1))), [[0, 2], [0, 2], [0, 0], [0, 0], [0.5, 0], [0.5, 0]],
                               atol=1e-6)  # fmt: skip
    with pytest.raises(ConfigError, match="component 4 does not exist"):
        ex.plane((1, 4))


def test_location_holds_the_other_components_at_the_mean_or_at_a_point():
    points = AXES + np.array([1.0, 2.0, 3.0], dtype=np.float32)  # mean (1, 2, 3)
    ex = Explorer(points)
    z = ex.location((1, 2), 0.7, -0.3)
    coords = (z - ex.mean) @ ex.components.T
    np.testing.assert_allclose(coords, [0.7, -0.3, 0.0], atol=1e-6)
    z = ex.location((1, 2), 0.7, -0.3, base=4)  # point 4 sits at +-0.5 on PC3
    coords = (z - ex.mean) @ ex.components.T
    np.testing.assert_allclose(coords[:2], [0.7, -0.3], atol=1e-6)
    assert abs(coords[2]) == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(abs(z[2] - 3.0), 0.5, atol=1e-6)  # PC3 is the third axis: z keeps point 4's value
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="finite"):
            ex.location((1, 2), bad, 0.0)
    with pytest.raises(ConfigError, match="two different"):
        ex.location((2, 2), 0.0, 0.0)
    with pytest.raises(ConfigError, match="no point 6"):
        ex.location((1, 2), 0.0, 0.0, base=6)


def test_neighbours_come_from_the_training_points_only():
    points = np.stack([np.arange(10.0), np.zeros(10)], axis=1)  # (i, 0)
    train = np.ones(10, dtype=bool)
    train[3] = False  # point 3 is a test item
    ex = Explorer(points, train_mask=train)
    rows, dist = ex.neighbours(np.array([3.2, 0.0]), 3)
    assert rows.tolist() == [4, 2, 5]
    np.testing.assert_allclose(dist, [0.8, 1.2, 1.8], atol=1e-5)
    with pytest.raises(ConfigError, match="k must be"):
        ex.neighbours(np.zeros(2), 0)


def test_colourings_of_labels_and_attributes():
    attributes = np.array([[1, -1], [-1, 0], [0, 1], [1, 1]], dtype=np.int8)
    ex = Explorer(AXES[:4], labels=np.array([2, 0, 1, 2]), label_names=["a", "b", "c"], attributes=attributes,
                  attribute_names=["Smiling", "Male"])  # fmt: skip
    assert ex.colourings() == ["none", "label", "Smiling", "Male"]
    lab = ex.colouring("label")
    assert lab.codes.tolist() == [2, 0, 1, 2]
    assert lab.names == ["a", "b", "c"]
    assert lab.codes.dtype == np.uint8
    male = ex.colouring("Male")  # -1 -> 0 (absent), 1 -> 1 (present), 0 -> 2 (unknown)
    assert male.codes.tolist() == [0, 2, 1, 1]
    assert male.names == ["not Male", "Male", "unknown"]
    assert ex.colouring("none").codes.tolist() == [0, 0, 0, 0]
    with pytest.raises(ConfigError, match="unknown colouring 'Blond'"):
        ex.colouring("Blond")


def test_bad_points_and_settings_are_config_errors():
    with pytest.raises(ConfigError, match="finite"):
        Explorer(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ConfigError, match="labels have 3 rows"):
        Explorer(AXES, labels=np.zeros(3))
    from zspace.explore import ExploreConfig

    with pytest.raises(ConfigError, match="k must be"):
        Explorer(AXES, cfg=ExploreConfig(k=0))


def test_png_enlarges_by_a_whole_factor_and_keeps_pixels():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 3
    out = png_array(png_bytes(image, 60))  # 60 / 8 -> factor 8: 64 x 64
    assert out.shape == (64, 64)
    np.testing.assert_array_equal(out, np.kron(image[:, :, 0], np.ones((8, 8), dtype=np.uint8)))
    rgb = np.zeros((96, 96, 3), dtype=np.uint8)
    assert png_array(png_bytes(rgb, 64)).shape == (96, 96, 3)  # never shrunk


def test_b64_is_little_endian_float32():
    values = np.array([1.5, -2.25, 3e-8], dtype=np.float64)
    np.testing.assert_array_equal(floats(b64(values, "float32")), values.astype(np.float32))


def blobs(n: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [8, 0, 0, 0], [0, 8, 0, 0]], dtype=np.float32)
    return (centres[np.arange(n) % 3] + rng.normal(size=(n, 4))).astype(np.float32)


TSNE = {"preset": "default", "pca_components": None, "seed": 0}


def test_tsne_map_is_cached_and_invalidated_by_other_points(tmp_path):
    points = blobs()
    job = MapJob(points, tmp_path, params=TSNE)
    assert job.status == "absent"
    Y = job.compute()
    assert Y.shape == (60, 2)
    assert job.status == "ready"
    assert (tmp_path / MAP_FILE).is_file()
    assert (tmp_path / PARAMS_FILE).is_file()
    again = MapJob(points, tmp_path, params=TSNE)  # read back, not recomputed
    assert again.status == "ready"
    np.testing.assert_array_equal(again.map, Y)
    assert MapJob(blobs(seed=1), tmp_path, params=TSNE).status == "absent"
    assert MapJob(points, tmp_path, params={**TSNE, "preset": "series"}).status == "absent"


def test_a_users_file_at_the_maps_name_in_a_zspace_folder_is_kept(tmp_path):
    """In a folder a zspace manifest accounts for (a latents folder), a user's file at explore-tsne.npy is never
    replaced: the map is served from memory and the file stays byte for byte."""
    from zspace.io import ownership

    ownership.write_manifest(tmp_path, "latents", {})
    (tmp_path / MAP_FILE).write_bytes(b"my own map")
    job = MapJob(blobs(), tmp_path, params=TSNE, isolate=False)
    assert job.status == "absent"  # the user's file is no map of these points
    assert job.compute().shape == (60, 2)
    assert job.status == "ready"
    assert (tmp_path / MAP_FILE).read_bytes() == b"my own map"
    assert MAP_FILE not in ownership.read_manifest(tmp_path)["files"]


def test_tsne_through_the_api_is_202_then_the_map(tmp_path):
    client = TestClient(create_app(Explorer(blobs(), tsne_cache=tmp_path)))
    first = client.get("/api/points?view=tsne")
    assert first.status_code in (200, 202)
    if first.status_code == 202:
        assert first.json() == {"status": "computing", "view": "tsne"}
        assert client.app.state.explorer.tsne.wait(60) == "ready"
    body = client.get("/api/points?view=tsne").json()
    assert body["n"] == 60
    assert len(floats(body["x"])) == 60
    np.testing.assert_array_equal(floats(body["y"]), np.load(tmp_path / MAP_FILE)[:, 1])


def test_a_failed_tsne_map_is_a_503_json(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr("zspace.explore.maps.METHODS", {**METHODS, "tsne": replace(METHODS["tsne"], embed=broken)})
    explorer = Explorer(blobs(), tsne_cache=tmp_path)
    explorer.tsne.isolate = False  # in this process, where the broken method is
    client = TestClient(create_app(explorer))
    client.get("/api/points?view=tsne")
    assert client.app.state.explorer.tsne.wait(30) == "failed"
    response = client.get("/api/points?view=tsne")
    assert response.status_code == 503
    assert response.json() == {"error": "the t-SNE map failed: MemoryError: no room"}
    assert not (tmp_path / MAP_FILE).exists()


# --- the API on a tiny digits run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("explore-runs")
    subprocess.run([str(ZSPACE), "-q", "train", str(ROOT / "configs" / "digits-demo.toml"), "--epochs", "1",
                    "--out-dir", str(out)], check=True, cwd=ROOT, timeout=300)  # fmt: skip
    return out / "digits-demo"


@pytest.fixture(scope="module")
def explorer(digits_run) -> Explorer:
    return open_explorer(digits_run)  # encodes the latents (none yet) on the way


@pytest.fixture(scope="module")
def client(explorer) -> TestClient:
    return TestClient(create_app(explorer))


@pytest.fixture(scope="module")
def digits():
    from zspace.config import DataConfig
    from zspace.data import load_dataset

    return load_dataset(DataConfig(name="digits", test_fraction=0.1))


def test_open_encodes_missing_latents(explorer, digits_run):
    assert (digits_run / "latents" / "all" / "mu.npy").is_file()
    mu = np.load(digits_run / "latents" / "all" / "mu.npy")
    np.testing.assert_array_equal(explorer.points, mu)  # a VAE is shown at its mu


def test_info_and_pca_points_match_an_independent_pca(client, explorer):
    info = client.get("/api/info").json()
    assert info["n"] == 1797
    assert info["z_dim"] == 10
    assert info["n_pcs"] == 10
    assert info["colourings"] == ["none", "label"]
    assert info["default_colouring"] == "label"
    assert info["can_decode"]
    assert info["has_images"]
    assert info["image_shape"] == [8, 8, 1]
    body = client.get("/api/points?view=pca&pcs=1,3").json()
    expected = PCA(n_components=3).fit_transform(explorer.points.astype(np.float64))[:, [0, 2]]
    got = np.stack([floats(body["x"]), floats(body["y"])], axis=1)
    np.testing.assert_allclose(np.abs(got), np.abs(expected), atol=1e-4)
    assert body["labels"][0].startswith("PC1 (")
    assert body["range"][0] == pytest.approx([got[:, 0].min(), got[:, 0].max()])


def test_colours_are_the_digit_labels(client, digits):
    body = client.get("/api/colours?by=label").json()
    codes = np.frombuffer(base64.b64decode(body["codes"]), dtype=np.uint8)
    np.testing.assert_array_equal(codes, digits.labels)
    assert body["names"] == [str(i) for i in range(10)]


def test_thumbnail_is_the_dataset_image(client, digits):
    response = client.get("/api/thumb/17.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(png_array(response.content), np.kron(digits.x[17, :, :, 0], np.ones((8, 8))))
    assert png_array(client.get("/api/thumb/17.png?size=16").content).shape == (16, 16)


def test_decode_is_the_decoder_at_that_location_with_its_nearest_training_images(client, explorer, digits):
    body = client.get("/api/decode?pcs=1,2&x=0.25&y=-0.5&k=5").json()
    z = explorer.mean + 0.25 * explorer.components[0] - 0.5 * explorer.components[1]
    with torch.no_grad():
        x_hat = explorer.model.decode(torch.from_numpy(z[None]))[0, 0].numpy()
    expected = np.clip(np.rint(x_hat * 255), 0, 255).astype(np.uint8)
    image = png_array(base64.b64decode(body["image"].split(",", 1)[1]))
    np.testing.assert_array_equal(image, np.kron(expected, np.ones((8, 8), dtype=np.uint8)))
    assert body["z_norm"] == pytest.approx(float(np.linalg.norm(z)), rel=1e-5)
    train = np.flatnonzero(~digits.test_mask)
    d = np.linalg.norm(explorer.points[train] - z, axis=1)
    assert body["neighbours"] == train[np.argsort(d)[:5]].tolist()
    np.testing.assert_allclose(body["distances"], np.sort(d)[:5], rtol=1e-4)
    assert body["labels"] == digits.labels[body["neighbours"]].tolist()


def test_decode_at_a_chosen_point_keeps_its_other_components(client, explorer):
    body = client.get("/api/decode?pcs=2,4&x=0.1&y=0.2&base=42&k=1").json()
    z = explorer.location((2, 4), 0.1, 0.2, base=42)
    coords = (z - explorer.mean) @ explorer.components.T
    own = (explorer.points[42] - explorer.mean) @ explorer.components.T
    np.testing.assert_allclose(coords[[1, 3]], [0.1, 0.2], atol=1e-5)
    np.testing.assert_allclose(np.delete(coords, [1, 3]), np.delete(own, [1, 3]), atol=1e-5)
    assert body["z_norm"] == pytest.approx(float(np.linalg.norm(z)), rel=1e-5)


@pytest.mark.parametrize(
    ("url", "status", "phrase"),
    [
        ("/api/decode?pcs=1,2&x=nan&y=0", 400, "x must be a finite number"),
        ("/api/decode?pcs=1,2&x=0&y=inf", 400, "y must be a finite number"),
        ("/api/decode?pcs=1,2&x=abc&y=0", 400, "x must be a number"),
        ("/api/decode?pcs=1,2&y=0", 400, "missing query parameter 'x'"),
        ("/api/decode?pcs=1,1&x=0&y=0", 400, "two different components"),
        ("/api/decode?pcs=1&x=0&y=0", 400, "pcs must be two component numbers"),
        ("/api/decode?pcs=0,2&x=0&y=0", 400, "component 0 does not exist"),
        ("/api/decode?x=0&y=0&base=99999", 404, "no point 99999"),
        ("/api/decode?x=0&y=0&base=-1", 400, "base must be 'mean' or a point's row"),
        ("/api/decode?x=0&y=0&k=0", 400, "k must be in 1..64"),
        ("/api/decode?x=0&y=0&k=1000", 400, "k must be in 1..64"),
        ("/api/points?view=pca&pcs=1,11", 400, "component 11 does not exist"),
        ("/api/points?view=lda", 400, "unknown view 'lda' (known: pca, tsne, umap)"),
        ("/api/colours?by=Smiling", 400, "unknown colouring 'Smiling'"),
        ("/api/thumb/1797.png", 404, "no point 1797"),
        ("/api/thumb/abc.png", 404, "not found"),
        ("/api/thumb/3.png?size=0", 400, "size must be in 1..512"),
        ("/api/thumb/3.png?size=x", 400, "size must be an integer"),
        ("/nothing/here", 404, "not found: /nothing/here"),
    ],
)
def test_bad_requests_are_4xx_json_never_a_traceback(client, url, status, phrase):
    response = client.get(url)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert phrase in response.json()["error"]
    assert "Traceback" not in response.text
    assert "\n" not in response.json()["error"]


def test_an_unexpected_failure_is_a_500_json(explorer, monkeypatch):
    def broken(z):
        raise RuntimeError("boom")

    monkeypatch.setattr(explorer, "decode", broken)
    response = TestClient(create_app(explorer), raise_server_exceptions=False).get("/api/decode?x=0&y=0")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error: RuntimeError"}


def test_the_page_loads_only_local_scripts(client):
    page = client.get("/").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "static/plotly.min.js" in sources
    assert all(not s.startswith(("http:", "https:", "//")) for s in sources), sources
    served = client.get("/static/plotly.min.js")
    assert served.status_code == 200
    assert served.content == plotly_js().read_bytes()
    assert client.get("/static/explore.js").status_code == 200


@pytest.mark.slow
def test_celeba_points_are_coloured_by_their_attributes(celeba_dir, tmp_path):
    """A tiny CelebA run on the first 300 shared images: attribute codes and thumbnails match the files."""
    subprocess.run([str(ZSPACE), "-q", "train", str(ROOT / "configs" / "celeba-vae.toml"), "--data", str(celeba_dir),
                    "--epochs", "1", "--out-dir", str(tmp_path), "--name", "celeba-tiny", "--set", "data.limit=300",
                    "--set", "data.image_size=32", "--set", "model.filters=[16, 32]", "--set", "model.z_dim=8"],
                   check=True, cwd=ROOT, timeout=300)  # fmt: skip
    explorer = open_explorer(tmp_path / "celeba-tiny")
    client = TestClient(create_app(explorer))
    info = client.get("/api/info").json()
    assert info["n"] == 300
    assert "Smiling" in info["colourings"]
    assert info["default_colouring"] == "5_o_Clock_Shadow"
    lines = (celeba_dir.parent / "list_attr_celeba_first20000.txt").read_text().splitlines()
    names = lines[1].split()
    rows = {ln.split()[0]: [int(v) for v in ln.split()[1:]] for ln in lines[2:302]}
    index = np.load(tmp_path / "celeba-tiny" / "latents" / "all" / "index.npy")
    smiling = np.array([rows[f"{i + 1:06d}.jpg"][names.index("Smiling")] for i in index])  # files in sorted order
    body = client.get("/api/colours?by=Smiling").json()
    codes = np.frombuffer(base64.b64decode(body["codes"]), dtype=np.uint8)
    np.testing.assert_array_equal(codes, (smiling > 0).astype(np.uint8))
    assert body["names"] == ["not Smiling", "Smiling", "unknown"]
    first = int(np.flatnonzero(index == 0)[0])
    thumb = png_array(client.get(f"/api/thumb/{first}.png").content)
    assert thumb.shape == (64, 64, 3)  # 32x32 faces enlarged twice
    image = Image.open(celeba_dir / "000001.jpg").convert("RGB")  # 89 x 109: centre square, resized to 32
    top = (image.height - image.width) // 2
    face = np.asarray(image.crop((0, top, image.width, top + image.width)).resize((32, 32), Image.Resampling.BOX))
    diff = np.abs(thumb[::2, ::2].astype(float) - face).mean()
    assert diff < 12, diff  # the same face, up to resampling (the next faces differ by 60-100)


# --- the page in a browser, and the command line -----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(explorer, serving):
    with serving(explorer) as url:
        yield url


def _offset(driver, plot, px: dict) -> tuple[int, int]:
    """Selenium offsets from the element's centre for a pixel position from its top-left."""
    size = plot.size
    return round(px["x"] - size["width"] / 2), round(px["y"] - size["height"] / 2)


def test_hover_shows_a_thumbnail_and_a_click_decodes(browser, served):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return !!(window.zspaceExplorer || {}).ready;"))
    plot = browser.find_element("id", "plot")
    row = 123
    px = browser.execute_script(f"return window.zspaceExplorer.pointPixel({row});")
    ActionChains(browser).move_to_element_with_offset(plot, *_offset(browser, plot, px)).perform()
    loaded = "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0 && i.src;"
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(loaded, "thumb"))
    hovered = browser.execute_script("return window.zspaceExplorer.state.hovered;")
    src = browser.execute_script("return document.getElementById('thumb').src;")
    assert src.endswith(f"/api/thumb/{hovered}.png")
    assert hovered == row or browser.execute_script(  # another point may sit on the same pixel
        f"const s = window.zspaceExplorer.state; return Math.hypot(s.x[{row}] - s.x[{hovered}], "
        f"s.y[{row}] - s.y[{hovered}]);") < 0.05  # fmt: skip
    # a click on empty space near the plot's corner: decoded there, with k neighbour thumbnails
    corner = browser.execute_script(
        "const a = document.getElementById('plot')._fullLayout.xaxis, b = document.getElementById('plot')."
        "_fullLayout.yaxis; return {x: a._offset + 0.95 * a._length, y: b._offset + 0.05 * b._length};"
    )
    ActionChains(browser).move_to_element_with_offset(plot, *_offset(browser, plot, corner)).click().perform()
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(loaded, "decoded"))
    assert browser.execute_script("return document.getElementById('decoded').src;").startswith("data:image/png")
    clicked = browser.execute_script("return window.zspaceExplorer.state.lastDecode;")
    expect = browser.execute_script(f"return window.zspaceExplorer.dataAt({corner['x']}, {corner['y']});")
    assert clicked["x"] == pytest.approx(expect["x"], abs=0.02)
    assert clicked["y"] == pytest.approx(expect["y"], abs=0.02)
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(
        "const imgs = Array.from(document.querySelectorAll('#neighbours img'));"
        "return imgs.length === 8 && imgs.every(i => i.complete && i.naturalWidth > 0);"))  # fmt: skip
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_cli_serves_on_a_free_port_and_stops_on_ctrl_c(digits_run):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([str(ZSPACE), "explore", str(digits_run), "--port", "0", "--no-browser"], cwd=ROOT,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)  # fmt: skip
    try:
        url, lines, deadline = None, [], time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"zspace explorer: (http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        assert url, f"no URL logged: {lines}"
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200
            assert b"zspace explorer" in r.read()
        with urllib.request.urlopen(url + "api/info", timeout=30) as r:
            assert b'"n":1797' in r.read()
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn shuts down, the command ends as interrupted
        rest = proc.communicate(timeout=30)[1]  # also closes the pipe
    assert proc.returncode == 130, rest
    assert "explorer stopped" in rest


# --- Ctrl-C during a real zspace explore's t-SNE -------------------------------------------------------------------


def test_ctrl_c_during_the_tsne_ends_cleanly_every_time(digits_run, explorer):  # explorer: the latents exist
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for delay in (0.2, 1.0, 2.5):
        proc = subprocess.Popen([str(ZSPACE), "explore", str(digits_run), "--port", "0", "--no-browser", "--tsne"],
                                cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                env=env)  # fmt: skip
        lines: list[str] = []
        pid = None
        try:
            deadline = time.monotonic() + 60
            while pid is None and time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line:
                    break
                lines.append(line)
                found = re.search(r"t-SNE map runs in process (\d+)", line)
                pid = int(found.group(1)) if found else None
                if "t-SNE map read from" in line:
                    pytest.fail("the t-SNE map was cached by an earlier try: nothing to interrupt")
            assert pid, f"no t-SNE process logged: {lines}"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGINT)
            rest = proc.communicate(timeout=30)[1]
        assert proc.returncode == 130, (delay, proc.returncode, rest)
        for crash in ("Abort", "Fatal", "Traceback", "core dumped"):
            assert crash not in rest, rest
        assert "explorer stopped" in rest
        assert not Path(f"/proc/{pid}").exists(), f"the t-SNE process {pid} outlived the explorer"


# --- the UMAP view in a browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_with_umap(explorer, serving):
    explorer.umap.isolate = False  # numba compiles UMAP once per process (the child process is t-SNE's tests')
    assert explorer.umap.start() in ("computing", "ready")
    assert explorer.umap.wait(240) == "ready", explorer.umap.error
    with serving(explorer) as url:
        yield url


def test_the_umap_view_hovers_and_a_click_decodes_the_point(browser, served_with_umap, explorer):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(served_with_umap)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return !!(window.zspaceExplorer || {}).ready;"))
    draws = browser.execute_script("return window.zspaceExplorer.draws;")
    Select(browser.find_element("id", "view")).select_by_value("umap")
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "const e = window.zspaceExplorer; return e.draws > arguments[0] && e.state.labels[0] === 'UMAP 1';",
        draws))  # fmt: skip
    xs = browser.execute_script("return Array.from(window.zspaceExplorer.state.x);")
    np.testing.assert_array_equal(np.asarray(xs, dtype=np.float32), explorer.umap.map[:, 0])
    plot = browser.find_element("id", "plot")
    row = 321
    px = browser.execute_script(f"return window.zspaceExplorer.pointPixel({row});")
    ActionChains(browser).move_to_element_with_offset(plot, *_offset(browser, plot, px)).click().perform()
    loaded = "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0 && i.src;"
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(loaded, "decoded"))
    decoded = browser.execute_script("return window.zspaceExplorer.state.lastDecode;")
    chosen = int(decoded["base"])
    assert browser.execute_script("return window.zspaceExplorer.state.chosen;") == chosen
    gap = np.hypot(*(explorer.umap.map[row] - explorer.umap.map[chosen]))
    assert chosen == row or gap < 0.05, (row, chosen, gap)  # another point may sit on the same pixel
    assert decoded["z_norm"] == pytest.approx(float(np.linalg.norm(explorer.points[chosen])), rel=1e-5)
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(loaded, "thumb"))
    assert browser.execute_script("return document.getElementById('thumb').src;").endswith(f"/api/thumb/{chosen}.png")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["{tmp}/nothing", "--port", "0"], "is not a run folder"),
        (["{run}", "--port", "70000"], "--port must be in 0..65535"),
        (["{run}", "--port", "0", "--k", "0"], "k must be in 1..64"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, digits_run, capsys, args, phrase):
    from zspace.cli.main import main

    args = [a.format(tmp=tmp_path, run=digits_run) for a in args]
    assert main(["-q", "explore", *args, "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zspace: error:")
    assert phrase in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "query",
    [
        "x=1e30&y=0",
        "x=nan&y=0",
        "x=inf&y=0",
        "x=0&y=" + "9" * 5000,
        "x=0&y=0&base=²",
        "x=0&y=0&base=" + "9" * 5000,
        "x=0&y=0&base=-3",
        "x=0&y=0&k=" + "9" * 5000,
        "x=0&y=0&k=-1",
        "x=0&y=0&pcs=1,²",
        "x=٣&y=0",
    ],
)
def test_malformed_numbers_are_a_one_line_4xx_and_one_console_line(client, query, caplog):
    with caplog.at_level("WARNING", logger="zspace.explore.app"):
        response = client.get(f"/api/decode?{query}")
    assert 400 <= response.status_code < 500, (query, response.status_code)
    error = response.json()["error"]
    assert "\n" not in error, error
    assert len(error) < 200, error
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1
    assert "Traceback" not in caplog.text
