"""Hostile input through the command line: each case exits 2 with one line on stderr, no traceback, nothing lost.

The table grows with every bug found. Cases that need a fixture (a trained run, a latents folder) build it
first; the file-system cases mount a real tmpfs (full, read-only) and skip with the reason where mounting is
refused (CI runs as root, so they run there).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zspace.cli.main import main
from zspace.io.ownership import run_lock

ROOT = Path(__file__).resolve().parents[1]
DIGITS = str(ROOT / "configs" / "digits-demo.toml")
SMALL = ["--set", "model.z_dim=4", "--set", "model.filters=[8, 16]", "--epochs", "1"]


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run the CLI in-process; an uncaught exception (a traceback) fails the test by itself."""
    capsys.readouterr()
    code = main(["-q", *argv])
    return code, capsys.readouterr().err


def refused(capsys, *argv: str, needle: str = "") -> str:
    code, err = cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith("zspace: error: "), (argv, err)
    assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes: a before/after fingerprint."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(Path(path).rglob("*")) if p.is_file()}


def train(out: Path, name: str = "d", *extra: str) -> list[str]:
    return ["train", DIGITS, "--out-dir", str(out), "--name", name, *SMALL, *extra]


# --- data loss -----------------------------------------------------------------------------------------------


def test_overwrite_refuses_an_ordinary_folder_and_keeps_its_files(capsys, tmp_path):
    mine = tmp_path / "runs" / "d"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    before = tree(mine)
    refused(capsys, *train(tmp_path / "runs", "d", "--overwrite"), needle="not a zspace run folder")
    assert tree(mine) == before


def test_overwrite_refuses_a_run_folder_holding_a_user_file(capsys, tiny_run_copy):
    (tiny_run_copy / "notes.txt").write_text("mine")
    before = tree(tiny_run_copy)
    refused(capsys, *train(tiny_run_copy.parent, "d", "--overwrite"), needle="notes.txt")
    assert tree(tiny_run_copy) == before


def test_overwrite_replaces_a_zspace_run(capsys, tiny_run_copy):
    old_marker = (tiny_run_copy / ".zspace-run").read_text()
    code, err = cli(capsys, *train(tiny_run_copy.parent, "d", "--overwrite"))
    assert code == 0, err
    assert (tiny_run_copy / ".zspace-run").read_text() != old_marker  # a new run, not the old folder


@pytest.mark.parametrize("target", ["symlink", "file"])
def test_overwrite_onto_a_symlink_or_a_file(capsys, tmp_path, tiny_run, target):
    runs = tmp_path / "runs"
    runs.mkdir()
    if target == "symlink":
        (runs / "d").symlink_to(tiny_run, target_is_directory=True)
    else:
        (runs / "d").write_text("a file")
    refused(capsys, *train(runs, "d", "--overwrite"))
    assert (runs / "d").is_symlink() if target == "symlink" else (runs / "d").read_text() == "a file"
    assert (tiny_run / "model.safetensors").is_file()


def test_out_dir_that_is_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    refused(capsys, *train(tmp_path / "f"), needle="is a file")


def test_a_second_training_of_the_same_run_is_refused(capsys, tiny_run_copy):
    before = tree(tiny_run_copy)
    with run_lock(tiny_run_copy.parent, "d"):  # as a first `zspace train` holds it while training
        refused(capsys, *train(tiny_run_copy.parent, "d", "--overwrite"), needle="being trained")
        refused(capsys, *train(tiny_run_copy.parent, "d", "--resume", "--epochs", "2"), needle="being trained")
    assert tree(tiny_run_copy) == before


def test_analyze_out_onto_a_users_report_keeps_it(capsys, tiny_run, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.html").write_text("<p>my own report</p>")
    (out / "metrics.json").write_text("{}")
    before = tree(out)
    refused(capsys, "analyze", str(tiny_run), "--only", "radius", "--out", str(out), needle="not written by")
    assert tree(out) == before


@pytest.mark.parametrize("planted", [["notes.txt"], {"format": "zspace-report-2", "kind": "zspace analyze",
                                                    "files": {"notes.txt": "0" * 64}}])  # fmt: skip
def test_a_planted_manifest_deletes_nothing(capsys, tiny_run, tmp_path, planted):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / ".zspace-report.json").write_text(json.dumps(planted))
    code, err = cli(capsys, "analyze", str(tiny_run), "--only", "radius", "--out", str(out))
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "report.html").is_file()


def test_compare_into_an_analysis_folder_keeps_the_analysis(capsys, tiny_run_copy):
    assert cli(capsys, "analyze", str(tiny_run_copy), "--only", "radius")[0] == 0
    before = tree(tiny_run_copy / "analysis")
    refused(capsys, "compare", str(tiny_run_copy), "--out", str(tiny_run_copy / "analysis"), needle="zspace analyze")
    assert tree(tiny_run_copy / "analysis") == before


# --- configs that cannot work ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["train.lr=inf"], "train.lr"),
        (["model.kl_weight=inf"], "model.kl_weight"),
        (["model.eps_factor=nan"], "model.eps_factor"),
        (["train.threads=-1"], "train.threads"),
        (["model.z_dim=1000000000"], "model.z_dim"),
        (["model.filters=[1000000, 1000000]"], "model.filters"),  # the declared range, before any size estimate
        (["model.extra_dense=100000000000"], "model.extra_dense"),
    ],
)
def test_impossible_train_configs(capsys, tmp_path, sets, needle):
    extra = [a for s in sets for a in ("--set", s)]
    refused(capsys, *train(tmp_path / "runs"), *extra, needle=needle)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["a\0b", "x" * 300, "..", "a/b"])
def test_run_names_the_file_system_cannot_hold(capsys, tmp_path, name):
    refused(capsys, *train(tmp_path / "runs", name), needle="name must be a folder name")
    assert not (tmp_path / "runs").exists()


def test_zero_epochs(capsys, tmp_path):
    refused(capsys, "train", DIGITS, "--out-dir", str(tmp_path / "r"), "--epochs", "0", needle="train.epochs")


def test_a_path_with_emoji_reaches_the_config_intact(capsys, tmp_path):
    out = tmp_path / "runs-\U0001f600"
    code, err = cli(capsys, *train(out, "n\u00e9-\U0001f600"))
    assert code == 0, err
    cfg = json.loads((out / "n\u00e9-\U0001f600" / "config.json").read_text())
    assert cfg["out_dir"] == str(out)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--batch-size", "-5"], "batch size"),
        (["--batch-size", "0"], "batch size"),
        (["--eps-factor", "nan"], "eps_factor"),
        (["--eps-factor", "-1"], "eps_factor"),
    ],
)
def test_embed_rejects_values_that_write_garbage(capsys, tiny_run, tmp_path, args, needle):
    refused(capsys, "embed", str(tiny_run), "--out", str(tmp_path / "lat"), *args, needle=needle)
    assert not (tmp_path / "lat").exists()


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["radius.width=nan"], "radius.width"),
        (["radius.width=1e-12"], "radius.width"),
        (["pca.zooms=[nan]"], "pca.zooms"),
        (["manifold.void_quantile=inf"], "manifold.void_quantile"),
    ],
)
def test_analysis_options_that_cannot_work(capsys, tiny_run, tmp_path, sets, needle):
    extra = [a for s in sets for a in ("--set", s)]
    refused(capsys, "analyze", str(tiny_run), "--out", str(tmp_path / "rep"), *extra, needle=needle)
    assert not (tmp_path / "rep").exists()


