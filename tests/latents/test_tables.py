"""Embeddings as tables (Parquet, Arrow/Feather, CSV): the same numbers as the same arrays in a .npy, labels and
attributes carried through, one-line errors for what cannot be analysed."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from zspace.cli.main import main
from zspace.errors import DataError
from zspace.latents.tables import TableColumns, read_table
from zspace.report.resolve import resolve

NAMES = ["cat", "dog", "eel", "fox"]


def points() -> tuple[np.ndarray, np.ndarray]:
    """40 points at radius exactly 2 (2 * a unit vector, sign alternating), labels 0..3."""
    z = np.zeros((40, 4))
    z[np.arange(40), np.arange(40) % 4] = np.where(np.arange(40) % 2, 2.0, -2.0)
    return z, (np.arange(40) // 10).astype(np.int64)


def list_table(z: np.ndarray, labels: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "id": [f"p{i}" for i in range(len(z))],  # a string column: never part of the embedding
            "emb": pa.array(list(z), pa.list_(pa.float32())),
            "kind": [NAMES[i] for i in labels],
            "big": (z[:, 0] > 0).astype(np.int64) * 2 - 1,
        }
    )


def column_table(z: np.ndarray, labels: np.ndarray) -> pa.Table:
    return pa.table({**{f"d{j}": z[:, j] for j in range(z.shape[1])}, "label": labels})


def radius_metrics(path, out, *extra: str) -> dict:
    assert main(["-q", "analyze", str(path), "--only", "radius", "--out", str(out), *extra]) == 0
    return json.loads((out / "metrics.json").read_text())["sections"]["radius"]


def test_every_table_gives_the_numbers_of_the_npy(tmp_path):
    z, labels = points()
    np.save(tmp_path / "emb.npy", z)
    pq.write_table(list_table(z, labels), tmp_path / "list.parquet")
    pq.write_table(column_table(z, labels), tmp_path / "cols.parquet")
    feather.write_feather(list_table(z, labels), tmp_path / "list.feather")
    feather.write_feather(column_table(z, labels), tmp_path / "cols.arrow")
    pcsv.write_csv(column_table(z, labels), tmp_path / "cols.csv")
    want = radius_metrics(tmp_path / "emb.npy", tmp_path / "r-npy")
    assert want["mean"] == pytest.approx(2.0)
    assert want["n"] == 40
    for name in ("list.parquet", "list.feather"):
        got = radius_metrics(tmp_path / name, tmp_path / f"r-{name}", "--labels", "kind")
        assert (got["mean"], got["n"]) == (pytest.approx(want["mean"]), want["n"]), name
    for name in ("cols.parquet", "cols.arrow", "cols.csv"):  # every numeric column but the label column
        got = radius_metrics(tmp_path / name, tmp_path / f"r-{name}", "--labels", "label")
        assert (got["mean"], got["peak"], got["n"]) == (want["mean"], want["peak"], want["n"]), name


def test_labels_and_attributes_are_carried_through(tmp_path):
    z, labels = points()
    pq.write_table(list_table(z, labels), tmp_path / "t.parquet")
    lat = read_table(tmp_path / "t.parquet", TableColumns(labels="kind", attributes=("big",)))
    np.testing.assert_array_equal(lat.labels, labels)  # sorted strings -> codes: cat 0, dog 1, eel 2, fox 3
    assert lat.meta["label_names"] == NAMES
    assert lat.meta["attribute_names"] == ["big"]
    np.testing.assert_array_equal(lat.attributes[:, 0], np.where(z[:, 0] > 0, 1, -1))
    np.testing.assert_allclose(np.linalg.norm(lat.z, axis=1), 2.0)
    src = resolve(tmp_path / "t.parquet", table=TableColumns(labels="kind"))  # the library's door
    assert src.latents.meta["label_names"] == NAMES
    assert src.name == "t"
    pcsv.write_csv(column_table(z, labels), tmp_path / "c.csv")
    lat = read_table(tmp_path / "c.csv", TableColumns(labels="label"))
    assert lat.z.shape == (40, 4)
    assert lat.meta["table_columns"] == ["d0", "d1", "d2", "d3"]
    np.testing.assert_array_equal(lat.labels, labels)


def test_the_cli_colours_by_the_label_names(tmp_path):
    z, labels = points()
    pq.write_table(list_table(z, labels), tmp_path / "t.parquet")
    assert main(["-q", "analyze", str(tmp_path / "t.parquet"), "--labels", "kind", "--only", "pca"]) == 0
    html = (tmp_path / "t-analysis" / "report.html").read_text()
    assert "fox" in html


def test_only_the_needed_columns_are_read(tmp_path, monkeypatch):
    z, labels = points()
    pq.write_table(list_table(z, labels), tmp_path / "t.parquet")
    asked = []
    real = pq.read_table

    def spy(p, columns=None, **kw):
        asked.append(columns)
        return real(p, columns=columns, **kw)

    monkeypatch.setattr(pq, "read_table", spy)
    read_table(tmp_path / "t.parquet", TableColumns(labels="kind"))
    assert asked == [["emb", "kind"]]


def test_compare_two_tables_with_labels(tmp_path):
    z, labels = points()
    pq.write_table(list_table(z, labels), tmp_path / "a.parquet")
    pq.write_table(list_table(z * 1.5, labels), tmp_path / "b.parquet")
    args = ["-q", "compare", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "--labels", "kind"]
    assert main([*args, "--only", "radius", "--out", str(tmp_path / "cmp")]) == 0
    runs = json.loads((tmp_path / "cmp" / "metrics.json").read_text())["runs"]
    assert sorted(runs) == ["a", "b"]


def test_non_finite_and_missing_rows_are_counted_and_dropped(tmp_path):
    z, labels = points()
    vectors = [list(v) for v in z]
    vectors[3] = None  # a missing vector
    vectors[5][1] = float("nan")
    table = pa.table({"emb": pa.array(vectors, pa.list_(pa.float64())), "label": labels})
    pq.write_table(table, tmp_path / "t.parquet")
    lat = read_table(tmp_path / "t.parquet", TableColumns(labels="label"))
    assert (len(lat.z), len(lat.labels)) == (38, 38)
    assert (lat.meta["nonfinite_dropped"], lat.meta["nonfinite_first_row"]) == (2, 3)


def _write(p, table, name="x.parquet"):
    pq.write_table(table, p / name) if name.endswith(".parquet") else pcsv.write_csv(table, p / name)


@pytest.mark.parametrize(
    ("make", "extra", "needle"),
    [
        (lambda p: _write(p, pa.table({"v": [[1.0, 2.0], [3.0]]})), [], "ragged"),
        (lambda p: _write(p, pa.table({"v": [["a", "b"], ["c", "d"]]})), [], "not a list of numbers"),
        (lambda p: _write(p, pa.table({"v": ["a", "b"], "w": ["c", "d"]})), [], "no numeric column"),
        (lambda p: _write(p, pa.table({"v": pa.array([], pa.list_(pa.float64()))})), [], "no rows"),
        (lambda p: _write(p, pa.table({"a": [1.0], "b": [2.0]})), ["--labels", "nope"], "no column 'nope'"),
        (lambda p: _write(p, pa.table({"a": [1.0, 2.0], "b": [2.0, 3.0]})), ["--column", "a"], "not a list"),
        (lambda p: _write(p, pa.table({"a": [1.0, 2.0]})), [], "lone column 'a'"),
        (lambda p: _write(p, pa.table({"a": [1.0, 2.0], "b": [1.0, 2.0]}), "x.csv"), ["--labels", "b"], "lone"),
        (lambda p: _write(p, pa.table({"a": [np.nan, 1.0], "b": [np.inf, 2.0]}).slice(0, 1)), [], "no finite row"),
        (lambda p: (p / "x.feather").write_bytes(b"not arrow at all"), [], "cannot be read"),
        (lambda p: _write(p, pa.table({"a": [1.0], "b": [2.0], "c": [0.5]})), ["--labels", "c"], "integers or str"),
    ],
)
def test_bad_tables_are_one_line(tmp_path, capsys, make, extra, needle):
    make(tmp_path)
    path = next(tmp_path.glob("x.*"))
    assert main(["-q", "analyze", str(path), "--only", "radius", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert needle in err[0]
    assert not (tmp_path / "x-analysis").exists()  # nothing half-written


def test_table_options_go_with_tables_only(tmp_path, capsys):
    z, _ = points()
    np.save(tmp_path / "emb.npy", z)
    assert main(["-q", "analyze", str(tmp_path / "emb.npy"), "--labels", "kind"]) == 2
    assert "go with a table" in capsys.readouterr().err
    with pytest.raises(DataError, match="tables are"):
        read_table(tmp_path / "emb.npy")


def test_fixed_size_lists_keep_float32_and_dictionary_labels_are_strings(tmp_path):
    z = np.arange(12, dtype=np.float32).reshape(4, 3)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(z.ravel()), 3)
    labels = pa.array(["x", "y", "x", "z"]).dictionary_encode()
    pq.write_table(pa.table({"v": vectors, "lab": labels}), tmp_path / "t.parquet")
    lat = read_table(tmp_path / "t.parquet", TableColumns(labels="lab"))
    assert lat.z.dtype == np.float32
    np.testing.assert_array_equal(lat.z, z)
    np.testing.assert_array_equal(lat.labels, [0, 1, 0, 2])
    assert lat.meta["label_names"] == ["x", "y", "z"]


def test_a_column_with_one_bad_cell_is_named_in_the_report(tmp_path):
    """In numeric-columns mode a column with a non-numeric cell cannot be a coordinate: it is left out, and the
    report's first sentence and metrics.json say so (it was an INFO line only, hidden by -q)."""
    rows = ["a,b,c,name"] + [f"{i},{2 * i},{3 * i},p{i}" for i in range(20)]
    rows[11] = "10,20,oops,p10"
    (tmp_path / "x.csv").write_text("\n".join(rows) + "\n")
    lat = read_table(tmp_path / "x.csv", TableColumns())
    assert lat.z.shape == (20, 2)
    np.testing.assert_array_equal(lat.z[3], [3, 6])
    assert lat.meta["columns_left_out"] == ["c (string)", "name (string)"]
    assert main(["-q", "analyze", str(tmp_path / "x.csv"), "--only", "radius", "--out", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["source"]["columns_left_out"] == ["c (string)", "name (string)"]
    page = (tmp_path / "r" / "report.html").read_text()
    assert "from an AE (unknown dataset)." in page
    assert "Table columns not read as coordinates (not numeric): c (string), name (string)." in page
