"""``zspace export`` / ``zspace.report.export.export``: one row per point, read back with pyarrow, with values
checked by hand on tiny data; the same values from an .npy, a latents folder and a Parquet table; hostile input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from zspace.cli.main import main
from zspace.errors import ConfigError
from zspace.report.export import export, metadata

CHEAP = "pca,radius,nn,lid,void,cluster"  # everything but the two maps (their own test below)


def line_points() -> np.ndarray:
    """Five points on the first axis at 0, 1, 3, 6, 10 (z_dim 3): radius 0, 1, 3, 6, 10; nn 1, 1, 2, 3, 4."""
    z = np.zeros((5, 3))
    z[:, 0] = [0, 1, 3, 6, 10]
    return z


def latents_folder(path, z, labels=None, attributes=None, meta=None):
    path.mkdir(parents=True)
    np.save(path / "z.npy", np.asarray(z, dtype=np.float32))
    if labels is not None:
        np.save(path / "labels.npy", np.asarray(labels, dtype=np.int64))
    if attributes is not None:
        np.save(path / "attributes.npy", np.asarray(attributes, dtype=np.int8))
    if meta is not None:
        (path / "meta.json").write_text(json.dumps(meta))
    return path


def run_cli(*args) -> int:
    return main(["-q", "export", *map(str, args)])


def check_one_line(err: str, says: str) -> None:
    """``err`` is one ``zspace: error:`` line containing ``says``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zspace: error:"), err
    assert says in lines[0], err


def test_line_points_by_hand(tmp_path):
    src = tmp_path / "line.npy"
    np.save(src, line_points().astype(np.float32))
    out = tmp_path / "t.parquet"
    assert run_cli(src, "--to", out, "--only", "radius,nn,cluster", "--k", "2") == 0
    t = pq.read_table(out)
    assert t.column_names == ["index", "radius", "nn_distance", "cluster", "z"]
    assert t.num_rows == 5
    assert t.column("index").to_pylist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(t.column("radius").to_numpy(), [0, 1, 3, 6, 10])
    np.testing.assert_allclose(t.column("nn_distance").to_numpy(), [1, 1, 2, 3, 4])
    cluster = t.column("cluster").to_numpy()
    assert cluster[0] == cluster[1] == cluster[2] != cluster[4]  # {0, 1, 3} vs {10} at least
    assert pa.types.is_fixed_size_list(t.schema.field("z").type)
    assert t.schema.field("z").type.list_size == 3
    np.testing.assert_array_equal(np.stack(t.column("z").to_numpy(zero_copy_only=False)), line_points())
    meta = metadata(pq.read_schema(out))
    assert meta["format"] == "zspace.export/1"
    assert meta["seed"] == 0
    assert meta["source"]["n"] == 5
    assert meta["columns"]["cluster"]["k"] == 2
    assert meta["columns"]["cluster"]["chosen_by"] == "given (--k)"
    assert set(meta["columns"]) == {"radius", "nn", "cluster"}


def test_labels_names_and_attributes_carried_through(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((30, 4))
    labels = np.arange(30) % 3
    attrs = np.where(rng.random((30, 2)) > 0.5, 1, -1)
    folder = latents_folder(tmp_path / "lat", z, labels, attrs, {"attribute_names": ["Smiling", "radius"]})
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\neel\n")
    out = tmp_path / "t.parquet"
    assert run_cli(folder, "--to", out, "--only", "radius", "--class-names", names, "--no-vectors") == 0
    t = pq.read_table(out)
    assert t.column_names == ["index", "label", "label_name", "radius", "Smiling", "attr_radius"]
    assert t.column("label").to_pylist() == labels.tolist()
    assert t.column("label_name").to_pylist() == [["cat", "dog", "eel"][i] for i in labels]
    np.testing.assert_array_equal(t.column("Smiling").to_numpy(), attrs[:, 0])
    np.testing.assert_array_equal(t.column("attr_radius").to_numpy(), attrs[:, 1])  # the name was taken
    np.testing.assert_allclose(t.column("radius").to_numpy(), np.linalg.norm(z.astype(np.float32), axis=1), rtol=1e-6)
    assert "attr_radius" in metadata(t)["notes"][0]


def test_lid_of_a_plane_in_10d_is_two():
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.standard_normal((10, 2)))
    z = rng.uniform(-1, 1, (600, 2)) @ basis.T + 3.0
    t = export(z, only="lid")
    lid = t.column("lid").to_numpy()
    assert t.num_rows == 600
    assert np.isfinite(lid).all()
    assert 1.7 < np.median(lid) < 2.3
    assert metadata(t)["columns"]["lid"]["k"] == 20


