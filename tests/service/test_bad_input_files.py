"""Bad and tricky input files through the real data-in mesh (acquire, profile, prep on Tansu).

Every case is a file (or folder) submitted as an experiment on ONE mesh that lives for the
whole module (all cases at once, so the services also work on them side by side), with its
expected outcome: ``prepared`` (plus a check that the data came
through as it should), or ``failed`` at a named stage with a reason containing a named
phrase. The last test submits a good experiment after all of them: the mesh must still
prepare it. Big inputs are generated once per module.

The "1M-level categorical" is stood in for by 200,000 rows whose ``customer`` column is
unique on every row: the behaviour under test (a column with one level per row is treated
as an identifier and kept out of the features) is the same, and it keeps the module fast.
"""

from __future__ import annotations

import asyncio
import bz2
import gzip
import io
import lzma
import tarfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import pytest_asyncio

from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh_common.settings import Settings

pytestmark = [pytest.mark.service, pytest.mark.asyncio(loop_scope="module")]

ROWS = 150


def table(rows: int = ROWS, seed: int = 3) -> pd.DataFrame:
    """A small classification table whose label depends on income and city."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Genève", "Zürich", "Köln", "Oslo"], rows)
    income = rng.normal(50_000, 12_000, rows).round(2)
    signal = income / 12_000 + (city == "Oslo") * 1.5 + rng.normal(0, 0.8, rows)
    return pd.DataFrame({
        "age": rng.integers(18, 80, rows),
        "income": income,
        "city": city,
        "label": np.where(signal > np.median(signal), "yes", "no"),
    })


def csv_bytes(frame: pd.DataFrame | None = None, **kwargs: object) -> bytes:
    return (table() if frame is None else frame).to_csv(index=False, **kwargs).encode()


# -- builders: each writes its input under `folder` and returns the path -------------------

Builder = Callable[[Path], Path]


def write(name: str, data: bytes | Callable[[], bytes]) -> Builder:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data() if callable(data) else data)
        return path
    return build


def latin1_csv() -> bytes:
    return table().to_csv(index=False).encode("latin-1")


def quoted_newlines_csv() -> bytes:
    frame = table()
    frame.insert(3, "comment", [f"line one\nline {i}, with a comma" for i in range(ROWS)])
    return csv_bytes(frame)


def duplicate_columns_csv() -> bytes:
    frame = table()
    frame.insert(2, "extra", np.random.default_rng(11).integers(0, 100, ROWS))
    return csv_bytes(frame).replace(b"age,income,extra", b"age,income,age", 1)


def decimal_comma_csv() -> bytes:
    return csv_bytes(sep=";", decimal=",")


def mixed_delimiters_csv() -> bytes:
    lines = csv_bytes().decode().splitlines()
    lines[1::2] = [line.replace(",", ";") for line in lines[1::2]]
    return "\n".join(lines).encode()


def nested_json() -> bytes:
    frame = table()
    records = [{"person": {"age": int(r.age), "home": {"city": r.city}},
                "income": r.income, "label": r.label} for r in frame.itertuples()]
    return pd.Series([{"meta": {"source": "test"}, "data": records}]).to_json(
        orient="records")[1:-1].encode()


def wide_csv() -> bytes:
    rng = np.random.default_rng(5)
    values = rng.integers(0, 10, (40, 10_000))
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(10_000)])
    frame["label"] = np.where(values[:, 0] > 4, "yes", "no")
    return csv_bytes(frame)


def high_cardinality_csv() -> bytes:
    rows = 200_000
    rng = np.random.default_rng(9)
    x = rng.normal(0, 1, rows).round(4)
    frame = pd.DataFrame({
        "customer": [f"cust-{i:07d}" for i in rng.permutation(rows)],
        "x": x,
        "label": np.where(x + rng.normal(0, 0.5, rows) > 0, "yes", "no"),
    })
    return csv_bytes(frame)


def target_all_null_csv() -> bytes:
    frame = table()
    frame["label"] = None
    return csv_bytes(frame)


def target_single_class_csv() -> bytes:
    frame = table()
    frame["label"] = "yes"
    return csv_bytes(frame)


def zip_of(members: dict[str, bytes], *, raw_names: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name) if raw_names else name, data)
    return buffer.getvalue()


def tar_gz_with_link_out() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        data = csv_bytes()
        info = tarfile.TarInfo("data/train.csv")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("data/secrets.csv")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../../etc/shadow"
        tf.addfile(link)
    return buffer.getvalue()


def corrupt_footer_parquet(folder: Path) -> Path:
    path = folder / "corrupt.parquet"
    table().to_parquet(path)
    data = bytearray(path.read_bytes())
    data[-12:-4] = b"\xff" * 8  # the footer length and the end of the metadata
    path.write_bytes(bytes(data))
    return path


def workbook(folder: Path, name: str, sheets: dict[str, pd.DataFrame | None]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for sheet_name, frame in sheets.items():
        sheet = book.create_sheet(sheet_name)
        if frame is not None:
            sheet.append(list(frame.columns))
            for row in frame.itertuples(index=False):
                sheet.append([v.item() if hasattr(v, "item") else v for v in row])
    path = folder / name
    book.save(path)
    return path


def partitioned_folder(folder: Path) -> Path:
    path = folder / "by_city"
    pq.write_to_dataset(pa.Table.from_pandas(table(), preserve_index=False), path,
                        partition_cols=["city"])
    return path


# -- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input and what must become of it."""

    id: str
    build: Builder
    status: str  # prepared | failed
    stage: str = ""
    phrase: str = ""
    target: str = "label"
    options: dict[str, str] = field(default_factory=dict)
    #: For prepared cases: feature columns that must (or must not, with a leading "-") be there.
    features: tuple[str, ...] = ()
    #: For prepared cases: train + valid + test rows.
    rows: int | None = None