def test_a_huge_elbow_k_max_is_thinned_not_a_hang(capsys, tmp_path):
    from zspace.sections.elbow import MAX_KS, Config, _ks

    notes: list[str] = []
    ks = _ks(Config(k_min=2, k_max=100_000, k_step=1), 1797, notes)
    assert len(ks) <= MAX_KS + 1
    assert (ks[0], ks[-1]) == (2, 1796)
    assert any("too many fits" in n for n in notes)


def test_compare_the_same_run_twice(capsys, tiny_run, tmp_path):
    refused(
        capsys, "compare", str(tiny_run), str(tiny_run), str(tiny_run), "--out", str(tmp_path / "c"), needle="twice"
    )


def test_runs_whose_names_slug_alike_get_distinct_names():
    from zspace.report.compare import _unique_name
    from zspace.report.page import slug

    taken: dict[str, object] = {}
    for name, path in [("a b", Path("x/a b")), ("a-b", Path("y/a-b")), ("a b", Path("z/a b"))]:
        taken[_unique_name(name, path, taken)] = None
    assert len({slug(n) for n in taken}) == 3


# --- latents and metadata ----------------------------------------------------------------------------------------


def latents_folder(path: Path, z: np.ndarray, *, labels: np.ndarray | None = None, meta: str | None = None) -> Path:
    path.mkdir(parents=True)
    np.save(path / "z.npy", z)
    np.save(path / "index.npy", np.arange(len(z) if z.ndim else 0, dtype=np.int64))
    if labels is not None:
        np.save(path / "labels.npy", labels)
    (path / "meta.json").write_text(meta if meta is not None else json.dumps({"kind": "ae", "split": "all"}))
    return path


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: latents_folder(p, np.zeros(10, np.float32)), "z must be"),
        (lambda p: latents_folder(p, np.zeros((0, 3), np.float32)), "z must be"),
        (lambda p: latents_folder(p, np.zeros((5, 3), np.float32), labels=np.zeros(4, np.int64)), "labels has shape"),
        (lambda p: latents_folder(p, np.zeros((5, 3), np.float32), meta="{not json"), "meta.json"),
        (lambda p: latents_folder(p, np.full((5, 3), np.nan, np.float32)), "no finite row"),
    ],
)
def test_broken_latents_folders(capsys, tmp_path, make, needle):
    lat = make(tmp_path / "lat")
    refused(capsys, "analyze", str(lat), "--only", "radius", "--out", str(tmp_path / "rep"), needle=needle)


def test_nonfinite_rows_are_counted_named_and_dropped(capsys, tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 6)).astype(np.float32)
    z[[3, 50], 1] = np.nan
    z[70, 0] = np.inf
    lat = latents_folder(tmp_path / "lat", z)
    code, err = cli(capsys, "analyze", str(lat), "--only", "radius,axes", "--out", str(tmp_path / "rep"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["source"]["n"] == 197
    from zspace.latents.embedding import load_latents

    assert load_latents(lat).meta["nonfinite_dropped"] == 3
    assert load_latents(lat).meta["nonfinite_first_row"] == 3


@pytest.mark.parametrize("kind", ["constant", "one-dim"])
def test_degenerate_latent_spaces_adapt_instead_of_crashing(capsys, tmp_path, kind):
    rng = np.random.default_rng(1)
    z = np.ones((300, 5), np.float32) if kind == "constant" else rng.normal(size=(300, 1)).astype(np.float32)
    lat = latents_folder(tmp_path / "lat", z, labels=rng.integers(0, 3, 300))
    only = "radius,axes,pca,elbow,tsne,manifold"
    code, err = cli(
        capsys, "analyze", str(lat), "--only", only, "--out", str(tmp_path / "rep"),
        "--set", "tsne.sizes=[100]", "--set", "tsne.n_iter=30", "--set", "elbow.k_max=6",
    )  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "rep" / "report.html").is_file()


# --- checkpoints -----------------------------------------------------------------------------------------------


def edit_checkpoint(path: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    with open(path, "rb") as f:  # noqa: PTH123
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    tensors = load_file(path)
    edit(tensors, meta)
    save_file(tensors, path, metadata=meta)


def _set_progress(key, value):
    def edit(tensors, meta):
        p = json.loads(meta["progress"])
        if value is KeyError:
            del p[key]
        else:
            p[key] = value
        meta["progress"] = json.dumps(p)

    return edit


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (_set_progress("epoch", "1"), "'epoch' must be an integer"),
        (_set_progress("global_step", KeyError), "'global_step'"),
        (_set_progress("history", {"a": 1}), "'history'"),
        (lambda t, m: m.pop("param_groups"), "'param_groups'"),
        (lambda t, m: m.update(progress="{broken"), "not valid JSON"),
        (lambda t, m: t.pop("rng/cpu"), "rng/cpu"),
        (lambda t, m: t.update({"rng/cpu": t["rng/cpu"][:10]}), "RNG"),
    ],
)
def test_an_edited_checkpoint_is_a_checkpoint_error(capsys, tiny_run_copy, edit, needle):
    edit_checkpoint(tiny_run_copy / "checkpoint.safetensors", edit)
    config_before = (tiny_run_copy / "config.json").read_bytes()
    line = refused(capsys, *train(tiny_run_copy.parent, "d", "--resume", "--epochs", "2"), needle=needle)
    assert "checkpoint.safetensors" in line
    assert (tiny_run_copy / "config.json").read_bytes() == config_before  # a failed --resume changes nothing


# --- stuck folders ---------------------------------------------------------------------------------------------


def test_a_run_folder_without_checkpoint_is_started_again(capsys, tiny_run_copy):
    for name in ("checkpoint.safetensors", "model.safetensors", "history.csv"):
        (tiny_run_copy / name).unlink()  # as after a kill before the first checkpoint
    stale = tiny_run_copy / ".zspace-tmp-abc123"  # a write the kill interrupted: zspace's temp, with its proof
    stale.mkdir()
    (stale / ".zspace-temp").write_text('{"zspace": "temp", "pid": 1}')
    (stale / "data").write_bytes(b"half")
    code, err = cli(capsys, *train(tiny_run_copy.parent, "d"))
    assert code == 0, err
    assert (tiny_run_copy / "checkpoint.safetensors").is_file()
    for name in ("checkpoint.safetensors", "model.safetensors"):
        (tiny_run_copy / name).unlink()
    code, err = cli(capsys, *train(tiny_run_copy.parent, "d", "--resume"))
    assert code == 0, err
    assert not stale.exists()


# --- the file system: a real full tmpfs and a real read-only mount ------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        reason = f"mounting a tmpfs was refused ({proc.stderr.decode().strip() or 'not root'})"
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def sub_cli(*argv: str, cwd: Path | None = None) -> tuple[int, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "zspace", "-q", *argv], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)  # fmt: skip
    return proc.returncode, proc.stderr


