"""Data pipeline: loaders on tiny synthetic files with hand-computed expectations, the decoded-image cache,
and the real datasets of ../shared/data (skipped when absent, failing under CI)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zspace.config import DataConfig
from zspace.data import DATASETS, Dataset, decode_image, image_shape, list_images, load_dataset
from zspace.data import cache as cache_mod
from zspace.data.celeba import read_attributes
from zspace.data.split import split_mask
from zspace.errors import ConfigError, DataError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# ---------------------------------------------------------------- helpers


def write_image(path: Path, pixels: np.ndarray | tuple[int, int, int], size: tuple[int, int] = (6, 6)) -> Path:
    """Write an (H, W, 3) array, or a plain colour of ``size`` = (W, H); the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(pixels, tuple):
        pixels = np.broadcast_to(np.array(pixels, np.uint8), (size[1], size[0], 3))
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(path)
    return path


def jpeg_bytes(w: int = 64, h: int = 48, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    noise = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def colour_folder(root: Path, colours: list[tuple[int, int, int]]) -> Path:
    """Files 0.png, 1.png, ... of plain colours: decoded rows must equal the colours exactly."""
    for i, c in enumerate(colours):
        write_image(root / f"{i}.png", c)
    return root


def images_cfg(root: Path, cache: Path, **kw) -> DataConfig:
    kw = {"image_size": 4, "workers": 1, **kw}
    return DataConfig(name="images", path=str(root), cache_dir=str(cache), **kw)


def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


COLOURS = [RED, GREEN, BLUE, (10, 20, 30), (200, 100, 50)]


# ---------------------------------------------------------------- decoding one image


def test_center_crop_keeps_the_middle_band(tmp_path: Path) -> None:
    bands = np.zeros((10, 20, 3), np.uint8)  # H 10, W 20: red | green | blue columns
    bands[:, :5], bands[:, 5:15], bands[:, 15:] = RED, GREEN, BLUE
    wide = write_image(tmp_path / "wide.png", bands)
    tall = write_image(tmp_path / "tall.png", bands.transpose(1, 0, 2))

    for path in (wide, tall):  # the centred 10x10 square is all green, at any output size
        out = decode_image(path, 4, "center")
        assert out.shape == (4, 4, 3)
        assert out.dtype == np.uint8
        assert (out == GREEN).all()

    whole = decode_image(wide, 4, "none").astype(int)  # all three bands survive, left to right
    assert whole.shape == (4, 4, 3)
    assert (whole[:, 0, 0] > 200).all()
    assert (whole[:, 0, 1:] < 60).all()
    assert (whole[:, -1, 2] > 200).all()
    assert (whole[:, -1, :2] < 60).all()
    assert (whole[:, 1:3, 1] > 150).all()


def test_decode_jpeg_grey_and_bad_crop(tmp_path: Path) -> None:
    big = write_image(tmp_path / "big.jpg", (40, 80, 160), size=(400, 300))
    out = decode_image(big, 32)
    assert out.shape == (32, 32, 3)
    assert np.abs(out.astype(int) - (40, 80, 160)).max() <= 3  # JPEG rounding only
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(grey)
    assert (decode_image(grey, 4) == 77).all()
    with pytest.raises(ConfigError, match=r"data\.crop"):
        decode_image(big, 8, "middle")


def test_list_images_recursive_sorted_case_insensitive(tmp_path: Path) -> None:
    for rel in ["b/c.png", "a.JPG", "b/d.Jpeg", "a/z.png", "notes.txt", ".hidden.jpg", ".git/x.png", "e.gif"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    rels = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert rels == ["a.JPG", "a/z.png", "b/c.png", "b/d.Jpeg"]


# ---------------------------------------------------------------- image folders and the cache


def test_image_folder_decodes_once_then_reuses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = colour_folder(tmp_path / "imgs", COLOURS), tmp_path / "cache"
    calls: list[tuple[int, int]] = []
    ds = load_dataset(images_cfg(root, cache), progress=lambda done, total: calls.append((done, total)))

    assert isinstance(ds, Dataset)
    assert ds.is_image
    assert ds.x.shape == (5, 4, 4, 3)
    assert ds.image_shape == (4, 4, 3)
    assert isinstance(ds.x, np.memmap)
    assert not ds.x.flags.writeable
    for i, c in enumerate(COLOURS):
        assert (ds.x[i] == c).all()
    assert ds.labels is None
    assert ds.attributes is None
    assert ds.index.tolist() == [0, 1, 2, 3, 4]
    assert calls[0] == (0, 5)
    assert calls[-1] == (5, 5)
    entry = Path(ds.source["cache"])
    assert entry.parent == cache
    assert entry.name == f"images-4px-center-{ds.source['cache_key'][:16]}"
    manifest = json.loads((entry / "manifest.json").read_text())
    assert (manifest["n_files"], manifest["n_images"], manifest["skipped"]) == (5, 5, [])
    assert (entry / "files.txt").read_text().split() == [f"{i}.png" for i in range(5)]
    json.dumps(ds.source)  # provenance is JSON-able

    def no_decoding(*args: object) -> None:
        raise AssertionError("the second load must not decode")

    monkeypatch.setattr(cache_mod, "_decode_chunk", no_decoding)
    mtime = (entry / "manifest.json").stat().st_mtime_ns
    calls.clear()
    again = load_dataset(images_cfg(root, cache), progress=lambda done, total: calls.append((done, total)))
    assert again.source["cache"] == str(entry)
    assert (entry / "manifest.json").stat().st_mtime_ns == mtime
    assert np.array_equal(again.x, ds.x)
    assert calls == []
    assert entries(cache) == [entry.name]


def test_changed_folder_or_options_get_a_new_entry(tmp_path: Path) -> None:
    root, cache = colour_folder(tmp_path / "imgs", COLOURS[:3]), tmp_path / "cache"
    first = load_dataset(images_cfg(root, cache))
    write_image(root / "3.png", (1, 2, 3))
    second = load_dataset(images_cfg(root, cache))
    assert second.source["cache_key"] != first.source["cache_key"]
    assert len(second) == 4
    os.utime(root / "0.png", ns=(1, 1))  # same names and sizes, other mtime
    third = load_dataset(images_cfg(root, cache))
    other_crop = load_dataset(images_cfg(root, cache, crop="none"))
    keys = {d.source["cache_key"] for d in (first, second, third, other_crop)}
    assert len(keys) == 4
    assert len(entries(cache)) == 4


def test_limit_decodes_only_the_first_files(tmp_path: Path) -> None:
    root = colour_folder(tmp_path / "imgs", COLOURS)
    ds = load_dataset(images_cfg(root, tmp_path / "cache", limit=2))
    assert len(ds) == 2
    assert ds.source["n_files"] == 2
    assert (ds.x[0] == RED).all()
    assert (ds.x[1] == GREEN).all()


def corrupt_folder(root: Path) -> Path:
    """Listing order: 0.png, 1.jpg (random bytes), 2.png, 3.jpg (truncated JPEG), 4.jpg (good JPEG)."""
    write_image(root / "0.png", RED)
    (root / "1.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    write_image(root / "2.png", BLUE)
    good = jpeg_bytes()
    (root / "3.jpg").write_bytes(good[: len(good) // 2])
    (root / "4.jpg").write_bytes(good)
    return root


def test_corrupt_files_are_skipped_named_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root, cache = corrupt_folder(tmp_path / "imgs"), tmp_path / "cache"
    caplog.set_level(logging.WARNING, logger="zspace.data")
    ds = load_dataset(images_cfg(root, cache))

    assert len(ds) == 3
    assert ds.index.tolist() == [0, 2, 4]
    assert (ds.x[0] == RED).all()
    assert (ds.x[1] == BLUE).all()
    assert ds.source["n_skipped"] == 2
    manifest = json.loads((Path(ds.source["cache"]) / "manifest.json").read_text())
    assert [s["file"] for s in manifest["skipped"]] == ["1.jpg", "3.jpg"]
    assert "truncated" in manifest["skipped"][1]["error"]
    assert "\n" not in manifest["skipped"][0]["error"]
    assert (Path(ds.source["cache"]) / "files.txt").read_text().split() == ["0.png", "2.png", "4.jpg"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("skipped 2 of 5" in m and "1.jpg" in m and "3.jpg" in m for m in warnings)

    with pytest.raises(DataError, match=r"1\.jpg"):  # strict, reusing the entry that skipped them
        load_dataset(images_cfg(root, cache, strict=True))


def test_strict_build_fails_on_the_first_bad_file_and_leaves_no_entry(tmp_path: Path) -> None:
    root, cache = corrupt_folder(tmp_path / "imgs"), tmp_path / "cache"
    with pytest.raises(DataError, match=r"cannot decode .*1\.jpg.*strict"):
        load_dataset(images_cfg(root, cache, strict=True))
    assert entries(cache) == []  # neither an entry nor a temporary folder


def test_all_images_failing_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    for name in ("a.jpg", "b.png"):
        (root / name).write_bytes(b"not an image")
    with pytest.raises(DataError, match="none of the 2 images"):
        load_dataset(images_cfg(root, tmp_path / "cache"))
    assert entries(tmp_path / "cache") == []


def test_interrupted_build_leaves_nothing_and_stale_temp_folders_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = colour_folder(tmp_path / "imgs", COLOURS[:2]), tmp_path / "cache"

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(cache_mod, "_write_entry", crash)
        with pytest.raises(KeyboardInterrupt):
            load_dataset(images_cfg(root, cache))
    assert entries(cache) == []

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, pid in ((".tmp-dead", dead.pid), (".tmp-alive", os.getpid())):
        (cache / name).mkdir()
        (cache / name / "owner.json").write_text(json.dumps({"host": socket.gethostname(), "pid": pid}))
    ds = load_dataset(images_cfg(root, cache))
    assert len(ds) == 2
    assert entries(cache) == [".tmp-alive", Path(ds.source["cache"]).name]


def test_another_process_finishing_first_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = colour_folder(tmp_path / "imgs", COLOURS[:2]), tmp_path / "cache"
    theirs = load_dataset(images_cfg(root, cache))
    entry = Path(theirs.source["cache"])
    (entry / "marker").write_text("theirs")
    real_open, opened = cache_mod._open_entry, []

    def miss_first(*args: object) -> object:  # the first look finds nothing: "they" are still building
        opened.append(args)
        return None if len(opened) == 1 else real_open(*args)

    monkeypatch.setattr(cache_mod, "_open_entry", miss_first)
    monkeypatch.setattr(cache_mod, "_make_room", lambda base, entry: None)
    ours = load_dataset(images_cfg(root, cache))  # builds again, finds the entry taken at rename
    assert (entry / "marker").exists()
    assert ours.source["cache"] == str(entry)
    assert entries(cache) == [entry.name]


def test_parallel_decoding_equals_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "imgs"
    rng = np.random.default_rng(1)
    for i in range(20):
        write_image(root / f"{i:02d}.png", rng.integers(0, 256, (9, 13, 3), dtype=np.uint8))
    (root / "07.png").write_bytes(b"broken")
    monkeypatch.setattr(cache_mod, "MIN_PARALLEL", 0)
    serial = load_dataset(images_cfg(root, tmp_path / "c1"))
    calls: list[tuple[int, int]] = []
    parallel = load_dataset(
        DataConfig(name="images", path=str(root), image_size=4, cache_dir=str(tmp_path / "c2"), workers=2),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert len(parallel) == 19
    assert 7 not in parallel.index
    assert np.array_equal(parallel.x, serial.x)
    assert np.array_equal(parallel.index, serial.index)
    assert calls[0] == (0, 20)
    assert calls[-1] == (20, 20)
    assert len(calls) == 4
    assert parallel.source["n_skipped"] == 1


def test_broken_pool_falls_back_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = colour_folder(tmp_path / "imgs", COLOURS * 4)  # 20 files, 3 chunks

    def broken(*args: object) -> None:
        raise BrokenProcessPool("cannot start workers")

    monkeypatch.setattr(cache_mod, "MIN_PARALLEL", 0)
    monkeypatch.setattr(cache_mod, "_run_pool", broken)
    caplog.set_level(logging.WARNING, logger="zspace.data")
    ds = load_dataset(images_cfg(root, tmp_path / "cache", workers=2))
    assert len(ds) == 20
    assert (ds.x[19] == COLOURS[4]).all()
    assert any("decoding the rest in this process" in r.getMessage() for r in caplog.records)


def test_damaged_entry_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root, cache = colour_folder(tmp_path / "imgs", COLOURS[:3]), tmp_path / "cache"
    entry = Path(load_dataset(images_cfg(root, cache)).source["cache"])
    (entry / "files.txt").write_text("0.png\n")  # 1 name for 3 rows
    caplog.set_level(logging.WARNING, logger="zspace.data")
    again = load_dataset(images_cfg(root, cache))
    assert again.source["cache"] == str(entry)
    assert (entry / "files.txt").read_text().split() == ["0.png", "1.png", "2.png"]
    assert any("inconsistent; rebuilding" in r.getMessage() for r in caplog.records)


def test_labels_from_first_level_subfolders(tmp_path: Path) -> None:
    root, cache = tmp_path / "imgs", tmp_path / "cache"
    for rel, c in [("dog/a.png", RED), ("cat/b.png", GREEN), ("cat/deep/c.png", BLUE), ("dog/d.png", RED)]:
        write_image(root / rel, c)
    ds = load_dataset(images_cfg(root, cache))
    assert ds.label_names == ("cat", "dog")
    assert ds.labels is not None
    assert ds.labels.dtype == np.int64
    assert ds.labels.tolist() == [0, 0, 1, 1]  # cat/b, cat/deep/c, dog/a, dog/d
    assert (ds.x[2] == RED).all()
    assert (ds.x[1] == BLUE).all()

    write_image(root / "loose.png", RED)  # a file outside the subfolders: no labels
    assert load_dataset(images_cfg(root, cache)).labels is None
    single = tmp_path / "single"
    write_image(single / "only" / "a.png", RED)
    assert load_dataset(images_cfg(single, cache)).labels is None


@pytest.mark.parametrize("name", ["images", "celeba"])
def test_missing_empty_or_unset_paths(tmp_path: Path, name: str) -> None:
    cfg = DataConfig(name=name, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match=f"dataset '{name}' needs data.path"):
        load_dataset(cfg)
    with pytest.raises(DataError, match="nowhere"):
        load_dataset(DataConfig(name=name, path=str(tmp_path / "nowhere")))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=f"no .*images in {tmp_path / 'empty'}"):
        load_dataset(DataConfig(name=name, path=str(tmp_path / "empty")))


# ---------------------------------------------------------------- CelebA attributes

ATTR_TEXT = "202599\r\nSmiling  Male Young\r\n1.jpg  1 -1  1\r\n2.jpg -1 -1  1\r\n3.jpg  1  1  1"


def test_celeba_attributes_matched_by_file_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "celeba" / "img"
    for name, c in [("1.jpg", RED), ("2.jpg", GREEN), ("4.jpg", BLUE)]:
        write_image(folder / name, c)
    (tmp_path / "celeba" / "list_attr_celeba.txt").write_bytes(ATTR_TEXT.encode())  # in the parent folder
    caplog.set_level(logging.WARNING, logger="zspace.data")
    ds = load_dataset(DataConfig(name="celeba", path=str(folder), image_size=4, cache_dir=str(tmp_path / "c")))

    assert ds.attribute_names == ("Smiling", "Male", "Young")
    assert ds.attributes is not None
    assert ds.attributes.dtype == np.int8
    assert ds.attributes.tolist() == [[1, -1, 1], [-1, -1, 1], [0, 0, 0]]
    assert ds.labels is None
    assert ds.source["n_without_attributes"] == 1
    assert any("1 of 3 images have no row" in r.getMessage() and "4.jpg" in r.getMessage() for r in caplog.records)


def test_celeba_without_attribute_file(tmp_path: Path) -> None:
    folder = colour_folder(tmp_path / "a" / "b", COLOURS[:2])
    ds = load_dataset(DataConfig(name="celeba", path=str(folder), image_size=4, cache_dir=str(tmp_path / "c")))
    assert ds.attributes is None
    assert ds.attribute_names is None
    assert len(ds) == 2
    with pytest.raises(DataError, match=r"nope\.txt"):
        load_dataset(DataConfig(name="celeba", path=str(folder), attributes=str(tmp_path / "nope.txt")))


def test_attribute_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes(ATTR_TEXT.encode())
    table = read_attributes(path)
    assert table.files == ("1.jpg", "2.jpg", "3.jpg")  # header count 202599 ignored
    assert table.values.tolist() == [[1, -1, 1], [-1, -1, 1], [1, 1, 1]]

    path.write_bytes(ATTR_TEXT.replace("2.jpg -1 -1  1", "2.jpg -1 -1").encode())
    with pytest.raises(DataError, match=rf"{path.name}:4: expected a file name and 3 values, got 2"):
        read_attributes(path)
    path.write_bytes(ATTR_TEXT.replace("3.jpg  1  1  1", "3.jpg  1  0  1").encode())
    with pytest.raises(DataError, match=rf"{path.name}:5: value '0' of Male is not -1 or 1"):
        read_attributes(path)


# ---------------------------------------------------------------- MNIST idx files


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, gz: bool) -> tuple[np.ndarray, np.ndarray]:
    """3 train and 2 test images of 4x4 with pixel values 0, 1, 2, ... and labels (7, 1, 3), (9, 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    images = np.arange(5 * 16).reshape(5, 4, 4)
    labels = np.array([7, 1, 3, 9, 0])
    parts = {"train-images-idx3-ubyte": images[:3], "train-labels-idx1-ubyte": labels[:3],
             "t10k-images-idx3-ubyte": images[3:], "t10k-labels-idx1-ubyte": labels[3:]}  # fmt: skip
    for name, array in parts.items():
        data = idx_bytes(array)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_idx_files(tmp_path: Path, gz: bool) -> None:
    images, _ = write_mnist(tmp_path, gz)
    ds = load_dataset(DataConfig(name="mnist", path=str(tmp_path)))
    assert ds.x.shape == (5, 4, 4, 1)
    assert ds.x.dtype == np.uint8
    assert np.array_equal(ds.x[..., 0], images)
    assert ds.labels is not None
    assert ds.labels.tolist() == [7, 1, 3, 9, 0]
    assert ds.labels.dtype == np.int64
    assert ds.test_mask.tolist() == [False, False, False, True, True]
    assert ds.index.tolist() == [0, 1, 2, 0, 1]
    assert ds.label_names == tuple("0123456789")
    limited = load_dataset(DataConfig(name="mnist", path=str(tmp_path), limit=1))
    assert limited.labels is not None
    assert limited.labels.tolist() == [7, 9]


def test_mnist_missing_truncated_and_bad_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=f"missing MNIST file t10k-labels-idx1-ubyte.* in {tmp_path}"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)))
    write_mnist(tmp_path, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: header says .* 48 bytes .* holds 43"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)))
    images.write_bytes(b"\x08\x03" + images.read_bytes()[2:])
    with pytest.raises(DataError, match="train-images-idx3-ubyte is not an idx file"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)))
    images.unlink()
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 4, 4))))[:-12])  # a cut gzip stream
    with pytest.raises(DataError, match=r"cannot read .*train-images-idx3-ubyte\.gz"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)))
    with pytest.raises(ConfigError, match=r"dataset 'mnist' needs data.path \(the folder with the idx files\)"):
        load_dataset(DataConfig(name="mnist"))


# ---------------------------------------------------------------- WIFI and digits


def test_wifi_rows(tmp_path: Path) -> None:
    path = tmp_path / "wifi_localization.txt"
    path.write_text("-64\t-56\t-61\t-66\t-71\t-82\t-81\t1\n-68 -57 -61 -65 -71 -85 -85  3\n\n"
                    "-10\t-20\t-30\t-40\t-50\t-60\t-70\t2")  # fmt: skip
    for p in (path, tmp_path):  # the file or its folder
        ds = load_dataset(DataConfig(name="wifi", path=str(p), test_fraction=0.0))
        assert ds.x.dtype == np.float32
        assert ds.x.shape == (3, 7)
        assert not ds.is_image
        assert ds.x[2].tolist() == [-10, -20, -30, -40, -50, -60, -70]
        assert ds.labels is not None
        assert ds.labels.tolist() == [0, 2, 1]
        assert ds.label_names == ("room 1", "room 2", "room 3")
    with pytest.raises(ConfigError, match="tabular"):
        _ = ds.image_shape

    path.write_text("-64\t-56\t-61\t-66\t-71\t-82\t-81\t1\n\n-68 -57 -61 -65 -71 -85 3\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:3: expected 8 numbers, got 7")):
        load_dataset(DataConfig(name="wifi", path=str(path)))
    path.write_text("-64\t-56\t-61\t-66\t-71\t-82\tx\t1\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:1: expected 8 numbers, got '-64")):
        load_dataset(DataConfig(name="wifi", path=str(path)))


def test_digits() -> None:
    ds = load_dataset(DataConfig(name="digits"))
    assert ds.x.shape == (1797, 8, 8, 1)
    assert ds.x.dtype == np.uint8
    assert ds.x.min() == 0
    assert ds.x.max() == 255
    assert ds.labels is not None
    assert sorted(set(ds.labels.tolist())) == list(range(10))
    # the first digit is a 0 whose top row is 0 0 5 13 9 1 0 0 (of 16)
    assert ds.x[0, 0, :, 0].tolist() == [0, 0, 80, 207, 143, 16, 0, 0]
    assert len(ds.indices("test")) == 180
    with pytest.raises(ConfigError, match=r"dataset 'digits' ships with scikit-learn; data\.path must be unset"):
        load_dataset(DataConfig(name="digits", path="/somewhere"))


# ---------------------------------------------------------------- splits and shapes


def test_split_is_a_pure_function_of_the_seed() -> None:
    a, b, c = split_mask(100, 0.2, 0), split_mask(100, 0.2, 0), split_mask(100, 0.2, 1)
    assert a.dtype == bool
    assert a.sum() == 20
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert split_mask(1, 0.5, 0).sum() == 0
    assert split_mask(2, 0.9, 0).sum() == 1

    ds = load_dataset(DataConfig(name="digits", split_seed=3, test_fraction=0.25))
    same = load_dataset(DataConfig(name="digits", split_seed=3, test_fraction=0.25))
    other = load_dataset(DataConfig(name="digits", split_seed=4, test_fraction=0.25))
    train, test = ds.indices("train"), ds.indices("test")
    assert train.dtype == np.int64
    assert np.all(np.diff(train) > 0)
    assert np.all(np.diff(test) > 0)
    assert len(test) == round(1797 * 0.25)
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.union1d(train, test), ds.indices("all"))
    assert np.array_equal(same.indices("test"), test)
    assert not np.array_equal(other.indices("test"), test)
    with pytest.raises(ConfigError, match="unknown split 'valid'"):
        ds.indices("valid")


def test_image_shape_without_loading() -> None:
    assert image_shape(DataConfig(name="mnist")) == (28, 1)
    assert image_shape(DataConfig(name="digits")) == (8, 1)
    assert image_shape(DataConfig(name="celeba")) == (96, 3)
    assert image_shape(DataConfig(name="images", image_size=64)) == (64, 3)
    with pytest.raises(ConfigError, match=r"unknown dataset 'cifar' \(known: celeba, digits, images, mnist, wifi\)"):
        image_shape(DataConfig(name="cifar"))
    with pytest.raises(ConfigError, match="dataset 'wifi' is tabular; image models need an image dataset"):
        image_shape(DataConfig(name="wifi"))
    with pytest.raises(ConfigError, match=r"data\.image_size must be 0 or 28, got 32"):
        image_shape(DataConfig(name="mnist", image_size=32))
    with pytest.raises(ConfigError, match=r"data\.image_size must be 0 or 28, got 32"):
        load_dataset(DataConfig(name="mnist", image_size=32, path="/anywhere"))  # before touching the path
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'"):
        load_dataset(DataConfig(name="cifar"))
    assert set(DATASETS) == {"digits", "mnist", "celeba", "images", "wifi"}


# ---------------------------------------------------------------- real data


def test_real_mnist(mnist_dir: Path) -> None:
    ds = load_dataset(DataConfig(name="mnist", path=str(mnist_dir)))
    assert ds.x.shape == (70_000, 28, 28, 1)
    assert ds.x.dtype == np.uint8
    assert int(ds.test_mask.sum()) == 10_000
    assert not ds.test_mask[:60_000].any()
    assert ds.labels is not None
    counts = np.bincount(ds.labels, minlength=10)
    assert len(counts) == 10
    assert counts.sum() == 70_000
    assert counts.min() > 5_000
    assert ds.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training labels


def test_real_celeba_200(celeba_dir: Path) -> None:
    ds = load_dataset(DataConfig(name="celeba", path=str(celeba_dir), limit=200))
    assert ds.x.shape == (200, 96, 96, 3)
    assert ds.x.dtype == np.uint8
    assert ds.attribute_names is not None
    assert len(ds.attribute_names) == 40
    assert ds.attribute_names[:2] == ("5_o_Clock_Shadow", "Arched_Eyebrows")
    attr_file = celeba_dir.parent / "list_attr_celeba_first20000.txt"
    first = attr_file.read_text().splitlines()[2].split()
    assert first[0] == "000001.jpg"
    assert ds.index[0] == 0
    assert ds.attributes is not None
    assert ds.attributes[0].tolist() == [int(v) for v in first[1:]]
    assert ds.source["n_without_attributes"] == 0
    assert ds.source["n_skipped"] == 0
    assert np.array_equal(ds.x[0], decode_image(celeba_dir / "000001.jpg", 96))


def test_real_wifi(wifi_file: Path) -> None:
    ds = load_dataset(DataConfig(name="wifi", path=str(wifi_file), test_fraction=0.25))
    assert ds.x.shape == (2_000, 7)
    assert ds.x.dtype == np.float32
    assert ds.labels is not None
    assert np.bincount(ds.labels).tolist() == [500, 500, 500, 500]
    assert ds.x.min() >= -98
    assert ds.x.max() <= -10
    assert len(ds.indices("train")) == 1_500
    assert len(ds.indices("test")) == 500