def prepared(id: str, build: Builder, *, features: tuple[str, ...] = ("age", "income", "city"),
             rows: int | None = ROWS, **kwargs: object) -> Case:
    return Case(id, build, "prepared", features=features, rows=rows, **kwargs)


def failed(id: str, build: Builder, stage: str, phrase: str, **kwargs: object) -> Case:
    return Case(id, build, "failed", stage=stage, phrase=phrase, **kwargs)


CASES = [
    failed("zero-byte file", write("empty.csv", b""), "acquire", "empty (0 bytes)"),
    failed("binary junk named .csv",
           write("junk.csv", lambda: np.random.default_rng(7).bytes(8192)),
           "acquire", "is binary, not CSV text"),
    failed("an HTML login page named .csv",
           write("export.csv", b"<!DOCTYPE html><html><body>Please sign in</body></html>"),
           "acquire", "HTML or XML, not CSV"),
    failed("header only", write("header.csv", b"age,income,city,label\n"), "acquire",
           "4 column(s) but no data rows"),
    prepared("latin-1 text", write("latin1.csv", latin1_csv)),
    prepared("UTF-8 byte-order mark", write("bom.csv", lambda: b"\xef\xbb\xbf" + csv_bytes())),
    prepared("UTF-16 with BOM, tab-separated",
             write("excel-export.txt", lambda: table().to_csv(index=False, sep="\t")
                   .encode("utf-16"))),
    failed("mixed delimiters", write("mixed.csv", mixed_delimiters_csv), "acquire",
           "delimiter ',' (sniffed) is probably wrong"),
    prepared("quoted newlines", write("quoted.csv", quoted_newlines_csv),
             features=("age", "income", "city")),
    prepared("duplicate column names", write("dupes.csv", duplicate_columns_csv),
             features=("age", "age.1", "income", "city")),
    prepared("decimal comma with semicolons", write("eu.csv", decimal_comma_csv)),
    prepared("TSV", write("data.tsv", lambda: csv_bytes(sep="\t"))),
    prepared("nested JSON", write("api.json", nested_json),
             features=("person.age", "person.home.city", "income")),
    prepared("JSON Lines", write("rows.jsonl",
                                 lambda: table().to_json(orient="records", lines=True).encode())),
    prepared("gzip", write("data.csv.gz", lambda: gzip.compress(csv_bytes()))),
    prepared("bzip2", write("data.csv.bz2", lambda: bz2.compress(csv_bytes()))),
    prepared("xz", write("data.csv.xz", lambda: lzma.compress(csv_bytes()))),
    prepared("multi-file zip with member option",
             write("bundle.zip", lambda: zip_of({
                 "train.csv": csv_bytes(), "holdout.csv": csv_bytes(table(60, seed=4)),
                 "README.txt": b"two tables"})),
             options={"member": "holdout.csv"}, rows=60),
    prepared("partitioned Parquet folder", partitioned_folder),
    prepared("Excel sheet chosen by option",
             lambda f: workbook(f, "book.xlsx", {"Notes": pd.DataFrame({"n": ["x"]}),
                                                 "Data": table()}),
             options={"sheet": "Data"}),
    failed("Excel with only empty sheets",
           lambda f: workbook(f, "empty.xlsx", {"Sheet1": None, "Sheet2": None}),
           "acquire", "only empty sheets ('Sheet1', 'Sheet2')"),
    failed("Parquet with a corrupt footer", corrupt_footer_parquet, "acquire",
           "probably truncated or corrupt"),
    failed("zip bomb", write("bomb.zip", lambda: zip_of({"data.csv": b"0," * (24 * 1024**2)})),
           "acquire", "refused as a likely zip bomb"),
    failed("path-traversal zip",
           write("evil.zip", lambda: zip_of({"train.csv": csv_bytes(),
                                             "../../outside.csv": b"x\n1\n"}, raw_names=True)),
           "acquire", "points outside the extraction folder"),
    failed("tar.gz with a symlink out",
           write("links.tar.gz", tar_gz_with_link_out), "acquire",
           "symbolic link 'data/secrets.csv' -> '../../../etc/shadow'"),
    failed("archive nested three deep",
           write("deep.zip", lambda: zip_of({"b.zip": zip_of({"c.zip": zip_of(
               {"t.csv": csv_bytes()})})})),
           "acquire", "only one level of nesting"),
    failed("member option naming nothing",
           write("named.zip", lambda: zip_of({"train.csv": csv_bytes()})), "acquire",
           "has no member 'test.csv'", options={"member": "test.csv"}),
    failed("invalid source option", write("opt.csv", csv_bytes), "acquire",
           "must be one character", options={"delimiter": ";;"}),
    prepared("10,000 columns", write("wide.csv", wide_csv), features=("f1", "f9999"), rows=40),
    failed("one row", write("one.csv", lambda: csv_bytes(table(1))), "profile",
           "has a single value"),
    failed("all-null target", write("null-target.csv", target_all_null_csv), "profile",
           "target column 'label' is empty (every value is missing)"),
    failed("single-class target", write("one-class.csv", target_single_class_csv), "profile",
           "target column 'label' has a single value ('yes')"),
    prepared("200k-level categorical (stand-in for 1M)",
             write("customers.csv", high_cardinality_csv),
             features=("x", "-customer"), rows=200_000),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case's input, generated once."""
    folder = tmp_path_factory.mktemp("bad-inputs")
    return {case.id: case.build(folder) for case in CASES}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(request: pytest.FixtureRequest, kafka_bootstrap: str,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[object]:
    """One data-in mesh (tests/service/conftest.py's DataInMesh) for the whole corpus, so the
    last test shows it still works after every bad input."""
    mesh_class = next(p.DataInMesh for p in request.config.pluginmanager.get_plugins()
                      if hasattr(p, "DataInMesh"))
    settings = Settings(
        home=tmp_path_factory.mktemp("mesh") / "home", kafka_bootstrap=kafka_bootstrap,
        max_attempts=2, retry_initial_s=0.1, retry_max_s=0.5, breaker_fail_max=2,
        breaker_reset_s=1.0, session_timeout_ms=6000, heartbeat_interval_ms=1000,
        shutdown_grace_s=5, instance=f"test-{uuid.uuid4().hex[:6]}")
    mesh = mesh_class(settings)
    await mesh.start()
    try:
        yield mesh
    finally:
        await mesh.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def outcomes(mesh: object, inputs: dict[str, Path]) -> dict[str, object]:
    """Every case submitted at once (the mesh works on them side by side), by case id."""
    specs = [ExperimentSpec(dataset_uri=inputs[case.id].as_uri(), target=case.target,
                            project="bad-inputs", source_options=case.options)
             for case in CASES]
    results = await asyncio.gather(*(mesh.run(spec, timeout_s=240) for spec in specs))
    return {case.id: result for case, result in zip(CASES, results, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_file(case: Case, outcomes: dict[str, object]) -> None:
    outcome = outcomes[case.id]
    summary = (outcome.status, outcome.stage, outcome.reason)
    if case.status == "failed":
        assert outcome.status == "failed", summary
        assert outcome.stage == case.stage, summary
        assert case.phrase in outcome.reason, summary
        return
    assert outcome.status == "prepared", summary
    event = outcome.event
    assert event.target == case.target
    # Columns read from the file are in the profile; prep's feature selection may still
    # leave an uninformative one out of the model's features, so positive names are checked
    # against what was read.
    read = _profiled_columns(event)
    for name in case.features:
        if name.startswith("-"):
            assert name[1:] not in event.feature_columns, list(event.feature_columns)
        else:
            assert name in read, read
    if case.rows is not None:
        assert event.n_train + event.n_valid + event.n_test == case.rows


async def test_a_good_experiment_is_still_prepared_after_all_that(
        mesh: object, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("good") / "good.csv"
    path.write_bytes(csv_bytes())
    outcome = await mesh.run(ExperimentSpec(dataset_uri=path.as_uri(), target="label",
                                            project="bad-inputs"), timeout_s=120)
    assert outcome.status == "prepared", outcome.reason
    assert outcome.event.n_train + outcome.event.n_valid + outcome.event.n_test == ROWS


def _profiled_columns(event) -> list[str]:
    """Names of the columns the profile saw (read from the local artifact store)."""
    import json
    from urllib.parse import unquote, urlparse

    profile = json.loads(Path(unquote(urlparse(event.profile.uri).path)).read_text())
    return [c["name"] for c in profile["columns"]]