def assert_one_line(code: int, err: str, needle: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert needle in lines[0], lines[0]


def fill(path: Path, leave: int) -> None:
    free = shutil.disk_usage(path).free
    with (path / "ballast").open("wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_a_full_disk_during_training_keeps_the_last_checkpoint(tmp_path, tiny_run):
    with tmpfs(tmp_path / "mnt", "8m") as mnt:
        shutil.copytree(tiny_run, mnt / "d")
        before = tree(mnt / "d")
        fill(mnt, leave=4096)
        code, err = sub_cli(*train(mnt, "d", "--resume", "--epochs", "3"))
        assert_one_line(code, err, "No space left on device")
        after = tree(mnt / "d")
        assert after["checkpoint.safetensors"] == before["checkpoint.safetensors"]
        assert after["model.safetensors"] == before["model.safetensors"]
        assert not [p for p in (mnt / "d").iterdir() if p.name.endswith(".tmp")]
        code, err = sub_cli("embed", str(mnt / "d"), "--out", str(mnt / "lat"))
        assert_one_line(code, err, "free")  # refused before the memory map could fault
        assert not (mnt / "lat").exists()


def test_a_read_only_folder_is_one_line_and_changes_nothing(tmp_path, tiny_run):
    with tmpfs(tmp_path / "mnt", "16m") as mnt:
        shutil.copytree(tiny_run, mnt / "d")
        before = tree(mnt / "d")
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)]).returncode == 0
        for argv, needle in [
            (train(mnt, "d", "--resume", "--epochs", "2"), "Read-only file system"),
            (train(mnt, "e"), "Read-only file system"),
            (["analyze", str(mnt / "d"), "--only", "radius"], "Read-only file system"),
        ]:
            code, err = sub_cli(*argv)
            assert_one_line(code, err, needle)
        assert tree(mnt / "d") == before


def test_a_one_dimensional_model_through_the_full_analysis(capsys, tmp_path):
    out = tmp_path / "runs"
    code, err = cli(capsys, "train", DIGITS, "--out-dir", str(out), "--name", "z1", "--epochs", "1",
                    "--set", "model.z_dim=1", "--set", "model.filters=[8, 16]")  # fmt: skip
    assert code == 0, err
    code, err = cli(
        capsys, "analyze", str(out / "z1"), "--set", "tsne.sizes=[200]", "--set", "tsne.n_iter=30",
        "--set", "elbow.k_max=6", "--set", "manifold.max_points=300", "--set", "tsne.pca_components=[2]",
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((out / "z1" / "analysis" / "metrics.json").read_text())
    assert metrics["source"]["z_dim"] == 1


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("-64\t-56\t-61\t-66\t-71\t-82\t-81\t70368744177664", "room 70368744177664"),
        ("-64\t-56\t-61\t-66\t-71\t-82\t-81\t99999999999999999999999999", "room"),
        ("-64\t-56\t-61\t-66\t-71\t-82\t-10000000000000\t1", "signal strength"),
    ],
)
def test_a_wifi_file_with_huge_integers(capsys, tmp_path, row, needle):
    path = tmp_path / "wifi.txt"
    path.write_text("-64\t-56\t-61\t-66\t-71\t-82\t-81\t1\n" + row + "\n")
    line = refused(capsys, "study", "wifi", "--data", str(path), "--out", str(tmp_path / "s"), "--quick", needle=needle)
    assert "wifi.txt:2" in line
    assert not (tmp_path / "s").exists()


def test_batches_and_maps_the_machine_cannot_hold_are_refused_before_allocating(monkeypatch):
    from zspace.config import ModelConfig
    from zspace.errors import ConfigError
    from zspace.io import limits
    from zspace.models import activation_floats, check_batch_size
    from zspace.sections import tsne

    m = ModelConfig(kind="vae", z_dim=256, image_size=96, channels=3)
    # 96x96x3 through filters 32..256 with stride 2: 32*48^2 + 64*24^2 + 128*12^2 + 256*6^2 = 138,240 per image
    assert activation_floats(m) == 2 * 138_240 + 2 * 3 * 96 * 96 + 4 * 256
    monkeypatch.setattr(limits, "available_memory", lambda: 10 * 2**30)
    check_batch_size(m, 128, "train.batch_size")  # the series' batch: ~0.5 GB
    with pytest.raises(ConfigError, match=r"train.batch_size: a batch of 1,000,000 images"):
        check_batch_size(m, 1_000_000, "train.batch_size")
    with pytest.raises(ConfigError, match=r"tsne\.sizes"):
        limits.check_memory(tsne._tsne_bytes(50_000_000, 256, tsne.Config()), "tsne.sizes", "a map")


def test_two_processes_training_one_run_name(tmp_path):
    """The second `zspace train` of a run name refuses while the first trains; a SIGKILL releases the lock."""
    import signal
    import time

    out = tmp_path / "runs"
    first = subprocess.Popen([sys.executable, "-m", "zspace", "-q", *train(out, "d"), "--epochs", "500"],
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "d" / "checkpoint.safetensors").is_file():
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "the first run wrote no checkpoint in 120 s"
            time.sleep(0.2)
        code, err = sub_cli(*train(out, "d", "--overwrite"))
        assert_one_line(code, err, "being trained")
        assert first.poll() is None  # the first run trains on, untouched
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    done = len((out / "d" / "history.csv").read_text().strip().splitlines()) - 1  # epochs the checkpoint holds
    code, err = sub_cli(*train(out, "d", "--resume", "--epochs", str(done + 1)))
    assert code == 0, err


def test_run_files_are_readable_by_the_group(tiny_run):
    old = os.umask(0o022)
    os.umask(old)
    for name in ("config.json", "model.safetensors", "checkpoint.safetensors", "history.csv", "data.json"):
        mode = (tiny_run / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~old, (name, oct(mode))


def jpeg_folder(path: Path, n: int, seed: int = 0) -> Path:
    from PIL import Image

    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (109, 89, 3), dtype=np.uint8)).save(path / f"{i:06d}.jpg", quality=80)
    return path


