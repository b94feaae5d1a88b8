"""The CSV files of the bulk import: quoting, empty strings, arrays, edge direction, refusals."""

import csv
import socket
from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive.codes import Codes
from cxrneo.db import bulk
from cxrneo.errors import ConfigError, InputError, ServerError
from cxrneo.graph import Edges
from cxrneo.records import ImageRecord
from cxrneo.settings import Settings


def _codes(records: list[ImageRecord], seed: int = 0) -> Codes:
    rng = np.random.default_rng(seed)
    return Codes(codes=rng.standard_normal((len(records), 1024)).astype(np.float32), images=tuple(records))


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))  # RFC 4180, as neo4j-admin reads it (quote doubling)


def test_images_csv_quotes_and_round_trips(tmp_path: Path) -> None:
    recs = [
        ImageRecord(id='b,"odd" id', path="dir,with,commas/x.png", labels=("Mass", "Nodule"),
                    patient_id="p1", view="PA", sex="F", age=41, split="train"),
        ImageRecord(id="a", labels=(), age=None),
    ]
    codes = _codes(recs)
    paths = bulk.write_csv(tmp_path, codes, Edges.empty())
    rows = _read(paths["images"])
    assert tuple(rows[0]) == bulk.IMAGE_HEADER
    first, second = ({name.split(":")[0]: v for name, v in zip(rows[0], row, strict=True)} for row in rows[1:3])
    assert first == {**first, "id": 'b,"odd" id', "path": "dir,with,commas/x.png", "labels": "Mass;Nodule",
                     "patientId": "p1", "view": "PA", "sex": "F", "age": "41", "split": "train", "followUp": "",
                     "studyUid": "", "seriesUid": ""}
    back = np.array([float(x) for x in first["code"].split(";")], dtype=np.float32)
    assert np.array_equal(back, codes.codes[0])  # %.9g round-trips float32 exactly
    raw = paths["images"].read_text().splitlines()[2]
    assert raw.startswith('"a","","",""')  # empty strings stay quoted: "" is a value, not null
    assert second["age"] == "" and ',,"' in raw  # age None: an unquoted empty field (no property)


def test_similar_csv_runs_from_the_smaller_id(tmp_path: Path) -> None:
    codes = _codes([ImageRecord(id=x) for x in ("z,1", "a", "m")])
    edges = Edges(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.5, 0.25, 0.125], np.float32))
    rows = _read(bulk.write_csv(tmp_path, codes, edges)["similar"])
    assert tuple(rows[0]) == bulk.SIMILAR_HEADER
    assert sorted(rows[1:]) == [["a", "m", "0.125"], ["a", "z,1", "0.5"], ["m", "z,1", "0.25"]]


def test_cosine_text_is_the_double_plain_ingest_stores(tmp_path: Path) -> None:
    c = np.float32(0.1)
    codes = _codes([ImageRecord(id="a"), ImageRecord(id="b")])
    rows = _read(bulk.write_csv(tmp_path, codes, Edges(np.array([0]), np.array([1]), np.array([c])))["similar"])
    assert float(rows[1][2]) == float(c)  # the float32 value widened, not 0.1


@pytest.mark.parametrize("rec", [ImageRecord(id="line\nbreak"), ImageRecord(id="a", labels=("x;y",))])
def test_values_the_csv_cannot_carry_are_refused(tmp_path: Path, rec: ImageRecord) -> None:
    with pytest.raises(InputError, match="plain `cxrneo ingest`"):
        bulk.write_csv(tmp_path, _codes([rec]), Edges.empty())


def test_bulk_refuses_a_remote_or_foreign_server(tmp_path: Path) -> None:
    remote = Settings(neo4j_uri="bolt://10.1.2.3:7687", neo4j_password="x" * 8, data_dir=tmp_path)
    with pytest.raises(ServerError, match="loopback"):
        bulk._local_config(remote)
    with socket.socket() as s:  # something listens, but no server of ours runs from data_dir
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        foreign = Settings(neo4j_uri=f"bolt://127.0.0.1:{port}", neo4j_password="x" * 8, data_dir=tmp_path)
        with pytest.raises(ConfigError, match="local server only"):
            bulk._local_config(foreign)
    with pytest.raises(ConfigError, match="'neo4j'"):
        bulk._local_config(Settings(neo4j_database="other", data_dir=tmp_path))
