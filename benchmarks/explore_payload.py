"""The explorer with 100,000 (and 1,000,000) synthetic latent points: payload sizes and server times, and
(``--browser``) the page.

Server: an :class:`~zspace.explore.Explorer` over ``--n`` points of dimension ``--z-dim`` (a Gaussian mixture), a
randomly initialised CelebA-size decoder (96x96x3) and a pool of random images; every request goes through the real
ASGI app (Starlette's TestClient, in process: routing, validation, JSON encoding; no network). The baseline in the
same run is the obvious encoding of the same coordinates, plain JSON lists of floats, as a plotly figure would carry
them (``/api/points`` sends base64 little-endian float32 instead).

Browser (``--browser``, needs Debian's chromium + chromedriver): the app served by uvicorn on 127.0.0.1, opened in
headless Chromium; the time from navigation to the drawn scatter, and inside the page the time of one
``Plotly.react`` of the drawn points and of one hover lookup (``Plotly.Fx.hover`` at a pixel), and the round trip
of one ``api/nearest`` request from the page (what a mouse move costs on a view past ``max_drawn`` points, where
the page draws a subsample over a density layer and asks the server for the nearest of all points), medians.

``--n`` takes several sizes (``--n 100000,1000000``): each is measured in the same run, the first is the baseline.

    python benchmarks/explore_payload.py [--n 100000[,1000000]] [--z-dim 256] [--repeat 5] [--browser]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time

import numpy as np
import torch
from starlette.testclient import TestClient

from zspace.config import ModelConfig
from zspace.explore import ExploreConfig, Explorer, create_app
from zspace.explore.server import bind, make_server, url_of
from zspace.models import build_model


class ImagePool:
    """``n`` rows served from a few random (96, 96, 3) images (the real thing is a memory-mapped cache)."""

    def __init__(self, n: int, pool: int = 64, seed: int = 0):
        self.pool = np.random.default_rng(seed).integers(0, 256, size=(pool, 96, 96, 3), dtype=np.uint8)
        self.shape = (n, 96, 96, 3)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        return self.pool[i % len(self.pool)]


def synthetic(n: int, z_dim: int, seed: int = 0, max_drawn: int = ExploreConfig.max_drawn) -> Explorer:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(40, z_dim)).astype(np.float32)
    labels = rng.integers(0, 40, size=n)
    points = rng.standard_normal(size=(n, z_dim), dtype=np.float32)  # float32 throughout: 1 GB at 1M x 256
    points += centres[labels]
    attributes = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, 3))
    torch.manual_seed(seed)
    model = build_model(ModelConfig(z_dim=z_dim, image_size=96, channels=3)).eval()
    return Explorer(points, model=model, images=ImagePool(n), labels=labels, attributes=attributes,
                    attribute_names=["Smiling", "Male", "Young"], train_mask=rng.random(n) > 0.1,
                    cfg=ExploreConfig(max_drawn=max_drawn))  # fmt: skip


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds of ``repeat`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def server_numbers(explorer: Explorer, repeat: int) -> list[tuple[str, float, int]]:
    """(what, median ms, bytes) per request, with the plain-JSON baseline first; the first (cold) request of the
    PCA plane and of a nearest point (the plane's projection, its KD-tree) as "prep"."""
    client = TestClient(create_app(explorer))
    rows = []
    n = len(explorer.points)
    for what, url in (
        ("prep: first /api/points PC1-PC2 (projection)", "/api/points?view=pca&pcs=1,2"),
        ("prep: first /api/nearest (KD-tree of the plane)", "/api/nearest?view=pca&pcs=1,2&x=0.5&y=-1"),
    ):
        t0 = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:200])
        rows.append((what, (time.perf_counter() - t0) * 1e3, len(response.content)))

    def baseline():
        xy = explorer.view("pca", (1, 2))[0]  # the projection kept, as /api/points keeps it
        return json.dumps({"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist()}).encode()

    sec, body = timed(baseline, repeat)
    rows.append(("baseline: PC1-PC2 as plain JSON float lists", sec * 1e3, len(body)))
    for what, url in (
        ("/api/points PC1-PC2 (base64 float32)", "/api/points?view=pca&pcs=1,2"),
        ("/api/points PC8-PC35", "/api/points?view=pca&pcs=8,35"),
        ("/api/colours by label (40 classes)", "/api/colours?by=label"),
        ("/api/colours by attribute", "/api/colours?by=Smiling"),
        ("/api/info", "/api/info"),
        ("/api/thumb (96x96 PNG)", "/api/thumb/12345.png"),
        (f"/api/decode (96x96 decoder, k=8 of {0.9 * n:,.0f})", "/api/decode?pcs=1,2&x=0.5&y=-1&k=8"),
        ("/api/nearest (hover: nearest of all points)", "/api/nearest?view=pca&pcs=1,2&x=0.5&y=-1"),
        ("/api/points zoomed (a region of PC1-PC2)", "/api/points?view=pca&pcs=1,2&x0=-2&x1=2&y0=-2&y1=2"),
        ("/api/density (256 bins, all points)", "/api/density?view=pca&pcs=1,2"),
    ):
        sec, response = timed(lambda url=url: client.get(url), repeat)
        assert response.status_code == 200, (url, response.text[:200])
        rows.append((what, sec * 1e3, len(response.content)))
    return rows


def browser_numbers(explorer: Explorer, repeat: int) -> dict[str, float]:
    """Load time of the page and, inside it, Plotly.react and hover lookup times (ms) in headless Chromium."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    sock = bind("127.0.0.1", 0)
    server = make_server(explorer)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000")
    for flag in flags:  # the test fixture's flags that matter here
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=opts)
    try:
        t0 = time.perf_counter()
        driver.get(url_of(sock))
        WebDriverWait(driver, 300).until(lambda d: d.execute_script("return !!(window.zspaceExplorer || {}).ready;"))
        load = time.perf_counter() - t0
        inner = driver.execute_async_script(
            """const done = arguments[arguments.length - 1], n = arguments[0];
            const gd = document.getElementById('plot'), t = [], h = [], f = [];
            const k = gd.data.findIndex((trace) => trace.type !== 'heatmap');  // the scatter (a density under it)
            (async () => {
              const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
              for (let i = 0; i < n; i++) {  // new arrays, so plotly recomputes and redraws everything
                const t0 = performance.now();
                gd.data[k].x = new Float32Array(gd.data[k].x);
                gd.data[k].y = new Float32Array(gd.data[k].y);
                await Plotly.react(gd, gd.data, gd.layout);
                t.push(performance.now() - t0);
              }
              for (let i = 0; i < 20; i++) {  // the server's nearest point, as a mouse move on a large view asks
                const t0 = performance.now();
                const r = await fetch(`api/nearest?view=pca&pcs=1,2&x=${(i - 10) / 3}&y=${(i % 7 - 3) / 2}`);
                await r.json();
                f.push(performance.now() - t0);
              }
              const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
              let events = 0;  // a manual Fx.hover emits no event; the hover data it found is in gd._hoverdata
              for (let i = 0; i < 20; i++) {
                await sleep(80);  // plotly throttles hover to one per 50 ms; this one runs at once
                const t0 = performance.now();
                Plotly.Fx.hover(gd, {xpx: xa._length * (i + 1) / 21, ypx: ya._length * ((i * 7) % 20 + 1) / 21});
                h.push(performance.now() - t0);
                events += gd._hoverdata && gd._hoverdata.length ? 1 : 0;
                gd._hoverdata = undefined;
              }
              const med = (a) => a.sort((p, q) => p - q)[Math.floor(a.length / 2)];
              const s = window.zspaceExplorer.state;
              done({react_ms: med(t), hover_ms: med(h), hover_events: events, nearest_ms: med(f),
                    drawn: s.x.length, density: !!s.density, webgl: window.zspaceExplorer.webgl});
            })();""",
            repeat,
        )
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(10)
        sock.close()
    return {"page_load_s": load, **inner}


def measure(n: int, z_dim: int, repeat: int, browser: bool, max_drawn: int) -> dict:
    """Every number for ``n`` points: start-up seconds, the request rows, and the browser's numbers."""
    t0 = time.perf_counter()
    explorer = synthetic(n, z_dim, max_drawn=max_drawn)
    out = {"n": n, "startup_s": time.perf_counter() - t0, "rows": server_numbers(explorer, repeat)}
    if browser:
        out["browser"] = browser_numbers(explorer, repeat)
    del explorer
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", default="100000", help="numbers of points, comma-separated; the first is the baseline")
    p.add_argument("--z-dim", type=int, default=256)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    p.add_argument("--max-drawn", type=int, default=ExploreConfig.max_drawn,
                   help="points drawn before the page draws a subsample over a density layer")  # fmt: skip
    args = p.parse_args()
    sizes = [int(v) for v in args.n.split(",")]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}; n = {', '.join(f'{v:,}' for v in sizes)}, z_dim = {args.z_dim}, "
          f"median of {args.repeat}, max_drawn {args.max_drawn:,}")  # fmt: skip
    results = []
    for n in sizes:
        r = measure(n, args.z_dim, args.repeat, args.browser, args.max_drawn)
        results.append(r)
        print(f"\n== {n:,} points: start-up (PCA fit, neighbour index, decoder) {r['startup_s']:.2f} s")
        print(f"{'request':<52} {'ms':>8} {'bytes':>11} {'bytes/point':>11}")
        for what, ms, size in r["rows"]:
            print(f"{what:<52} {ms:8.1f} {size:11,d} {size / n:11.2f}")
        base, compact = r["rows"][2], r["rows"][3]
        print(f"points payload vs plain JSON: {compact[2] / base[2]:.2f}x the bytes, "
              f"{compact[1] / base[1]:.2f}x the time")  # fmt: skip
        if "browser" in r:
            b = r["browser"]
            gl = "yes" if b["webgl"] else "no"
            layer = " over a density layer" if b["density"] else ""
            print(f"browser (headless Chromium, WebGL {gl}): page drawn {b['page_load_s']:.2f} s after navigation, "
                  f"{b['drawn']:,} points drawn{layer}")  # fmt: skip
            print(
                f"  Plotly.react of the drawn points {b['react_ms']:.0f} ms; one hover lookup {b['hover_ms']:.1f} ms "
                f"({b['hover_events']} of 20 found a point); api/nearest round trip {b['nearest_ms']:.1f} ms"
            )
    if len(results) > 1:
        first = results[0]
        for r in results[1:]:
            ratio = {what: (ms, size) for what, ms, size in r["rows"]}
            print(f"\n{r['n']:,} vs {first['n']:,} points (same run):")
            for what, ms, size in first["rows"]:
                if what in ratio:
                    print(f"  {what:<52} {ratio[what][0] / max(ms, 1e-9):6.2f}x the time, "
                          f"{ratio[what][1] / max(size, 1):6.2f}x the bytes")  # fmt: skip
            if "browser" in r:
                print(f"  page drawn: {r['browser']['page_load_s'] / first['browser']['page_load_s']:.2f}x")


if __name__ == "__main__":
    main()