def test_planted_void_flags_the_isolated_points():
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), axis=-1).reshape(-1, 2)  # nn distance 1 each
    far = np.array([[60.0, 60.0], [-50.0, 60.0], [60.0, -40.0]])  # nothing within 40
    z = np.concatenate([grid, far])
    t = export(z, only="void,nn")
    void = t.column("void").to_numpy(zero_copy_only=False)
    assert void.dtype == bool
    assert np.flatnonzero(void).tolist() == [100, 101, 102]
    assert metadata(t)["columns"]["void"]["threshold"] == pytest.approx(1.0)


def test_same_values_from_npy_latents_folder_and_parquet(tmp_path):
    rng = np.random.default_rng(2)
    z = rng.standard_normal((80, 6)).astype(np.float32)
    z[:40] += 4.0
    labels = (np.arange(80) >= 40).astype(np.int64)
    np.save(tmp_path / "z.npy", z)
    folder = latents_folder(tmp_path / "lat", z, labels)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert run_cli(tmp_path / "z.npy", "--to", a, "--only", CHEAP, "--k", "2") == 0
    assert run_cli(folder, "--to", b, "--only", CHEAP, "--k", "2") == 0
    c = tmp_path / "c.parquet"  # the export itself as an input: z is its one list column
    assert run_cli(b, "--to", c, "--only", CHEAP, "--k", "2", "--labels", "label") == 0
    ta, tb, tc = (pq.read_table(p) for p in (a, b, c))
    for name in ("radius", "nn_distance", "lid", "void", "cluster", "pca_x", "pca_y"):
        va, vb, vc = (t.column(name).to_numpy(zero_copy_only=False) for t in (ta, tb, tc))
        if va.dtype.kind == "f":
            np.testing.assert_allclose(vb, va, rtol=1e-5, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(vc, va, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(vb, va, err_msg=name)
            np.testing.assert_array_equal(vc, va, err_msg=name)
    assert tb.column("label").to_pylist() == tc.column("label").to_pylist() == labels.tolist()
    assert "label" not in ta.column_names
    cl = tb.column("cluster").to_numpy()
    assert len(set(cl[:40])) == 1
    assert len(set(cl[40:])) == 1
    assert cl[0] != cl[-1]


def test_maps_fitted_on_a_subsample_place_the_rest():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((60, 5))
    # UMAP on all 60 points (its numba compilation is shared with tests/analyses/test_umap.py in a full run)
    t = export(z, only="tsne,umap,pca", tsne_max=40, seed=7)
    assert t.column_names == ["index", "pca_x", "pca_y", "tsne_x", "tsne_y", "umap_x", "umap_y", "z"]
    for name in ("tsne_x", "tsne_y", "umap_x", "umap_y"):
        col = t.column(name)
        assert col.null_count == 0
        assert np.isfinite(col.to_numpy()).all()
    cols = metadata(t)["columns"]
    assert (cols["tsne"]["fitted_on"], cols["tsne"]["placed"]) == (40, 20)
    assert cols["tsne"]["placement"] == "openTSNE TSNEEmbedding.transform"
    assert (cols["umap"]["fitted_on"], cols["umap"]["placed"]) == (60, 0)
    assert cols["pca"]["fitted_on"] == 60
    P = np.stack([t.column("pca_x").to_numpy(), t.column("pca_y").to_numpy()], axis=1)
    c = z - z.mean(axis=0)
    np.testing.assert_allclose(np.abs(P[:, 0]), np.abs(c @ np.linalg.svd(c)[2][0]), rtol=1e-4, atol=1e-5)


def test_umap_fitted_on_a_subsample_places_the_rest_with_its_transform(monkeypatch):
    """The placement wiring, with a stand-in for umap.UMAP (a real transform compiles numba code for a minute)."""
    import zspace.analyses.umap as umap_module

    fitted = []

    class FakeUmap:
        n_neighbors, min_dist = 15, 0.1

        def __init__(self, X):
            fitted.append(X)
            self.embedding_ = X[:, :2] + 1000.0

        def transform(self, X):
            return X[:, :2] - 1000.0

    monkeypatch.setattr(umap_module, "fit_umap", lambda X, random_state: FakeUmap(X))
    z = np.random.default_rng(6).standard_normal((50, 3)).astype(np.float32)
    t = export(z, only="umap", umap_max=30, seed=2)
    x = t.column("umap_x").to_numpy()
    fit_rows = np.flatnonzero(x > 500)
    assert len(fitted[0]) == len(fit_rows) == 30
    np.testing.assert_array_equal(fitted[0], z[fit_rows])  # fitted on exactly those rows, in order
    np.testing.assert_allclose(x, np.where(x > 500, z[:, 0] + 1000, z[:, 0] - 1000))  # the rest placed
    info = metadata(t)["columns"]["umap"]
    assert (info["fitted_on"], info["placed"], info["placement"]) == (30, 20, "umap.UMAP.transform")
    again = export(z, only="umap", umap_max=30, seed=2).column("umap_x").to_numpy()
    np.testing.assert_array_equal(again, x)  # the subsample is seeded


def test_neighbours_on_a_subsample_leave_the_other_rows_null():
    z = np.random.default_rng(4).standard_normal((12, 3))
    t = export(z, only="nn,lid,void", neighbours_max=6, lid_k=3)
    for name in ("nn_distance", "lid", "void"):
        assert t.column(name).null_count == 6
    assert metadata(t)["columns"]["nn"]["computed_on"] == 6
    assert "subsample" in metadata(t)["columns"]["void"]["note"]


@pytest.mark.parametrize("n_blobs", [2, 4])
def test_default_k_is_the_number_of_planted_blobs(n_blobs):
    rng = np.random.default_rng(5)
    centres = 30 * np.eye(n_blobs, 6)  # equidistant centres, far apart against a spread of 0.3
    z = np.concatenate([c + 0.3 * rng.standard_normal((40, 6)) for c in centres])
    t = export(z, only="cluster")
    info = metadata(t)["columns"]["cluster"]
    assert info["chosen_by"].startswith("elbow")
    assert info["k"] == n_blobs == len(np.unique(t.column("cluster").to_numpy()))
    codes = t.column("cluster").to_numpy().reshape(n_blobs, 40)
    assert all(len(np.unique(row)) == 1 for row in codes)  # each blob is one cluster


def test_clusterless_data_gets_the_default_k_and_says_why():
    from zspace.report.export import DEFAULT_K

    z = np.random.default_rng(6).standard_normal((200, 6))  # one Gaussian: the curve bends nowhere
    info = metadata(export(z, only="cluster"))["columns"]["cluster"]
    assert info["k"] == DEFAULT_K
    assert info["chosen_by"].startswith(f"default k = {DEFAULT_K}")
    assert "no pronounced elbow" in info["chosen_by"]


def test_api_labels_names_and_formats(tmp_path):
    z = line_points()
    t = export(z, tmp_path / "t.arrow", labels=np.array([0, 1, 1, 0, 1]), class_names=["a", "b"], only="radius")
    back = ipc.open_file(tmp_path / "t.arrow").read_all()
    assert back.equals(t)
    assert list(metadata(back)["columns"]) == ["radius"]
    assert back.column("label_name").to_pylist() == ["a", "b", "b", "a", "b"]
    export(z, tmp_path / "t.csv", only="radius")
    csv = pcsv.read_csv(tmp_path / "t.csv")
    assert csv.column_names == ["index", "radius", "z_0", "z_1", "z_2"]
    assert csv.column("z_0").to_pylist() == [0, 1, 3, 6, 10]
    export(z, tmp_path / "t.feather", only="radius", vectors=False)
    assert ipc.open_file(tmp_path / "t.feather").read_all().column_names == ["index", "radius"]


def test_non_finite_rows_are_counted_and_dropped(tmp_path):
    z = line_points()
    z[2, 1] = np.nan
    z[4, 0] = np.inf
    np.save(tmp_path / "z.npy", z)
    assert run_cli(tmp_path / "z.npy", "--to", tmp_path / "t.parquet", "--only", "radius") == 0
    t = pq.read_table(tmp_path / "t.parquet")
    assert t.column("index").to_pylist() == [0, 1, 3]
    np.testing.assert_allclose(t.column("radius").to_numpy(), [0, 1, 6])
    assert metadata(t)["nonfinite_dropped"] == 2


def test_replaces_its_own_file_but_not_a_foreign_one(tmp_path, capsys):
    np.save(tmp_path / "z.npy", line_points())
    out = tmp_path / "t.parquet"
    assert run_cli(tmp_path / "z.npy", "--to", out, "--only", "radius") == 0
    assert run_cli(tmp_path / "z.npy", "--to", out, "--only", "nn") == 0  # zspace wrote it: replaced
    assert "nn_distance" in pq.read_table(out).column_names
    foreign = tmp_path / "mine.parquet"
    foreign.write_bytes(b"my own data")
    capsys.readouterr()
    assert run_cli(tmp_path / "z.npy", "--to", foreign, "--only", "radius") == 2
    check_one_line(capsys.readouterr().err, "not written by zspace (or was changed since); choose another --to")
    assert foreign.read_bytes() == b"my own data"
    out.write_bytes(b"changed by hand")  # once changed, zspace's own file is the user's
    assert run_cli(tmp_path / "z.npy", "--to", out, "--only", "radius") == 2
    assert out.read_bytes() == b"changed by hand"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--to", "{tmp}/t.txt"], "suffix must be one of .parquet"),
        (["--to", "{tmp}/t.parquet", "--k", "50"], "--k 50 is larger than the 5 points"),
        (["--to", "{tmp}/t.parquet", "--k", "-1"], "--k must be in [0, 100000]"),
        (["--to", "{tmp}/t.parquet", "--tsne-max", "2"], "--tsne-max must be in [4,"),
        (["--to", "{tmp}/t.parquet", "--only", "radius,magic"], "unknown column group 'magic'"),
        (["--to", "{tmp}/t.parquet", "--seed", "-3"], "--seed must be"),
        (["--to", "{tmp}/z.npy/t.parquet", "--only", "radius"], "cannot write"),  # a file as the folder
    ],
)
def test_hostile_options_are_one_line(tmp_path, capsys, args, says):
    np.save(tmp_path / "z.npy", line_points())
    capsys.readouterr()
    assert run_cli(tmp_path / "z.npy", *[a.format(tmp=tmp_path) for a in args]) == 2
    check_one_line(capsys.readouterr().err, says)
    assert not (tmp_path / "t.parquet").exists()
    assert not (tmp_path / "t.txt").exists()