def test_a_cache_build_on_a_nearly_full_disk_is_one_line(tmp_path):
    folder = jpeg_folder(tmp_path / "faces", 40)
    with tmpfs(tmp_path / "cache", "1m") as cache:  # 40 x 96 x 96 x 3 = 1.1 MB: it cannot fit
        code, err = sub_cli("train", str(ROOT / "configs" / "celeba-ae.toml"), "--data", str(folder), "--out-dir",
                            str(tmp_path / "runs"), "--set", "data.name='images'", "--set",
                            f"data.cache_dir={str(cache)!r}", "--epochs", "1")  # fmt: skip
        assert_one_line(code, err, "is free")
        assert list(cache.iterdir()) == []  # no half cache
    assert not (tmp_path / "runs").exists()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_a_killed_cache_build_leaves_no_decoding_workers(tmp_path):
    import signal
    import time

    folder = jpeg_folder(tmp_path / "faces", 1500)
    code = (
        "import sys; from zspace.data.cache import cached_images, list_relpaths; r = sys.argv[1]; "
        "cached_images(r, list_relpaths(r), dataset='images', size=96, cache_dir=sys.argv[2], workers=2)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), str(tmp_path / "cache")])
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        workers |= {c for c in _children(proc.pid) if "zspace" in _cmdline(c) or "multiprocessing" in _cmdline(c)}
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed: use more images"
    assert workers, "no decoding worker was seen"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{w}").exists() and _state(w) != "Z" for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [w for w in workers if Path(f"/proc/{w}").exists() and _state(w) != "Z"]
    assert alive == [], f"decoding workers {alive} outlived their killed parent"
    entries = list((tmp_path / "cache").glob("images-*"))
    assert entries == []  # only a temporary folder, never a valid-looking entry


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (OSError, IndexError):
        return "X"


def test_embed_removes_what_a_killed_embed_left(capsys, tiny_run_copy):
    stale = tiny_run_copy / "latents" / ".zspace-tmp-abc123"  # zspace's temp name, with its proof inside
    stale.mkdir(parents=True)
    (stale / ".zspace-temp").write_text('{"zspace": "temp", "pid": 1}')
    (stale / "z.npy").write_bytes(b"half")
    code, err = cli(capsys, "embed", str(tiny_run_copy))
    assert code == 0, err
    assert not stale.exists()
    assert (tiny_run_copy / "latents" / "all" / "z.npy").is_file()


def test_ctrl_c_during_training_exits_130_with_a_resumable_checkpoint(tmp_path):
    import signal
    import time

    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "zspace", "-q", *train(out, "d"), "--epochs", "500"],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "d" / "checkpoint.safetensors").is_file():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["zspace: interrupted; a run continues from its last checkpoint with --resume"]
    assert "Traceback" not in err
    epochs = len(runs_history(out / "d"))  # finished epochs; the checkpoint may hold a part of the next
    code, err = sub_cli(*train(out, "d", "--resume", "--epochs", str(epochs + 1)))
    assert code == 0, err
    assert len(runs_history(out / "d")) == epochs + 1


def runs_history(run: Path) -> list:
    from zspace.runs.folder import read_history

    return read_history(run)


# --- freshness and checkpoint integrity (issue 16, part 4) ---------------------------------------------------------


def test_analyze_after_resume_reencodes_the_stale_latents_and_says_so(capsys, tiny_run_copy, tmp_path):
    assert cli(capsys, "embed", str(tiny_run_copy))[0] == 0
    stale = np.load(tiny_run_copy / "latents" / "all" / "mu.npy")
    assert cli(capsys, *train(tiny_run_copy.parent, "d", "--resume", "--epochs", "3"))[0] == 0
    code, err = cli(capsys, "analyze", str(tiny_run_copy), "--only", "radius")
    assert code == 0, err
    metrics = json.loads((tiny_run_copy / "analysis" / "metrics.json").read_text())
    assert metrics["source"]["freshness"] == "latents were encoded by epoch 1's weights; re-encoded with epoch 3's"
    assert cli(capsys, "embed", str(tiny_run_copy), "--out", str(tmp_path / "fresh"))[0] == 0
    used = np.load(tiny_run_copy / "latents" / "all" / "mu.npy")
    assert np.allclose(used, np.load(tmp_path / "fresh" / "mu.npy"))  # what a fresh encoding gives
    assert not np.allclose(used, stale)


def test_a_renamed_runs_latents_never_decode_with_the_run_now_at_its_old_path(capsys, tiny_run_copy, tmp_path):
    lat = tmp_path / "lat"
    assert cli(capsys, "embed", str(tiny_run_copy), "--out", str(lat))[0] == 0
    tiny_run_copy.rename(tiny_run_copy.parent / "renamed")
    assert cli(capsys, *train(tiny_run_copy.parent, "d"))[0] == 0  # another run where the first one was
    refused(capsys, "analyze", str(lat), needle="is another run")
    assert not (lat / "analysis").exists()


def _hostile_edit(kind: str):
    def change(tensors, meta):
        if kind in ("row", "epoch"):
            p = json.loads(meta["progress"])
            if kind == "row":
                p["history"].append({**p["history"][-1], "epoch": 2, "total": 0.001})
            else:
                p["epoch"] = 1000
            meta["progress"] = json.dumps(p)
        elif kind == "lr":
            groups = json.loads(meta["param_groups"])
            groups[0]["lr"] = "fast"
            meta["param_groups"] = json.dumps(groups)
        else:
            keys = sorted(tensors)
            if kind == "no-weights":
                for k in [k for k in keys if k.startswith("model/")]:
                    del tensors[k]
            elif kind == "nan":
                tensors[next(k for k in keys if k.startswith("model/") and k.endswith("weight"))].view(-1)[0] = np.nan
            else:  # a negative Adam step
                tensors[next(k for k in keys if k.endswith("/step"))].fill_(-5)

    return change


HOSTILE_CHECKPOINTS = {
    "row": "holds 2 history rows but only 1 finished epochs",
    "epoch": "is at epoch 1000, beyond train.epochs = 2",
    "no-weights": "holds no model weights",
    "nan": "holds non-finite weights in",
    "lr": "optimizer 'lr' must be a finite number > 0, got 'fast'",
    "adam-step": "Adam step optim/",
}


@pytest.mark.parametrize("checksum", ["kept", "stripped"])
@pytest.mark.parametrize("kind", sorted(HOSTILE_CHECKPOINTS))
def test_a_hand_edited_checkpoint_is_one_line(capsys, tiny_run_copy, kind, checksum):
    def change(tensors, meta):
        _hostile_edit(kind)(tensors, meta)
        if checksum == "stripped":  # as a checkpoint from before checksums: the state itself is checked
            meta.pop("sha256")

    edit_checkpoint(tiny_run_copy / "checkpoint.safetensors", change)
    before = tree(tiny_run_copy)
    needle = "edited or corrupt (checksum mismatch)" if checksum == "kept" else HOSTILE_CHECKPOINTS[kind]
    line = refused(capsys, *train(tiny_run_copy.parent, "d", "--resume", "--epochs", "2"), needle=needle)
    assert "checkpoint.safetensors" in line
    assert tree(tiny_run_copy) == before


def test_nonfinite_weights_are_refused_not_drawn_as_blank_grids(capsys, tiny_run_copy):
    def change(tensors, meta):
        tensors[next(k for k in sorted(tensors) if k.endswith("weight"))].view(-1)[0] = np.inf
        meta.pop("sha256")

    edit_checkpoint(tiny_run_copy / "model.safetensors", change)
    refused(capsys, "sample", str(tiny_run_copy), needle="holds non-finite weights in")
    refused(capsys, "analyze", str(tiny_run_copy), needle="holds non-finite weights in")
    assert not (tiny_run_copy / "generated").exists()
    assert not (tiny_run_copy / "analysis").exists()


