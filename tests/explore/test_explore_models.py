"""The explorer with models trained elsewhere: ``zspace.explore(latents, model=...)`` from Python with a wrapped
torch module and with an in-memory pythae VAE, on latents embedded from the shared CelebA images. A point's own
decode is the model's image of its latent (checked pixel for pixel), and in headless Chromium a click on the plane
decodes through the model."""

from __future__ import annotations

import base64
import io
import json
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import zspace
from zspace.config import DataConfig
from zspace.data import load_dataset
from zspace.latents.embedding import embed
from zspace.models.protocol import as_model

IMG = 16


def wrapped_conv():
    torch.manual_seed(1)
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 6))
    decoder = nn.Sequential(nn.Linear(6, 3 * IMG * IMG), nn.Unflatten(1, (3, IMG, IMG)))
    return zspace.wrap(encoder=encoder, decoder=decoder, image_size=IMG, channels=3, output="logits")


def pythae_vae():
    models = pytest.importorskip("pythae.models")
    torch.manual_seed(1)
    return models.VAE(models.VAEConfig(input_dim=(3, IMG, IMG), latent_dim=4))


@pytest.fixture(scope="module")
def celeba16(celeba_dir):
    return load_dataset(DataConfig(name="celeba", path=str(celeba_dir), image_size=IMG, limit=40))


def png_of_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


@pytest.mark.parametrize("make", [wrapped_conv, pythae_vae], ids=["wrap", "pythae"])
def test_the_explorer_decodes_a_click_with_a_foreign_model(make, celeba16, tmp_path, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    model = make()
    lat = embed(model, celeba16, tmp_path / "latents", batch_size=20)
    handle = zspace.explore(lat.path, model=model)
    try:
        # a point's own location decodes to the model's image of its latent (mu for a VAE), pixel for pixel
        with urllib.request.urlopen(handle.url + "api/decode?pcs=1,2&base=7&k=3", timeout=30) as r:
            body = json.loads(r.read())
        assert body["image_shape"] == [IMG, IMG, 3]
        png = png_of_data_url(body["image"])
        factor = png.shape[0] // IMG
        points = lat.mu if lat.mu is not None else lat.z
        with torch.no_grad():
            expected = as_model(model).decode(torch.from_numpy(np.array(points[7:8])))[0].permute(1, 2, 0).numpy()
        want = np.rint(expected * 255).astype(int)
        assert np.abs(png[::factor, ::factor].astype(int) - want).max() <= 1
        assert body["z_norm"] == pytest.approx(float(np.linalg.norm(points[7])), rel=1e-4)

        browser.get(handle.url)
        WebDriverWait(browser, 60).until(lambda d: d.execute_script("return !!(window.zspaceExplorer || {}).ready;"))
        plot = browser.find_element("id", "plot")
        corner = browser.execute_script(
            "const a = document.getElementById('plot')._fullLayout.xaxis, b = document.getElementById('plot')."
            "_fullLayout.yaxis; return {x: a._offset + 0.9 * a._length, y: b._offset + 0.1 * b._length};"
        )
        size = plot.size
        offset = round(corner["x"] - size["width"] / 2), round(corner["y"] - size["height"] / 2)
        ActionChains(browser).move_to_element_with_offset(plot, *offset).click().perform()
        loaded = "const i = document.getElementById('decoded'); return i.complete && i.naturalWidth > 0 && i.src;"
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(loaded))
        src = browser.execute_script("return document.getElementById('decoded').src;")
        shown = png_of_data_url(src)
        assert shown.shape[0] % IMG == 0
        assert shown.shape[2] == 3
        clicked = browser.execute_script("return window.zspaceExplorer.state.lastDecode;")
        expect = browser.execute_script(f"return window.zspaceExplorer.dataAt({corner['x']}, {corner['y']});")
        assert clicked["x"] == pytest.approx(expect["x"], abs=0.05)
        assert clicked["y"] == pytest.approx(expect["y"], abs=0.05)
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        handle.stop()
