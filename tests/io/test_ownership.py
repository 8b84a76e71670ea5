"""One ownership rule: zspace deletes or replaces only files a manifest it wrote records, by path and sha256.

The library's rule on tiny folders first (manifests, foreign files at every depth, temporary folders, modes),
then every command that writes, run against a "user's folder" placed next to and inside run, latents and report
folders: after each command every one of the user's files is byte-identical, and the command either succeeded
or refused with one line naming the first foreign file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from zspace.cli.main import main
from zspace.errors import ConfigError
from zspace.io import ownership
from zspace.io.atomic import atomic_write_bytes, write_owned_file

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "configs" / "digits-demo.toml")
SMALL = ["--set", "model.z_dim=4", "--set", "model.filters=[8, 16]", "--epochs", "1"]

# The user's own files: a thesis, code, dot-folders, a file named like zspace's, names like old temp patterns.
USER_FILES = {
    "thesis.pdf": b"%PDF years of work",
    "code/main.py": b"print('mine')\n",
    ".dot-folder/settings": b"private",
    "meta.json": b'{"mine": true}\n',
    ".notes.tmp-v2/draft.txt": b"notes",
    ".photos.old-2019/beach.jpg": b"\xff\xd8photo",
    ".thesis.tmp-final/chapter1.tex": b"chapter",
}


def plant(folder: Path, files: dict[str, bytes] | None = None) -> None:
    for rel, data in (files or USER_FILES).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (all of them: zspace's and the user's)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def user_digest(root: Path, planted: list[Path]) -> dict[str, str]:
    """sha256 of the user's files planted under ``planted`` folders (relative to ``root``)."""
    out = {}
    for folder in planted:
        for rel in USER_FILES:
            p = folder / rel
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else ""
    return out


def cli(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["-q", *argv])
    return code, capsys.readouterr().err


def ok_or_refused(capsys, *argv: str, needle: str | None = None) -> int:
    """Run a command: it exits 0, or 2 with one line (naming ``needle`` when given)."""
    code, err = cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith("zspace: error: "), (argv, err)
        if needle:
            assert needle in lines[0], (needle, lines[0])
    return code


def train(out: Path, name: str = "d", *extra: str) -> list[str]:
    return ["train", DIGITS, "--out-dir", str(out), "--name", name, *SMALL, *extra]


# --- the library's rule ------------------------------------------------------------------------------------------


def make(folder: Path, kind: str = "latents", files: dict[str, bytes] | None = None) -> None:
    with ownership.replace_folder(folder, kind) as new:
        for rel, data in (files or {"a.npy": b"A", "sub/deep/b.npy": b"B"}).items():
            (new / rel).parent.mkdir(parents=True, exist_ok=True)
            (new / rel).write_bytes(data)


def test_a_manifest_records_every_file_at_every_depth(tmp_path):
    make(tmp_path / "lat")
    manifest = json.loads((tmp_path / "lat" / ownership.MANIFEST).read_text())
    assert manifest["kind"] == "latents"
    assert manifest["files"] == {
        "a.npy": hashlib.sha256(b"A").hexdigest(),
        "sub/deep/b.npy": hashlib.sha256(b"B").hexdigest(),
    }
    assert ownership.first_foreign(tmp_path / "lat") is None
    make(tmp_path / "lat", files={"c.npy": b"C"})  # provably zspace's: replaced whole
    assert sorted(p.name for p in (tmp_path / "lat").iterdir()) == [ownership.MANIFEST, "c.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["lat"]  # no temporary folder left


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: (f / "sub" / "deep" / "mine.txt").write_text("mine"), "sub/deep/mine.txt"),
        (lambda f: (f / "a.npy").write_bytes(b"edited"), "a.npy"),
        (lambda f: (f / "sub" / "link").symlink_to("/etc/passwd"), "sub/link"),
        (lambda f: (f / ".notes.tmp-v2").mkdir() or (f / ".notes.tmp-v2" / "n").write_text("n"), ".notes.tmp-v2/n"),
    ],
)
def test_a_foreign_or_changed_entry_blocks_replacing_and_is_named(tmp_path, change, named):
    make(tmp_path / "lat")
    change(tmp_path / "lat")
    before = digest(tmp_path)
    assert ownership.first_foreign(tmp_path / "lat") == str(tmp_path / "lat" / named)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        make(tmp_path / "lat", files={"c.npy": b"C"})
    assert digest(tmp_path) == before


def test_a_folder_without_manifest_is_never_replaced(tmp_path):
    plant(tmp_path / "myproject")
    before = digest(tmp_path)
    with pytest.raises(ConfigError, match="not a zspace latents folder"):
        make(tmp_path / "myproject")
    with pytest.raises(ConfigError, match="not a zspace latents folder"):
        make(tmp_path / "myproject" / "code")
    assert digest(tmp_path) == before