def test_a_run_without_weights_gets_them_back_from_its_checkpoint_on_resume(capsys, tiny_run_copy):
    (tiny_run_copy / "model.safetensors").unlink()
    assert cli(capsys, *train(tiny_run_copy.parent, "d", "--resume"))[0] == 0  # nothing left to train
    assert cli(capsys, "embed", str(tiny_run_copy))[0] == 0


# --- one ownership rule (issue 16, part 1): nothing deleted that a zspace manifest does not record ------------------


def test_embed_out_a_project_holding_a_meta_json_keeps_the_project(capsys, tiny_run, tmp_path):
    mine = tmp_path / "myproject"
    (mine / "code").mkdir(parents=True)
    (mine / "meta.json").write_text('{"title": "my project"}')
    (mine / "thesis.pdf").write_bytes(b"%PDF years of work")
    (mine / "code" / "main.py").write_text("print(1)\n")
    before = tree(mine)
    refused(capsys, "embed", str(tiny_run), "--out", str(mine), needle="not a zspace latents folder")
    assert tree(mine) == before


@pytest.mark.parametrize("inside", ["analysis/mine.txt", "latents/all/mine.npy", ".notes.tmp-v2", ".x.old-2019"])
def test_overwrite_keeps_user_files_inside_zspace_named_subfolders(capsys, tiny_run_copy, inside):
    assert cli(capsys, "analyze", str(tiny_run_copy), "--only", "radius")[0] == 0
    assert cli(capsys, "embed", str(tiny_run_copy))[0] == 0
    (tiny_run_copy / inside).parent.mkdir(parents=True, exist_ok=True)
    (tiny_run_copy / inside).write_text("the user's")
    before = tree(tiny_run_copy.parent)
    refused(capsys, *train(tiny_run_copy.parent, "d", "--overwrite"), needle=inside)
    assert tree(tiny_run_copy.parent) == before


def test_embed_split_all_keeps_a_user_file_in_the_latents_folder(capsys, tiny_run_copy):
    assert cli(capsys, "embed", str(tiny_run_copy), "--split", "all")[0] == 0
    (tiny_run_copy / "latents" / "all" / "mine.npy").write_bytes(b"my array")
    before = tree(tiny_run_copy)
    refused(capsys, "embed", str(tiny_run_copy), "--split", "all", needle="latents/all/mine.npy")
    assert tree(tiny_run_copy) == before


@pytest.mark.parametrize(("name", "beside"), [("?otes", ".notes.tmp-v2"), ("*", ".thesis.tmp-final"),
                                              ("*", ".photos.old-2019"), ("[.]notes", ".notes.tmp-v2")])  # fmt: skip
def test_a_run_name_with_glob_characters_deletes_nothing_beside_it(capsys, tmp_path, name, beside):
    out = tmp_path / "runs"
    (out / beside).mkdir(parents=True)
    (out / beside / "kept.txt").write_text("the user's")
    before = tree(out)
    for extra in ((), ("--overwrite",)):
        code, err = cli(capsys, *train(out, name, *extra))
        assert code in (0, 2), err
        assert code == 0 or len(err.strip().splitlines()) == 1, err
        assert {k: v for k, v in tree(out).items() if k in before} == before


