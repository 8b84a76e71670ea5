"""The explorer's ASGI app (Starlette): the page, its scripts, and a small JSON API over an :class:`Explorer`.

Routes::

    GET /                              the page (static/index.html)
    GET /static/plotly.min.js          plotly.js from the plotly wheel (nothing comes from a CDN)
    GET /static/explore.js, .css       the page's own script and style
    GET /api/info                      sizes, principal components, colourings, t-SNE and UMAP status
    GET /api/points?view=pca&pcs=1,2   coordinates of every point: base64 little-endian float32 ``x``, ``y``
    GET /api/points?view=tsne|umap     the same for a map; 202 {"status": "computing"} until it is ready
        [&x0=&x1=&y0=&y1=]             beyond ``max_drawn`` points (or for a region): a fixed random subsample of the
                                       points in the region (``rows``, base64 uint32) and a ``density`` grid of all
    GET /api/density?view=&pcs=&x0=&x1=&y0=&y1=&bins=
                                       counts of the points of a view in a grid over a region (base64 uint32)
    GET /api/nearest?view=&pcs=&x=&y=  the point nearest to (x, y) on a view: its row, coordinates and distance
    GET /api/colours?by=label          class codes (base64 uint8/uint16) and class names
    GET /api/thumb/{row}.png?size=64   the data image of a point
    GET /api/decode?pcs=1,2&x=&y=&base=mean|ROW&k=8
                                       the decoded image at a location of a PCA plane and its nearest training images
                                       (``base=ROW`` without ``x``, ``y``: that point's own latent)

Every bad request (a bad number, an unknown colouring, a row out of range, NaN) is a 4xx with ``{"error": ...}``
naming the problem; an unexpected failure is a 500 with the same shape, never a traceback.
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import re
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from zspace.config import short_repr
from zspace.errors import ZSpaceError
from zspace.explore.data import Explorer, MapFailed, b64, data_url, density

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")


def plotly_js() -> Path:
    """plotly.min.js as the plotly wheel ships it."""
    path = Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js is missing from the plotly package ({path})")
    return path


class BadRequest(HTTPException):
    def __init__(self, detail: str, status_code: int = 400):
        super().__init__(status_code=status_code, detail=detail)


def _param(request: Request, name: str, default: str | None = None) -> str:
    value = request.query_params.get(name, default)
    if value is None:
        raise BadRequest(f"missing query parameter {name!r}")
    return value


# Numbers in a request are ASCII and short: no '²', no 5,000-digit integers, no 1e30 locations.
_INT = re.compile(r"[0-9]{1,12}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")
MAX_COORD = 1e6  # a location beyond this many units of the plane is no point of any latent space


def parse_int(raw: str, name: str) -> int:
    """``raw`` as a non-negative ASCII integer of at most 12 digits, else a 400 naming ``name``."""
    if not _INT.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer (0 or more, at most 12 digits), got {short_repr(raw, 40)}")
    return int(raw)


def _int(request: Request, name: str, default: int | None = None) -> int:
    return parse_int(_param(request, name, None if default is None else str(default)), name)


def _float(request: Request, name: str) -> float:
    raw = _param(request, name)
    if raw.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise BadRequest(f"{name} must be a finite number, got {raw!r}")
    if len(raw) > 40 or not _FLOAT.fullmatch(raw):
        raise BadRequest(f"{name} must be a number, got {short_repr(raw, 40)}")
    value = float(raw)
    if not (math.isfinite(value) and abs(value) <= MAX_COORD):
        raise BadRequest(f"{name} must be a finite number within +-{MAX_COORD:g}, got {short_repr(raw, 40)}")
    return value


def _pcs(request: Request) -> tuple[int, int]:
    raw = _param(request, "pcs", "1,2")
    parts = raw.split(",")
    try:
        pcs = tuple(parse_int(p.strip(), "pcs") for p in parts)
    except BadRequest:
        raise BadRequest(f"pcs must be two component numbers like 1,2; got {raw!r}") from None
    if len(pcs) != 2:
        raise BadRequest(f"pcs must be two component numbers like 1,2; got {raw!r}")
    return pcs  # type: ignore[return-value]


def _row(explorer: Explorer, raw: int) -> int:
    if not 0 <= raw < len(explorer.points):
        raise BadRequest(f"no point {raw}: there are {len(explorer.points)}", status_code=404)
    return raw


def _explorer(request: Request) -> Explorer:
    return request.app.state.explorer


def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


def plotly(request: Request) -> Response:
    return FileResponse(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


def info(request: Request) -> Response:
    return JSONResponse(_explorer(request).info())


def _view(request: Request) -> tuple[str, tuple[int, int], np.ndarray | None, list[str]]:
    """The view a request names, its PCA components, its coordinates (N, 2) (None while a map is computed) and its
    axis titles; a failed map is a 503."""
    explorer = _explorer(request)
    view = _param(request, "view", "pca")
    if view != "pca" and view not in explorer.maps:
        raise BadRequest(f"unknown view {short_repr(view, 40)} (known: pca, {', '.join(explorer.maps)})")
    pcs = _pcs(request) if view == "pca" else (1, 2)
    try:
        xy, titles = explorer.view(view, pcs)
    except MapFailed as e:
        raise BadRequest(str(e), status_code=503) from None
    return view, pcs, xy, titles


def _computing(view: str) -> Response:
    return JSONResponse({"status": "computing", "view": view}, status_code=202)


def _box(request: Request) -> tuple[float, float, float, float] | None:
    """The region (x0, x1, y0, y1) a request names, or None for none; x0 < x1 and y0 < y1."""
    names = ("x0", "x1", "y0", "y1")
    given = [name in request.query_params for name in names]
    if not any(given):
        return None
    if not all(given):
        raise BadRequest("a region needs all of x0, x1, y0, y1")
    x0, x1, y0, y1 = (_float(request, name) for name in names)
    if not (x0 < x1 and y0 < y1):
        raise BadRequest(f"a region needs x0 < x1 and y0 < y1, got x {x0:g}..{x1:g}, y {y0:g}..{y1:g}")
    return x0, x1, y0, y1


def _full_box(xy: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = np.where(hi > lo, 0.0, 0.5)  # a region of width 0 (all points on one line) gets some
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


Box = tuple[float, float, float, float]  # a region of a view: x0, x1, y0, y1


def _bins(explorer: Explorer, box: Box, longest: int | None = None) -> tuple[int, int]:
    """Grid of about square bins over ``box``: ``longest`` (default ``cfg.density_bins``) along its longer side."""
    longest = longest or explorer.cfg.density_bins
    w, h = box[1] - box[0], box[3] - box[2]
    return (longest, max(1, round(longest * h / w))) if w >= h else (max(1, round(longest * w / h)), longest)


def density_payload(xy: np.ndarray, box: Box, bins: tuple[int, int]) -> dict:
    """Counts (by, bx) of the points of ``xy`` (N, 2) in a grid over ``box``, row 0 at y0, as base64 uint32."""
    counts = density(xy, box, bins)
    return {"x0": box[0], "x1": box[1], "y0": box[2], "y1": box[3], "bins": list(bins), "dtype": "uint32",
            "counts": b64(counts.reshape(-1), "uint32"), "max": int(counts.max()),
            "total": int(counts.sum())}  # fmt: skip


def points(request: Request) -> Response:
    explorer = _explorer(request)
    view, _, xy, titles = _view(request)
    if xy is None:
        return _computing(view)
    box = _box(request)
    payload = points_payload(xy, view, titles)
    if box is None and len(xy) <= explorer.cfg.max_drawn:
        return JSONResponse(payload)  # every point, in row order
    rows, inside = explorer.drawn(xy, box)
    sub = np.asarray(xy, dtype=np.float32)[rows]
    region = box or _full_box(xy)
    payload.update({
        "n": len(rows), "n_total": len(xy), "n_inside": inside, "sampled": True,
        "x": b64(sub[:, 0], "float32"), "y": b64(sub[:, 1], "float32"), "rows": b64(rows, "uint32"),
        "density": density_payload(xy, region, _bins(explorer, region)) if len(rows) < inside else None,
    })  # fmt: skip
    return JSONResponse(payload)


def density_view(request: Request) -> Response:
    explorer = _explorer(request)
    view, _, xy, _ = _view(request)
    if xy is None:
        return _computing(view)
    box = _box(request) or _full_box(xy)
    bins = _int(request, "bins", explorer.cfg.density_bins)
    if not 1 <= bins <= 1024:
        raise BadRequest(f"bins must be in 1..1024, got {bins}")
    return JSONResponse(density_payload(xy, box, _bins(explorer, box, bins)))


def nearest(request: Request) -> Response:
    explorer = _explorer(request)
    view, pcs, xy, _ = _view(request)
    if xy is None:
        return _computing(view)
    x, y = _float(request, "x"), _float(request, "y")
    row, dist = explorer.nearest(view, xy, pcs, x, y)
    return JSONResponse({"view": view, "row": row, "x": float(xy[row, 0]), "y": float(xy[row, 1]),
                         "distance": dist})  # fmt: skip


def colours(request: Request) -> Response:
    c = _explorer(request).colouring(_param(request, "by", "none"))
    dtype = "uint8" if c.codes.dtype == np.uint8 else "uint16"
    return JSONResponse({"by": c.by, "dtype": dtype, "codes": b64(c.codes, dtype), "names": c.names})


def thumb(request: Request) -> Response:
    explorer = _explorer(request)
    row = _row(explorer, request.path_params["row"])
    png = explorer.png(explorer.image(row), _int(request, "size", explorer.cfg.thumb_size))
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def decode(request: Request) -> Response:
    explorer = _explorer(request)
    pcs = _pcs(request)
    raw_base = _param(request, "base", "mean")
    if raw_base != "mean" and not _INT.fullmatch(raw_base):
        raise BadRequest(f"base must be 'mean' or a point's row number, got {short_repr(raw_base, 40)}")
    base = None if raw_base == "mean" else _row(explorer, int(raw_base))
    if base is not None and "x" not in request.query_params and "y" not in request.query_params:
        x, y = (float(v) for v in explorer.plane(pcs, base))  # the point itself: its own latent
    else:
        x, y = _float(request, "x"), _float(request, "y")
    z = explorer.location(pcs, x, y, base)
    rows, dist = explorer.neighbours(z, _int(request, "k", explorer.cfg.k))
    image = explorer.decode(z)
    labels = None if explorer.labels is None else [int(explorer.labels[r]) for r in rows]
    return JSONResponse({
        "pcs": list(pcs), "x": x, "y": y, "base": raw_base, "z_norm": float(np.linalg.norm(z)),
        "image": data_url(explorer.png(image)), "image_shape": list(image.shape),
        "neighbours": [int(r) for r in rows], "distances": [round(float(d), 6) for d in dist], "labels": labels,
    })  # fmt: skip


ROUTES = [
    Route("/", index),
    Route("/static/plotly.min.js", plotly),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
    Route("/api/info", info),
    Route("/api/points", points),
    Route("/api/density", density_view),
    Route("/api/nearest", nearest),
    Route("/api/colours", colours),
    Route("/api/thumb/{row:int}.png", thumb),
    Route("/api/decode", decode),
]


def create_app(explorer: Explorer) -> Starlette:
    """The Starlette app serving ``explorer`` (kept in ``app.state.explorer``)."""
    handlers = {HTTPException: _http_error, ZSpaceError: _bad_input, Exception: _server_error}
    app = Starlette(routes=ROUTES, exception_handlers=handlers)
    app.state.explorer = explorer
    return app


def points_payload(xy: np.ndarray, view: str, labels: list[str]) -> dict:
    """Coordinates (N, 2) as two base64 float32 arrays, with the axis titles and ranges."""
    xy = np.asarray(xy, dtype=np.float32)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return {
        "view": view,
        "n": len(xy),
        "dtype": "float32",
        "x": b64(xy[:, 0], "float32"),
        "y": b64(xy[:, 1], "float32"),
        "labels": labels,
        "range": [[float(lo[0]), float(hi[0])], [float(lo[1]), float(hi[1])]],
    }


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.status_code != 404 or isinstance(exc, BadRequest) else f"not found: {request.url.path}"
    log.warning("explorer: refused %s (%d): %s", request.url.path, exc.status_code, detail)
    return JSONResponse({"error": detail}, status_code=exc.status_code)


async def _bad_input(request: Request, exc: Exception) -> Response:
    log.warning("explorer: refused %s (400): %s", request.url.path, str(exc).splitlines()[0] if str(exc) else "")
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("explorer: %s failed: %s: %s", request.url.path, type(exc).__name__, exc)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)