def test_another_kind_of_zspace_folder_is_not_replaced(tmp_path):
    make(tmp_path / "r", kind="run")
    with pytest.raises(ConfigError, match="zspace run folder, not a latents folder"):
        make(tmp_path / "r")


def test_a_pending_hash_keeps_a_killed_write_accounted_for(tmp_path):
    make(tmp_path / "lat")
    atomic_write_bytes(tmp_path / "lat" / "sub" / "new.npy", b"N")  # recorded at once
    assert ownership.first_foreign(tmp_path / "lat") is None
    ownership.record(tmp_path / "lat" / "a.npy", hashlib.sha256(b"A2").hexdigest(), pending=True)
    (tmp_path / "lat" / "a.npy").write_bytes(b"A2")  # killed after the rename, before the confirmation
    assert ownership.first_foreign(tmp_path / "lat") is None
    (tmp_path / "lat" / "a.npy").write_bytes(b"A3")  # neither the old nor the pending hash
    assert ownership.first_foreign(tmp_path / "lat") == str(tmp_path / "lat" / "a.npy")


def test_stale_temporaries_are_removed_only_with_zspace_proof(tmp_path):
    plant(tmp_path)
    (tmp_path / ".zspace-tmp-mine").mkdir()  # zspace's prefix, but no proof: the user's
    (tmp_path / ".zspace-tmp-mine" / "x").write_text("x")
    (tmp_path / ".zspace-tmp-forged").mkdir()
    (tmp_path / ".zspace-tmp-forged" / ownership.PROOF).write_text("not json")
    with ownership.temp_dir(tmp_path) as alive:
        before = digest(tmp_path)
        ownership.remove_stale_temps(tmp_path)
        assert alive.is_dir()  # its writer holds the proof's lock
        assert digest(tmp_path) == before
        shutil.copytree(alive, tmp_path / ".zspace-tmp-dead")  # a writer that died: its proof unlocked
    before = {k: v for k, v in digest(tmp_path).items() if not k.startswith(".zspace-tmp-dead")}
    ownership.remove_stale_temps(tmp_path)
    assert not (tmp_path / ".zspace-tmp-dead").exists()
    assert digest(tmp_path) == before


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_folders_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        make(tmp_path / "lat")
        with ownership.temp_dir(tmp_path) as tmp:
            assert tmp.stat().st_mode & 0o777 == 0o777 & ~mask
        atomic_write_bytes(tmp_path / "lat" / "f", b"f")
    finally:
        os.umask(old)
    assert (tmp_path / "lat").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "lat" / "sub").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "lat" / "f").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_generated_file_never_replaces_the_users(tmp_path):
    plant(tmp_path)
    (tmp_path / "fig.png").write_bytes(b"my figure")
    before = digest(tmp_path)
    with pytest.raises(ConfigError, match=r"fig\.png exists and was not written by zspace"):
        write_owned_file(tmp_path / "fig.png", b"png", "images")
    assert digest(tmp_path) == before
    write_owned_file(tmp_path / "new.png", b"png1", "images")
    write_owned_file(tmp_path / "new.png", b"png2", "images")  # its own: replaced
    assert (tmp_path / "new.png").read_bytes() == b"png2"
    assert {k: v for k, v in digest(tmp_path).items() if k in before} == before


@pytest.mark.parametrize("command", ["sample", "reconstruct", "interpolate"])
def test_a_users_image_at_out_is_refused_before_any_work(capsys, tmp_path, command):
    """The run does not exist: the refusal names the user's file, so it came before the run was even opened."""
    (tmp_path / "mine.png").write_bytes(b"my figure")
    code, err = cli(capsys, command, str(tmp_path / "no-run"), "--out", str(tmp_path / "mine.png"))
    assert code == 2
    assert "mine.png exists and was not written by zspace" in err
    assert (tmp_path / "mine.png").read_bytes() == b"my figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.png"]


def test_a_users_file_at_a_name_training_writes_is_refused(capsys, tmp_path):
    """Every write into a zspace folder checks the file it replaces (atomic_write_bytes): a user's file at the
    next kept checkpoint's name, or weights replaced by hand, are never overwritten by --resume."""
    runs = tmp_path / "runs"
    keep = ["--set", "train.keep_checkpoints=true"]
    assert cli(capsys, *train(runs, "d", *keep))[0] == 0
    run = runs / "d"
    assert (run / "checkpoints" / "epoch-001.safetensors").is_file()
    (run / "checkpoints" / "epoch-002.safetensors").write_bytes(b"my precious notes")
    resume = [*train(runs, "d", *keep, "--resume"), "--epochs", "2"]
    before = digest(run)
    code, err = cli(capsys, *resume)
    assert code == 2
    assert err.strip().splitlines() == [
        f"zspace: error: {run / 'checkpoints' / 'epoch-002.safetensors'} exists and was not written by zspace "
        "(or was changed since); move it away first"
    ]
    assert digest(run) == before  # refused before an epoch was trained: nothing written
    (run / "checkpoints" / "epoch-002.safetensors").unlink()
    (run / "model.safetensors").write_bytes(b"user weights")
    assert cli(capsys, *resume)[0] == 2
    assert (run / "model.safetensors").read_bytes() == b"user weights"