def test_hostile_inputs_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "empty.npy", np.zeros((0, 4), dtype=np.float32))
    np.save(tmp_path / "nan.npy", np.full((3, 4), np.nan, dtype=np.float32))
    for src, says in (
        (tmp_path / "empty.npy", "empty.npy"),
        (tmp_path / "nan.npy", "no finite row is left"),
        (tmp_path / "missing.npy", "not found"),
    ):
        capsys.readouterr()
        assert run_cli(src, "--to", tmp_path / "t.parquet") == 2
        check_one_line(capsys.readouterr().err, says)
    assert not (tmp_path / "t.parquet").exists()
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        export(line_points(), colour="red")


def test_a_run_folder_is_encoded_and_its_class_names_and_source_recorded(tiny_run, tmp_path):
    out = tmp_path / "run.parquet"
    assert run_cli(tiny_run, "--to", out, "--only", "radius,pca", "--device", "cpu") == 0
    t = pq.read_table(out)
    assert t.num_rows == 1797  # every digit of the bundled set (split all)
    assert t.column_names[:3] == ["index", "label", "label_name"]
    labels, names = t.column("label").to_pylist(), t.column("label_name").to_pylist()
    assert names == [str(i) for i in labels]  # the digits dataset names its classes "0".."9"
    z = np.load(tiny_run / "latents" / "all" / "z.npy")
    np.testing.assert_allclose(t.column("radius").to_numpy(), np.linalg.norm(z.astype(np.float64), axis=1), rtol=1e-6)
    source = metadata(t)["source"]
    assert source["run"] == str(tiny_run)
    assert source["z_dim"] == 4