def test_latents_and_image_cache_folders_follow_the_umask(capsys, tiny_run_copy, tmp_path):
    from PIL import Image

    from zspace.config import DataConfig
    from zspace.data import load_dataset

    for i in range(3):
        Image.new("RGB", (6, 6), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
    old = os.umask(0o022)
    try:
        assert cli(capsys, "embed", str(tiny_run_copy), "--out", str(tmp_path / "lat"))[0] == 0
        cfg = DataConfig(name="images", path=str(tmp_path), cache_dir=str(tmp_path / "cache"), image_size=4, workers=1)
        entry = Path(load_dataset(cfg).source["cache"])
    finally:
        os.umask(old)
    assert (tmp_path / "lat").stat().st_mode & 0o777 == 0o755
    assert entry.stat().st_mode & 0o777 == 0o755


def test_a_users_dot_lock_file_beside_the_runs_is_untouched(capsys, tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    (out / ".notes.lock").write_text("my lock notes")  # the old lock's name for a run called notes
    assert cli(capsys, *train(out, "notes"))[0] == 0
    assert (out / ".notes.lock").read_text() == "my lock notes"
    assert sorted(p.name for p in out.iterdir()) == [".notes.lock", "notes"]


@pytest.mark.parametrize(
    ("z", "needle"),
    [
        (np.array([["a", "b"], ["c", "d"]]), "z must be a real-valued"),
        (np.ones((3, 2)) * 1j, "z must be a real-valued"),
        (np.ones((3, 2), dtype=bool), "z must be a real-valued"),
        ([[1.0, 2.0], [3.0]], "z is not an array"),
        ({"z": 1}, "not a numeric array"),
        (np.arange(5.0), "z must be a numeric (n_samples >= 1, z_dim >= 1)"),
        (np.zeros((0, 3)), "z must be a numeric (n_samples >= 1, z_dim >= 1)"),
        (np.zeros((2, 2, 2)), "z must be a numeric (n_samples >= 1, z_dim >= 1)"),
        (np.full((4, 2), np.nan), "no finite row is left"),
        (None, "no latents given"),
    ],
)
def test_python_api_refuses_bad_arrays_in_one_line(z, needle):
    import zspace
    from zspace.errors import ZSpaceError

    with pytest.raises(ZSpaceError) as info:
        zspace.analyze(z, only="radius")
    assert needle in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_report_save_never_overwrites_a_users_file(tmp_path):
    import zspace
    from zspace.errors import ConfigError

    (tmp_path / "report.html").write_text("my page")
    report = zspace.analyze(np.eye(4) * 2.0, only="radius")
    with pytest.raises(ConfigError, match="was not written by this kind of zspace report"):
        report.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    assert (tmp_path / "report.html").read_text() == "my page"


def test_python_api_explore_on_a_busy_port_is_one_line():
    import socket

    import zspace
    from zspace.errors import ConfigError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            zspace.explore(np.eye(4), port=port)


def test_threads_100000_is_capped_at_the_core_count_not_passed_to_torch():
    from zspace.io.limits import machine_cores, usable_threads

    cores = machine_cores()
    n, note = usable_threads(100000)
    assert n == cores
    assert "capped at" in note


def test_elbow_k_max_far_beyond_the_machine_is_refused_in_seconds():
    from zspace.analyses.elbow import elbow_curve
    from zspace.errors import ConfigError

    X = np.random.default_rng(0).normal(size=(1797, 64)).astype(np.float32)
    with pytest.raises(ConfigError, match=r"^elbow.ks: .* k-means fits would take about"):
        elbow_curve(X, range(1, 1798), restarts=3)


def test_sample_n_beyond_memory_is_one_line_before_loading(monkeypatch, tmp_path, capsys):
    from zspace.cli.main import main
    from zspace.io import limits

    monkeypatch.setattr(limits, "available_memory", lambda: 2**30)
    assert main(["sample", str(tmp_path / "no-such-run"), "--n", "100000"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--n: a grid of 100000 decoded images would need" in err


def test_decode_n_probes_beyond_memory_is_refused_before_decoding(monkeypatch):
    from zspace.errors import ConfigError
    from zspace.io import limits
    from zspace.sections import decode

    monkeypatch.setattr(limits, "available_memory", lambda: 2**30)
    cfg = decode.Config(n_probes=100000)
    with pytest.raises(ConfigError, match=r"^decode.n_probes: grids of 100000 decoded probes would need"):
        decode._probe_sets(cfg, 4, 1.0, np.random.default_rng(0))


def test_fashion_like_idx_data_is_not_checked_against_mnist(tmp_path):
    """Issue 16, part 6: another dataset in MNIST's file format got "raw MNIST pixels" and MNIST's targets."""
    sys.path.insert(0, str(Path(__file__).parent / "report"))
    from test_data_aware import TINY, write_idx

    from zspace.studies import run_study

    out = tmp_path / "out"
    m = run_study("mnist-kmeans", data=str(write_idx(tmp_path / "fashion")), out=out, quick=True, sets=TINY)
    html = (out / "report.html").read_text()
    assert m["targets"] == {}
    assert "MNIST pixels" not in html
    assert "raw pixels of fashion" in html


# ---- issue 16, part 2: options checked by declaration ------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1e3", "nan"])
@pytest.mark.parametrize("command", ["train", "sample", "reconstruct", "interpolate", "quality", "analyze", "embed"])
def test_seed_outside_0_to_2_32_is_one_line_and_leaves_no_folder(command, seed, tmp_path, monkeypatch, capsys):
    """``--seed -1`` or above 2^32 was a traceback (train also left a run folder behind)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text('[data]\nname = "digits"\n')
    before = sorted(tmp_path.rglob("*"))
    target = "c.toml" if command == "train" else "somerun"
    assert main([command, target, "--seed", seed]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--seed must be" in err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_study_seed_outside_0_to_2_32_is_one_line(seed, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["study", "mnist-kmeans", "--seed", seed]) == 2
    assert "--seed must be in [0, 4294967295]" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("model.z_dim=1e20", "'model.z_dim' must be int"),
        ("model.z_dim=1000000000", "'model.z_dim': must be in [1, 65536]"),
        ("train.seed=-1", "'train.seed': must be in [0, 4294967295]"),
        ("train.epochs=1000001", "'train.epochs': must be in [1, 100000]"),
        ("model.filters=[8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8]", "'model.filters': must be of length 1 to 16"),
    ],
)
def test_unbounded_run_options_are_one_line(setting, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text('[data]\nname = "digits"\n')
    assert main(["train", "c.toml", "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert needle in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


@pytest.mark.parametrize(
    ("study", "setting", "needle"),
    [
        ("mnist-kmeans", "accuracy_ks=[0]", "'accuracy_ks': each value must be in [1, 100000], got 0"),
        ("mnist-kmeans", "limit=-1", "'limit': must be in [0, 2147483647], got -1"),
        ("mnist-latent", 'algorithms=["elkan"]', "each value must be one of minibatch, lloyd, got 'elkan'"),
        ("wifi", 'algorithm="elkan"', "'algorithm': must be one of lloyd, minibatch"),
        ("mnist-kmeans", "tsne_points=1", "'tsne_points': must be in [2, 1000000]"),
        ("mnist-latent", "ks=[]", "'ks': must be of length 1 to 64"),
        ("encoder-size", "speed_steps=0", "'speed_steps': must be in [1, 100000]"),
        ("wifi", "splits=1e22", "'splits' must be int"),
        ("mnist-latent", 'tsne_map_models=["vea"]', "'tsne_map_models': each value must be one of ae, vae"),
        ("mnist-latent", 'models=["vae"]', "tsne_map_models: ['ae'] not among the trained models ['vae']"),
    ],
)
def test_study_options_once_ignored_or_remapped_are_one_line(study, setting, needle, tmp_path, monkeypatch, capsys):
    """accuracy_ks=[0] fitted k=50 labelled 0, limit=-1 dropped one image, an unknown algorithm ran Lloyd."""
    monkeypatch.chdir(tmp_path)
    assert main(["study", study, "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert needle in err
    assert list(tmp_path.iterdir()) == []


# ---- issue 16: small gaps (quality near chance, latent files, counts, explorer colours) --------------------------


def test_quality_warns_when_the_feature_net_is_near_chance(tiny_run, tmp_path, monkeypatch, capsys):
    """A feature net at chance accuracy gave an FID without a word; now one warning line and a 'warning' key."""
    import dataclasses

    from zspace.latents import feature_net

    real_train = feature_net.train_feature_net
    monkeypatch.setattr(
        feature_net, "train_feature_net", lambda data, cfg, **kw: real_train(data, dataclasses.replace(cfg, epochs=0))
    )
    monkeypatch.setenv("ZSPACE_CACHE_DIR", str(tmp_path / "cache"))
    capsys.readouterr()
    code = main(["-q", "quality", str(tiny_run), "--n", "20", "--real", "20", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("zspace: warning: ")]
    assert len(warnings) == 1, err
    assert "near chance" in warnings[0]
    assert "near chance" in json.loads(out)["warning"]


def test_chance_accuracy_is_the_best_constant_guess():
    from types import SimpleNamespace

    from zspace.latents.feature_net import NEAR_CHANCE_GAIN, chance_accuracy, chance_warning

    labels = np.array([0, 1, 1, 1, 2, 2, 0, 1])  # test rows 4..7: classes 2, 2, 0, 1 -> commonest share 0.5
    data = SimpleNamespace(labels=labels, attributes=None, name="t", indices=lambda split: np.arange(4, 8))
    assert chance_accuracy(data) == 0.5
    bar = 0.5 + NEAR_CHANCE_GAIN * 0.5
    assert chance_warning(SimpleNamespace(info={"test_accuracy": bar - 0.01}), data) is not None
    assert chance_warning(SimpleNamespace(info={"test_accuracy": bar + 0.01}), data) is None
    attrs = np.array([[1, -1], [1, 0], [-1, -1], [1, -1]])  # col 0: 3 of 4 positive; col 1: 3 of 3 known negative
    data = SimpleNamespace(labels=None, attributes=attrs, name="t", indices=lambda split: np.arange(4))
    assert chance_accuracy(data) == pytest.approx(6 / 7)


def test_hostile_class_names_files(tmp_path, capsys):
    """--class-names: a folder, a NUL byte or a wrong count is exit 2 with one line and no report; markup in a
    name is shown as text, never run."""
    lat = tmp_path / "lat"
    lat.mkdir()
    np.save(lat / "z.npy", np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32))
    np.save(lat / "labels.npy", np.arange(30, dtype=np.int64) % 2)
    out = tmp_path / "report"
    args = ["-q", "analyze", str(lat), "--only", "pca", "--out", str(out), "--class-names"]
    bad = [tmp_path, tmp_path / "nul.txt", tmp_path / "three.txt"]
    bad[1].write_bytes(b"a\x00\nb\n")
    bad[2].write_text("a\nb\nc\n")
    for names in bad:
        capsys.readouterr()
        assert main([*args, str(names)]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not out.exists()
    markup = tmp_path / "markup.txt"
    markup.write_text("<script>alert(1)</script>\n<img src=x onerror=alert(2)>\n", encoding="utf-8")
    assert main([*args, str(markup)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _hostile_npy(folder: Path) -> dict[str, Path]:
    """.npy files no zspace command may load: pickled objects, text, truncated, a bare header, empty, strings."""
    folder.mkdir(exist_ok=True)
    good = folder / "good.npy"
    np.save(good, np.zeros((4, 4), np.float32))
    raw = good.read_bytes()
    files = {name: folder / f"{name}.npy" for name in ("object", "text", "truncated", "header", "empty", "strings")}
    np.save(files["object"], np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    files["text"].write_text("hello\n1 2 3\n")
    files["truncated"].write_bytes(raw[:-10])
    files["header"].write_bytes(raw[:20])
    files["empty"].write_bytes(b"")
    np.save(files["strings"], np.array([["a", "b", "c", "d"]] * 4))
    return files


@pytest.mark.parametrize("kind", ["object", "text", "truncated", "header", "empty", "strings"])
def test_interpolate_z_and_reconstruct_images_refuse_bad_npy_in_one_line(kind, tiny_run, tmp_path, capsys):
    """``interpolate --z`` on an object, corrupt or text .npy was a traceback."""
    path = _hostile_npy(tmp_path / "npy")[kind]
    out = tmp_path / "o.png"
    refused(capsys, "interpolate", str(tiny_run), "--z", str(path), "--out", str(out), needle=f"--z: {path}")
    refused(capsys, "reconstruct", str(tiny_run), "--images", str(path), "--out", str(out), needle="--images: ")
    assert not out.exists()


# ---- issue 19: tables as embeddings (Parquet, Arrow/Feather, CSV) -----------------------------------------------


def _hostile_table(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    table = pa.table(columns)
    writers = {".parquet": pq.write_table, ".feather": feather.write_feather, ".csv": pcsv.write_csv}
    writers[path.suffix](table, path)


@pytest.mark.parametrize(
    ("name", "columns", "extra", "needle"),
    [
        ("t.parquet", {"v": [[1.0, 2.0], [3.0, 4.0, 5.0]]}, [], "ragged"),  # vectors of two lengths
        ("t.csv", {"who": ["a", "b"], "what": ["c", "d"]}, [], "no numeric column"),  # text only
        ("t.feather", {"v": [[1.0, 2.0], [3.0, 4.0]]}, ["--labels", "kind"], "no column 'kind'"),  # a typo
        ("t.parquet", {"v": [[1.0, 2.0]], "w": [[3.0, 4.0]]}, [], "choose one with --column"),  # two embeddings
    ],
)
def test_hostile_tables_are_one_line_and_write_nothing(capsys, tmp_path, name, columns, extra, needle):
    path = tmp_path / name
    _hostile_table(path, columns)
    refused(capsys, "analyze", str(path), "--only", "radius", *extra, needle=needle)
    assert not (tmp_path / "t-analysis").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["reconstruct", "no-such-run", "--n", "1000000000000"], "--n: a grid of 1000000000000 images"),
        (["interpolate", "no-such-run", "--steps", "1000000000000"], "--steps: 4 paths of 1000000000000 decoded"),
        (["interpolate", "no-such-run", "--pairs", "1000000000000"], "--pairs: 1000000000000 paths of 10 decoded"),
    ],
)
def test_reconstruct_and_interpolate_counts_beyond_memory_are_refused_before_loading(argv, needle, tmp_path, capsys):
    """``reconstruct --n`` and ``interpolate --steps/--pairs`` had no bound (``sample --n`` had one); the refusal
    comes before the run is looked for, so a missing run folder is not what it names."""
    refused(capsys, *argv, "--out", str(tmp_path / "o.png"), needle=needle)
    assert list(tmp_path.iterdir()) == []


def test_interpolate_z_with_too_many_paths_is_refused(tiny_run, tmp_path, capsys):
    z = tmp_path / "ends.npy"
    np.save(z, np.zeros((2_000_000, 4), np.float32))  # 1,000,000 paths of 10 images: far beyond any memory
    refused(
        capsys, "interpolate", str(tiny_run), "--z", str(z), "--out", str(tmp_path / "o.png"), needle="--z: 1000000"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ends.npy"]


def _explorer_client(tmp_path: Path, labels, **kw):
    from starlette.testclient import TestClient

    from zspace.explore import Explorer, create_app

    points = np.random.default_rng(0).normal(size=(len(labels), 3))
    return TestClient(create_app(Explorer(points, labels=np.asarray(labels), tsne_cache=tmp_path, **kw)))


def test_explorer_colours_labels_as_large_as_1e9_without_sizing_by_the_value(tmp_path):
    """Colouring by labels holding 1e9 built a name per value up to 1e9: killed by the kernel at 24 GB."""
    import base64
    import tracemalloc

    client = _explorer_client(tmp_path, [7, 1_000_000_000, -3, 7, 1_000_000_000], label_names=["a"] * 8)
    tracemalloc.start()
    response = client.get("/api/colours?by=label")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert response.status_code == 200
    body = response.json()
    assert body["names"] == ["-3", "a", "1000000000"]  # ranked distinct values; label 7 has a given name
    assert body["dtype"] == "uint8"
    assert np.frombuffer(base64.b64decode(body["codes"]), np.uint8).tolist() == [1, 2, 0, 1, 2]
    assert peak < 20 * 2**20


def test_explorer_unknown_colouring_is_a_4xx_one_line_json(tmp_path):
    client = _explorer_client(tmp_path, [0, 1, 1, 0])
    response = client.get("/api/colours?by=Blond_Hair")
    assert 400 <= response.status_code < 500
    assert list(response.json()) == ["error"]
    assert "unknown colouring 'Blond_Hair'" in response.json()["error"]
    assert "\n" not in response.json()["error"]


@pytest.mark.parametrize(("name", "suggested"), [("Blond", "Blond_Hair"), ("smiling", "Smiling"), ("xyzzy", "Male")])
def test_celeba_study_unknown_attribute_is_one_line_naming_known_ones(name, suggested, tmp_path, monkeypatch, capsys):
    """An unknown attribute name coloured the study's t-SNE maps by nothing, without a word."""
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, "study", "celeba-ae-vs-vae", "--set", f"attribute={name!r}", needle="unknown celeba attr")
    assert f"{name!r}" in line
    assert suggested in line
    assert list(tmp_path.iterdir()) == []


def test_report_colours_labels_as_large_as_1e9_by_rank():
    """The reports' colouring named every value up to the largest label: 1e9 strings for a label of 1e9."""
    from types import SimpleNamespace

    from zspace.sections.base import Context

    lat = SimpleNamespace(labels=np.array([5, 1_000_000_000, -2, 5]), attributes=None, meta={"label_names": ["x"] * 6})
    codes, names = Context(latents=lat).colors("label")
    assert codes.tolist() == [1, 2, 0, 1]
    assert names == ["-2", "x", "1000000000"]
    small = SimpleNamespace(labels=np.array([2, 0, 2]), attributes=None, meta={})
    codes, names = Context(latents=small).colors("label")
    assert codes.tolist() == [2, 0, 2]
    assert names == ["0", "1", "2"]  # small labels keep their values as codes, absent classes named


def test_feature_net_classes_are_the_distinct_labels_not_range_of_the_largest():
    """Labels holding 1e9 made the quality measure's classifier 1e9 outputs wide."""
    from types import SimpleNamespace

    from zspace.latents.feature_net import _targets

    data = SimpleNamespace(labels=np.array([1_000_000_000, 3, 3, -1]), attributes=None, name="t")
    what, n_out, y = _targets(data)
    assert (what, n_out) == ("3 class labels", 3)
    assert y.tolist() == [2, 1, 1, 0]


# ---- issue 19: every new input format, through every command that reads one ------------------------------------


def _bad_source(folder: Path, kind: str) -> Path:
    """One hostile file (or folder) per format the resolver reads; each must be refused before anything is written."""
    folder.mkdir(exist_ok=True)
    if kind == "npy-1d":
        np.save(path := folder / "x.npy", np.zeros(5, np.float32))
    elif kind == "npy-all-nan":
        np.save(path := folder / "x.npy", np.full((4, 3), np.nan, np.float32))
    elif kind == "npz-no-z":
        np.savez(path := folder / "x.npz", w=np.zeros((3, 2)))
    elif kind == "npz-pickled":
        np.savez(path := folder / "x.npz", z=np.array([[1.0], None], dtype=object))  # loading would unpickle
    elif kind == "safetensors-corrupt":
        (path := folder / "x.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    elif kind == "parquet-ragged":
        _hostile_table(path := folder / "x.parquet", {"v": [[1.0, 2.0], [3.0, 4.0, 5.0]]})
    elif kind == "csv-text":
        _hostile_table(path := folder / "x.csv", {"who": ["a", "b"]})
    elif kind == "arrow-empty":
        _hostile_table(path := folder / "x.feather", {"v": pa_empty_list_column()})
    elif kind == "folder-labels-mismatch":  # a latents folder without index.npy whose labels do not match z
        (path := folder / "lat").mkdir()
        np.save(path / "z.npy", np.zeros((6, 2), np.float32))
        np.save(path / "labels.npy", np.zeros(5, np.int64))
    elif kind == "npy-complex":  # its imaginary part was dropped with a ComplexWarning
        np.save(path := folder / "x.npy", np.ones((6, 3), np.complex64) * (1 + 1j))
    elif kind == "npy-huge":  # finite, but its squares overflow: a traceback from the radius histogram
        np.save(path := folder / "x.npy", np.full((6, 3), 1e300))
    elif kind == "npz-float-labels":  # labels were truncated to ints, NaN became -2^63
        np.savez(path := folder / "x.npz", z=np.ones((6, 3), np.float32), labels=np.full(6, np.nan))
    elif kind == "npz-text-labels":  # a traceback (int() of 'a')
        np.savez(path := folder / "x.npz", z=np.ones((6, 3), np.float32), labels=np.array(["a", "b"] * 3))
    else:
        raise AssertionError(kind)
    return path


def pa_empty_list_column():
    import pyarrow as pa

    return pa.array([], type=pa.list_(pa.float32()))


BAD_SOURCES = [
    "npy-1d", "npy-all-nan", "npz-no-z", "npz-pickled", "safetensors-corrupt", "parquet-ragged", "csv-text",
    "arrow-empty", "folder-labels-mismatch", "npy-complex", "npy-huge", "npz-float-labels", "npz-text-labels",
]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_SOURCES)
def test_every_new_format_refused_alike_by_analyze_compare_export_and_explore(kind, tmp_path, capsys, monkeypatch):
    """The one resolver serves all four commands: a hostile input of any format is the same kind of one line in
    each, and none of them writes a file (the explorer never starts serving)."""
    import zspace.explore

    monkeypatch.setattr(zspace.explore, "serve", lambda *a, **k: pytest.fail("the explorer served a hostile input"))
    bad = _bad_source(tmp_path / "in", kind)
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32))
    before = tree(tmp_path)
    lines = [
        refused(capsys, "analyze", str(bad), "--only", "radius", "--out", str(tmp_path / "a")),
        refused(capsys, "compare", str(good), str(bad), "--only", "radius", "--out", str(tmp_path / "c")),
        refused(capsys, "export", str(bad), "--only", "pca", "--to", str(tmp_path / "t.parquet")),
        refused(capsys, "explore", str(bad), "--no-browser", "--port", "0"),
    ]
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npy", "in"]
    # the same problem, worded the same way, whichever command met it
    assert len({line.split(": error: ", 1)[1] for line in lines}) == 1, lines


# ---- round 4 of the hostile review ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["sample", "RUN", "--n", "0"], "--n must be in [1, inf], got '0'"),  # argparse's usage block before
        (["reconstruct", "RUN", "--ncols", "0"], "--ncols must be in [1, inf]"),
        (["interpolate", "RUN", "--pairs", "0"], "--pairs must be in [1, inf]"),
        (["quality", "RUN", "--real", "0"], "--real must be in [1, inf]"),
        (["analyze", "RUN", "--threads", "nan"], "--threads must be int, got 'nan'"),
        (["sample", "RUN", "--sampler", "gmm", "--components", "0"], "--components must be 'bic' or an integer >= 1"),
        (["analyze", "RUN", "--set", "seed=-5"], "config key 'seed': must be in [0, 4294967295], got -5"),
        (["interpolate", "RUN", "--z", "ODD"], "--z needs an array (2 * pairs, z_dim) of path ends, got shape [3, 6]"),
        (["analyze", "RUN", "--device", "cuda:99"], "--device is 'cuda:99' but"),  # it named train.device
        (["analyze", "RUN", "--set", "pca.planes=[[1, 1]]"], "'pca.planes': each value must be made of distinct"),
    ],
)
def test_round_four_options_are_one_line_before_any_work(argv, needle, tiny_run, tmp_path, capsys):
    """Each was a traceback, a usage block, an option checked only after encoding (gmm --components 0 wrote the
    latents first) or a silent truncation (an odd --z row dropped)."""
    np.save(tmp_path / "odd.npy", np.zeros((3, 6), np.float32))
    argv = [str(tiny_run) if a == "RUN" else str(tmp_path / "odd.npy") if a == "ODD" else a for a in argv]
    before = tree(tiny_run)
    refused(capsys, *argv, needle=needle)
    assert tree(tiny_run) == before


def test_api_odd_arguments_are_one_line_errors(tmp_path):
    import torch

    import zspace
    from zspace.errors import ConfigError

    z = np.random.default_rng(0).normal(size=(40, 3))
    report = zspace.analyze(torch.tensor(z).bfloat16(), only="radius")  # no numpy dtype: read as float32
    assert report.metrics["sections"]["radius"]["n"] == 40
    with pytest.raises(ConfigError, match="only= must be analysis names"):
        zspace.analyze(z, only=3)
    with pytest.raises(ConfigError, match="config key 'seed': must be in"):
        zspace.analyze(z, seed=-1)
    with pytest.raises(ConfigError, match=r"Report\.save needs a folder path, got None"):
        report.save(None)