def test_a_report_goes_beside_a_sampled_grid_in_the_same_folder(capsys, tmp_path, tiny_run):
    """`sample --out mix/grid.png` marks mix/ as holding zspace's single files; `analyze --out mix` was then
    refused ("holds the output of `images`"). Now both live there, each recorded under its command."""
    mix = tmp_path / "mix"
    mix.mkdir()
    (mix / "thesis.tex").write_text("my thesis")
    np.save(tmp_path / "z.npy", np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32))
    assert cli(capsys, "sample", str(tiny_run), "--n", "4", "--out", str(mix / "grid.png"))[0] == 0
    grid = (mix / "grid.png").read_bytes()
    assert cli(capsys, "analyze", str(tmp_path / "z.npy"), "--only", "radius", "--out", str(mix))[0] == 0
    assert (mix / "report.html").is_file()
    assert (mix / "grid.png").read_bytes() == grid
    manifest = ownership.read_manifest(mix)
    assert manifest["kinds"]["grid.png"] == "images"
    assert "thesis.tex" not in manifest["files"]
    assert cli(capsys, "sample", str(tiny_run), "--n", "6", "--out", str(mix / "grid.png"))[0] == 0  # still its own
    assert cli(capsys, "analyze", str(tmp_path / "z.npy"), "--only", "radius", "--out", str(mix))[0] == 0
    assert (mix / "thesis.tex").read_text() == "my thesis"


# --- every command that writes, against the user's folder --------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("owned")
    assert main(["-q", *train(out / "runs")]) == 0
    assert main(["-q", "embed", str(out / "runs" / "d")]) == 0
    return out


