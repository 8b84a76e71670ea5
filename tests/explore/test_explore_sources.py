"""zspace explore on what resolve takes besides a run: a latents folder of ``zspace embed --model diffusers:PATH``
(its AutoencoderKL decodes a click in headless Chromium), an ``.npy`` and a Parquet table (points, no decoder),
through the one path the command line and the notebook share."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

from zspace.cli.main import main
from zspace.explore import create_app, open_explorer
from zspace.explore.data import to_uint8

pytest.importorskip("diffusers")

SIZE = 32


def _save_tiny_vae(folder: Path) -> Path:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=2,
                  norm_num_groups=8, sample_size=SIZE).save_pretrained(str(folder),
                                                                       safe_serialization=True)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def faces(celeba_dir, tmp_path_factory) -> Path:
    """Latents of 16 shared CelebA faces encoded by a tiny AutoencoderKL (embed --model)."""
    root = tmp_path_factory.mktemp("explore-sources")
    vae = _save_tiny_vae(root / "vae")
    out = root / "faces"
    assert main(["-q", "embed", "--model", f"diffusers:{vae}", "--data", str(celeba_dir), "--limit", "16",
                 "--image-size", str(SIZE), "--out", str(out)]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def faces_explorer(faces):
    return open_explorer(faces)


def png(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_latents_of_embed_model_decode_with_their_autoencoder(faces_explorer):
    e = faces_explorer
    info = e.info()
    assert info["can_decode"]
    assert info["has_images"]
    assert info["n"] == 16
    assert info["z_dim"] == 2 * 16 * 16
    assert e.model.info["kind"] == "diffusers"
    body = TestClient(create_app(e)).get("/api/decode?pcs=1,2&x=0.5&y=-0.25&k=3").json()
    z = e.location((1, 2), 0.5, -0.25)
    with torch.no_grad():
        expected = to_uint8(e.model.decode(torch.from_numpy(z[None]))[0].permute(1, 2, 0).numpy())
    image = png(body["image"])
    assert image.shape[-1] == 3
    assert image.shape[0] >= SIZE
    np.testing.assert_array_equal(image[:: image.shape[0] // SIZE, :: image.shape[1] // SIZE], expected)
    assert len(body["neighbours"]) == 3


def test_the_points_are_the_latents_mu(faces_explorer, faces):
    np.testing.assert_array_equal(faces_explorer.points, np.load(faces / "mu.npy"))


@pytest.fixture(scope="module")
def served(faces_explorer, serving):
    with serving(faces_explorer) as url:
        yield url


def _offset(plot, px: dict) -> tuple[int, int]:
    size = plot.size
    return round(px["x"] - size["width"] / 2), round(px["y"] - size["height"] / 2)


def test_a_click_decodes_with_the_autoencoder_in_the_browser(browser, served):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return !!(window.zspaceExplorer || {}).ready;"))
    plot = browser.find_element("id", "plot")
    corner = browser.execute_script(
        "const a = document.getElementById('plot')._fullLayout.xaxis, b = document.getElementById('plot')."
        "_fullLayout.yaxis; return {x: a._offset + 0.9 * a._length, y: b._offset + 0.1 * b._length};"
    )
    ActionChains(browser).move_to_element_with_offset(plot, *_offset(plot, corner)).click().perform()
    loaded = "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0 && i.src;"
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(loaded, "decoded"))
    assert browser.execute_script("return document.getElementById('decoded').src;").startswith("data:image/png")
    clicked = browser.execute_script("return window.zspaceExplorer.state.lastDecode;")
    expect = browser.execute_script(f"return window.zspaceExplorer.dataAt({corner['x']}, {corner['y']});")
    assert clicked["x"] == pytest.approx(expect["x"], abs=0.02)
    assert clicked["y"] == pytest.approx(expect["y"], abs=0.02)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


# --- points without a decoder: an .npy, a Parquet table ---------------------------------------------------------

POINTS = np.array([[3, 0, 0], [-3, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 0.2], [0, 0, -0.2]], dtype=np.float32)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _floats(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def test_an_npy_is_explored_without_a_decoder(tmp_path):
    import zspace

    path = tmp_path / "emb.npy"
    np.save(path, POINTS)
    handle = zspace.explore(str(path))  # the notebook's call: the same path as `zspace explore emb.npy`
    try:
        status, info = _get(handle.url + "api/info")
        assert status == 200
        assert info["n"] == 6
        assert not info["can_decode"]
        assert not info["has_images"]
        status, body = _get(handle.url + "api/points?view=pca&pcs=1,2")
        assert status == 200
        assert body["n"] == 6
        x = _floats(body["x"])  # PC1 is the first axis (spread 3): +-3 at rows 0, 1, zero elsewhere
        np.testing.assert_allclose(np.abs(x), [3, 3, 0, 0, 0, 0], atol=1e-5)
        status, body = _get(handle.url + "api/decode?pcs=1,2&x=0&y=0")
        assert status == 400
        assert "nothing to decode" in body["error"]
    finally:
        handle.stop()


def test_a_parquet_table_is_explored_with_its_labels(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from zspace.latents.tables import TableColumns

    path = tmp_path / "emb.parquet"
    table = pa.table({"vec": pa.array(POINTS.tolist(), type=pa.list_(pa.float32())),
                      "kind": ["a", "a", "b", "b", "c", "c"], "score": np.arange(6, dtype=np.float64)})  # fmt: skip
    pq.write_table(table, path)
    e = open_explorer(path, table=TableColumns(labels="kind"))
    assert e.model is None
    assert e.images is None
    client = TestClient(create_app(e))
    body = client.get("/api/points?view=pca&pcs=1,2").json()
    assert body["n"] == 6
    np.testing.assert_allclose(np.abs(_floats(body["x"])), [3, 3, 0, 0, 0, 0], atol=1e-5)
    colours = client.get("/api/colours?by=label").json()
    assert colours["names"] == ["a", "b", "c"]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(colours["codes"]), np.uint8), [0, 0, 1, 1, 2, 2])


def test_cli_explore_errors_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "emb.npy", POINTS)
    for argv, phrase in (
        ([str(tmp_path / "missing.npy")], "is not a run folder, a latents folder, an embeddings file nor a table"),
        ([str(tmp_path / "emb.npy"), "--labels", "kind"], "--column/--labels/--attributes go with a table"),
    ):
        assert main(["-q", "explore", *argv, "--port", "0", "--no-browser"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("zspace: error:"), err
        assert len(err.splitlines()) == 1, err
        assert phrase in err, err