@pytest.fixture
def home(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run, with the user's files beside the runs and inside zspace-named subfolders."""
    shutil.copytree(trained, tmp_path / "home")
    home = tmp_path / "home"
    plant(home / "runs")
    plant(home / "myproject")
    return home


def test_zspaces_own_run_is_fully_accounted_for_and_replaceable(capsys, home):
    run = home / "runs" / "d"
    assert cli(capsys, "analyze", str(run), "--only", "radius")[0] == 0
    assert cli(capsys, "sample", str(run), "--n", "4")[0] == 0
    assert (run / "generated" / "sample-normal.png").is_file()
    assert ownership.first_foreign(run) is None
    before = user_digest(home, [home / "runs"])
    assert cli(capsys, *train(home / "runs", "d", "--overwrite"))[0] == 0
    assert not (run / "analysis").exists()
    assert not (run / "latents").exists()
    assert user_digest(home, [home / "runs"]) == before


@pytest.mark.parametrize(
    ("inside", "needle"),
    [("analysis/mine.txt", "analysis/mine.txt"), ("latents/all/mine.npy", "latents/all/mine.npy"),
     ("checkpoints/mine.txt", "checkpoints/mine.txt"), (".notes.tmp-v2", ".notes.tmp-v2"),
     (".model.safetensors.abc.tmp", ".model.safetensors.abc.tmp")],
)  # fmt: skip
def test_overwrite_keeps_user_files_at_any_depth_of_a_run(capsys, home, inside, needle):
    run = home / "runs" / "d"
    assert cli(capsys, "analyze", str(run), "--only", "radius")[0] == 0
    (run / inside).parent.mkdir(parents=True, exist_ok=True)
    (run / inside).write_bytes(b"the user's")
    before = digest(home)
    assert ok_or_refused(capsys, *train(home / "runs", "d", "--overwrite"), needle=needle) == 2
    assert digest(home) == before


def test_a_changed_file_of_zspace_blocks_overwrite(capsys, home):
    (home / "runs" / "d" / "history.csv").write_text("epoch\n1\n# my annotations\n")
    before = digest(home)
    assert ok_or_refused(capsys, *train(home / "runs", "d", "--overwrite"), needle="history.csv") == 2
    assert digest(home) == before


def test_a_run_made_before_manifests_is_not_replaced(capsys, home):
    (home / "runs" / "d" / ownership.MANIFEST).unlink()
    before = digest(home)
    assert ok_or_refused(capsys, *train(home / "runs", "d", "--overwrite"), needle="before zspace kept") == 2
    assert digest(home) == before


@pytest.mark.parametrize("name", ["?otes", "*", "[.]notes", "thesis"])
def test_glob_characters_in_the_run_name_delete_nothing(capsys, home, name):
    before = user_digest(home, [home / "runs"])
    ok_or_refused(capsys, *train(home / "runs", name, "--overwrite"))
    ok_or_refused(capsys, *train(home / "runs", name, "--overwrite"))
    assert user_digest(home, [home / "runs"]) == before


def test_embed_never_replaces_a_users_folder(capsys, home):
    run = home / "runs" / "d"
    before = digest(home)
    assert ok_or_refused(capsys, "embed", str(run), "--out", str(home / "myproject"), needle="myproject") == 2
    assert ok_or_refused(capsys, "embed", str(run), "--out", str(home / "runs"), needle="runs") == 2
    assert digest(home) == before


def test_embed_split_all_keeps_a_user_file_in_the_latents_folder(capsys, home):
    run = home / "runs" / "d"
    (run / "latents" / "all" / "mine.npy").write_bytes(b"my array")
    before = digest(home)
    assert ok_or_refused(capsys, "embed", str(run), "--split", "all", needle="latents/all/mine.npy") == 2
    assert digest(home) == before
    (run / "latents" / "all" / "mine.npy").unlink()
    assert ok_or_refused(capsys, "embed", str(run), "--split", "all") == 0


def test_reports_keep_the_users_files(capsys, home):
    run = home / "runs" / "d"
    plant(run / "analysis")
    before = user_digest(home, [home / "myproject", run / "analysis"])
    for argv in (
        ["analyze", str(run), "--only", "radius"],
        ["analyze", str(run), "--only", "radius", "--out", str(home / "myproject")],
        ["compare", str(run), str(run), "--out", str(home / "myproject" / "code")],
    ):
        ok_or_refused(capsys, *argv)
        assert user_digest(home, [home / "myproject", run / "analysis"]) == before
    assert (run / "analysis" / "report.html").is_file()


def test_generated_images_keep_the_users_files(capsys, home):
    run = home / "runs" / "d"
    (home / "myproject" / "fig.png").write_bytes(b"my figure")
    before = digest(home / "myproject")
    for cmd in (["sample", str(run), "--n", "4"], ["reconstruct", str(run)], ["interpolate", str(run)]):
        needle = "fig.png"
        assert ok_or_refused(capsys, *cmd, "--out", str(home / "myproject" / "fig.png"), needle=needle) == 2
        assert ok_or_refused(capsys, *cmd, "--out", str(home / "myproject" / "new.png")) == 0  # twice: its own
        after = digest(home / "myproject")
        assert {k: after[k] for k in before} == before
    assert (home / "myproject" / "new.png").read_bytes()[:4] == b"\x89PNG"


def test_a_study_beside_the_users_files_keeps_them(capsys, home, wifi_file):
    out = home / "myproject"
    before = user_digest(home, [out])
    ok_or_refused(capsys, "study", "wifi", "--quick", "--data", str(wifi_file), "--out", str(out))
    assert user_digest(home, [out]) == before
    assert (out / "report.html").is_file()


# --- one API: nothing outside it deletes, renames or makes temporary names -----------------------------------------

DELETERS = ("rmtree(", "mkdtemp(", "mkstemp(", "os.replace(", ".rename(", ".unlink(", "os.remove(", "os.rmdir(")
# Each exception is reviewed: the report replaces only files its manifest records (report/page.py); the image cache
# keeps its own entries under keys it derives from the data, with an owner.json proof in its temp folders.
ALLOWED = {"io/ownership.py", "io/atomic.py", "report/page.py", "data/cache.py"}


def test_only_the_ownership_api_deletes_or_renames():
    src = ROOT / "src" / "zspace"
    offenders = [
        f"{path.relative_to(src)}:{i}"
        for path in sorted(src.rglob("*.py"))
        if path.relative_to(src).as_posix() not in ALLOWED
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if any(d in line for d in DELETERS)
    ]
    assert offenders == [], "route writes through zspace.io.ownership / zspace.io.atomic"


def test_an_image_written_into_a_report_folder_stays_accounted_for(tmp_path):
    from zspace.report.page import write_report

    out = tmp_path / "rep"
    write_report([], out, title="t", command="zspace analyze x")
    write_owned_file(out / "x.png", b"png", "images")
    write_report([], out, title="t2", command="zspace analyze x")  # rewritten: the image is neither lost nor foreign
    manifest = ownership.read_manifest(out)
    assert manifest["files"]["x.png"] == hashlib.sha256(b"png").hexdigest()
    assert manifest["kinds"] == {"x.png": "images"}
    assert (out / "x.png").read_bytes() == b"png"
    assert ownership.first_foreign(out) is None
    assert "t2" in (out / "report.html").read_text()
