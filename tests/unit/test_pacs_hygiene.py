"""PACS hygiene against real loopback DICOMweb servers (tests/hostile_pacs.py): UIDs checked before they
become a file name or a URL part, credentials never carried across origins or from https to http by
a redirect, and the bounded instance cache of `cxrneo serve --dicomweb`."""

import os
import ssl
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo import labels as lsets
from cxrneo.cli.main import app
from cxrneo.errors import InputError, ServiceError
from cxrneo.pacs.cache import InstanceCache
from cxrneo.pacs.dicomweb import DicomWeb, Instance, check_uid
from cxrneo.pacs.redirects import keeps_credentials
from cxrneo.pacs.uid import file_of, is_uid
from cxrneo.records import ImageRecord
from cxrneo.service.request import QueryOptions
from cxrneo.service.searcher import Searcher
from cxrneo.tables.pacs import pacs_table
from tests.certs import server_context
from tests.hostile_pacs import FakePacs
from tests.memory_archive import MemoryArchive

STUDY, SERIES = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.1.1"
LONGEST = "1.2.826.0.1.3680043.8.498." + "1" * 38  # 64 characters
BAD = "PACS returned a bad SOPInstanceUID"


# --- the validator ---------------------------------------------------------------------------

@pytest.mark.parametrize("uid", ["0", "1.2", "1.2.840.10008.5.1.4.1.1.1", "2.25.0.10", LONGEST, STUDY])
def test_a_dicom_uid_passes(uid: str) -> None:
    assert check_uid(uid, BAD) == uid and is_uid(uid)


@pytest.mark.parametrize("uid", [
    "../x", "../../evil", "1.2.3/4", "1.2.3\\4", LONGEST + "1", "", ".", "1.", ".1", "1..2", "01.2", "1.02.3",
    "1.2.00", "١.٢", "1.2.٣", "1.2٣", "1.2.3０", "１.２", " 1.2", "1.2\n", "1.2\x00", "1.2a", "-1.2", "+1.2", "1e5",
])
def test_anything_else_is_refused_in_one_line(uid: str) -> None:
    assert not is_uid(uid)
    with pytest.raises(InputError) as e:
        check_uid(uid, BAD)
    assert str(e.value) == f"{BAD} {uid!r}: not a DICOM UID" and "\n" not in str(e.value)


def test_a_uid_that_is_not_text_is_refused() -> None:
    for value in (None, 12, ["1.2"]):
        assert not is_uid(value)
        with pytest.raises(InputError, match="not a DICOM UID"):
            check_uid(value, BAD)


def test_a_file_named_from_a_uid_stays_in_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    folder.mkdir()
    assert file_of(folder, "1.2.3", ".dcm", BAD) == folder.resolve() / "1.2.3.dcm"
    (tmp_path / "elsewhere.dcm").write_bytes(b"somebody else's file")
    (folder / "1.2.4.dcm").symlink_to(tmp_path / "elsewhere.dcm")  # a link planted in the folder
    with pytest.raises(InputError, match="outside"):
        file_of(folder, "1.2.4", ".dcm", BAD)
    with pytest.raises(InputError, match="not a DICOM UID"):
        file_of(folder, "../elsewhere", ".dcm", BAD)


# --- a hostile PACS: ingest and serve refuse it, nothing is written outside the folder ----------

def test_ingest_refuses_a_traversing_sop_uid_and_writes_nothing_outside(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "instances"
    folder.mkdir(parents=True)
    planted = tmp_path / "a" / "evil.dcm"  # where folder / "../../evil.dcm" would land
    planted.write_bytes(b"a file that must not be read as the PACS's")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with FakePacs([(STUDY, SERIES, "../../evil")]) as pacs:
        with pytest.raises(InputError) as e:
            pacs_table(DicomWeb(pacs.url), folder, lsets.get("nih"), ("DX",))
        assert pacs.retrieved == []  # refused before any WADO-RS request
    assert str(e.value) == f"{BAD} '../../evil': not a DICOM UID"
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert planted.read_bytes() == b"a file that must not be read as the PACS's"


@pytest.mark.parametrize(("instance", "tag"), [
    (("../x", SERIES, "1.2.3"), "StudyInstanceUID"), ((STUDY, "1.2/../../3", "1.2.3"), "SeriesInstanceUID"),
])
def test_a_bad_study_or_series_uid_never_becomes_a_url(tmp_path: Path, instance: tuple[str, str, str],
                                                      tag: str) -> None:
    with FakePacs([instance]) as pacs:
        with pytest.raises(InputError, match=f"PACS returned a bad {tag} .*: not a DICOM UID"):
            pacs_table(DicomWeb(pacs.url), tmp_path / "inst", lsets.get("nih"), ("DX",))
        asked = [s.path.split("?")[0] for s in pacs.seen]
    assert all(".." not in p for p in asked) and len(asked) == (1 if tag == "StudyInstanceUID" else 2)


def test_the_cli_says_it_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_URI", "bolt://127.0.0.1:1")
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "not-used-here")
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CXRNEO_DEBUG", raising=False)
    with FakePacs([(STUDY, SERIES, "../../evil")]) as pacs:
        done = CliRunner().invoke(app, ["embed", str(tmp_path / "best.pt"), "--label-set", "nih", "--dicomweb",
                                        pacs.url, "--images", str(tmp_path / "x" / "y"), "--out",
                                        str(tmp_path / "codes.npz")])
    lines = [ln for ln in done.output.splitlines() if ln.strip()]
    assert done.exit_code == 1 and lines == [f"error: {BAD} '../../evil': not a DICOM UID"], done.output
    assert not (tmp_path / "evil.dcm").exists() and not (tmp_path / "codes.npz").exists()


def _searcher(pacs: FakePacs, records: list[ImageRecord], folder: Path, cache_bytes: int | None = None) -> Searcher:
    codes = np.eye(len(records), 8, dtype=np.float32) + 0.5  # all alike: every image is a neighbour
    archive = MemoryArchive(records, codes, threshold=0.1, community=[0] * len(records))
    return Searcher(archive, pacs=DicomWeb(pacs.url), pacs_dir=folder, pacs_cache_bytes=cache_bytes)  # type: ignore[arg-type]


def test_serve_refuses_a_stored_id_that_is_not_a_uid_and_hides_bad_viewer_links(tmp_path: Path) -> None:
    good = ImageRecord(id="1.2.3.4", study_uid=STUDY, series_uid=SERIES)
    evil = ImageRecord(id="../../evil", study_uid=STUDY, series_uid=SERIES)
    odd = ImageRecord(id="1.2.3.5", study_uid="../x", series_uid=SERIES)
    with FakePacs([(STUDY, SERIES, "1.2.3.4")]) as pacs:
        searcher = _searcher(pacs, [good, evil, odd], tmp_path / "instances")
        with pytest.raises(InputError, match="bad SOPInstanceUID '../../evil': not a DICOM UID"):
            searcher.image_file("../../evil")
        with pytest.raises(InputError, match="bad StudyInstanceUID '../x': not a DICOM UID"):
            searcher.image_file("1.2.3.5")
        assert pacs.retrieved == []
        kept = searcher.image_file("1.2.3.4")
        assert pacs.retrieved == ["1.2.3.4"] and kept.read_bytes() == b"DICM-1.2.3.4"
        hits = {h.image_id: h for h in searcher.by_id("1.2.3.4", QueryOptions(k=2, method="knn")).hits}
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [kept.name]
    assert kept.parent == tmp_path / "instances" and os.stat(kept).st_mode & 0o077 == 0
    assert hits["1.2.3.5"].study_uid is None and hits["../../evil"].study_uid == STUDY  # links from real UIDs only


# --- redirects -------------------------------------------------------------------------------

def test_the_redirect_rule() -> None:
    assert keeps_credentials("http://pacs/dicom-web/studies", "http://pacs:80/elsewhere")
    assert keeps_credentials("https://pacs:443/a", "https://PACS/b")
    assert not keeps_credentials("http://pacs:8042/a", "http://pacs:8043/a")  # another port
    assert not keeps_credentials("http://pacs/a", "http://other/a")  # another host
    assert not keeps_credentials("http://pacs/a", "https://pacs/a")  # another scheme, upgraded: followed bare
    for target in ("http://pacs/a", "http://other/a"):
        with pytest.raises(ServiceError, match="from https to plain http"):
            keeps_credentials("https://pacs/a", target)
    for target in ("ftp://pacs/a", "file:///etc/passwd", "http:///nohost"):
        with pytest.raises(ServiceError, match="only http"):
            keeps_credentials("http://pacs/a", target)


def test_a_redirect_to_another_origin_carries_no_credentials(tmp_path: Path) -> None:
    with FakePacs([(STUDY, SERIES, "1.2.3.4")]) as second, FakePacs(redirect=None) as first:
        first.redirect = second.origin
        client = DicomWeb(first.url, "reader", "s3cret-password")
        found = list(client.instances(("DX",)))
        client.retrieve(found[0], tmp_path / "one.dcm")
    assert found == [Instance(STUDY, SERIES, "1.2.3.4")] and (tmp_path / "one.dcm").read_bytes() == b"DICM-1.2.3.4"
    assert first.seen and all(s.headers.get("authorization", "").startswith("Basic ") for s in first.seen)
    assert len(second.seen) == 4 and second.retrieved == ["1.2.3.4"]  # studies, series, instances, the instance
    assert not [s for s in second.seen if set(s.headers) & {"authorization", "proxy-authorization", "cookie"}]
    assert all(s.headers.get("accept") for s in second.seen)


def test_a_redirect_within_the_origin_keeps_them() -> None:
    with FakePacs([(STUDY, SERIES, "1.2.3.4")]) as pacs:
        pacs.redirect = pacs.origin  # /dicom-web/... -> /moved/dicom-web/... on the same server
        assert list(DicomWeb(pacs.url, "reader", "pw").instances(("DX",))) == [Instance(STUDY, SERIES, "1.2.3.4")]
    moved = [s for s in pacs.seen if s.path.startswith("/moved/")]
    assert len(moved) == 3 and all(s.headers.get("authorization", "").startswith("Basic ") for s in moved)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 with a self-signed certificate, and the certificate as a CA bundle."""
    return server_context(tmp_path_factory.mktemp("tls"))


def test_https_to_http_is_refused(tls: tuple[ssl.SSLContext, Path]) -> None:
    server, bundle = tls
    with FakePacs([(STUDY, SERIES, "1.2.3.4")]) as plain, FakePacs(tls=server) as secure:
        assert list(DicomWeb(secure.url, ca_bundle=bundle).instances(("DX",))) == []  # TLS itself works
        secure.redirect = plain.origin
        with pytest.raises(ServiceError) as e:
            list(DicomWeb(secure.url, "reader", "s3cret-password", ca_bundle=bundle).instances(("DX",)))
    assert "from https to plain http" in str(e.value) and "\n" not in str(e.value)
    assert plain.seen == []  # nothing, credentials or not, went out in the clear


# --- the instance cache of `serve --dicomweb` -------------------------------------------------

@pytest.fixture()
def pacs() -> Iterator[FakePacs]:
    sops = [f"1.2.3.{i}" for i in range(1, 5)]
    with FakePacs([(STUDY, SERIES, s) for s in sops], {s: s.encode() * 10 for s in sops}) as server:
        yield server


def _cache(pacs: FakePacs, folder: Path, max_bytes: int) -> tuple[InstanceCache, dict[str, Instance]]:
    return InstanceCache(DicomWeb(pacs.url), folder, max_bytes), {s: Instance(STUDY, SERIES, s)
                                                                   for _, _, s in pacs.instances}


def _held(folder: Path) -> set[bytes]:
    return {p.read_bytes()[:7] for p in folder.glob("*.dcm")}


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(pacs: FakePacs, tmp_path: Path) -> None:
    cache, inst = _cache(pacs, tmp_path / "c", 200)  # each instance is 70 bytes: two fit, three do not
    first = cache.file(inst["1.2.3.1"])
    assert first.read_bytes() == b"1.2.3.1" * 10
    cache.file(inst["1.2.3.2"])
    assert cache.file(inst["1.2.3.1"]) == first  # a hit: 1.2.3.1 is now the more recent
    assert pacs.retrieved == ["1.2.3.1", "1.2.3.2"]
    cache.file(inst["1.2.3.3"])
    assert _held(tmp_path / "c") == {b"1.2.3.1", b"1.2.3.3"}  # 1.2.3.2 was the least recently used
    cache.file(inst["1.2.3.2"])
    assert _held(tmp_path / "c") == {b"1.2.3.3", b"1.2.3.2"}
    assert pacs.retrieved == ["1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.2"]
    assert cache.evict() <= 200


def test_an_empty_or_unreadable_kept_file_is_fetched_again(pacs: FakePacs, tmp_path: Path) -> None:
    cache, inst = _cache(pacs, tmp_path / "c", 1 << 20)
    path = cache.file(inst["1.2.3.1"])
    path.write_bytes(b"")  # as a crash of an unsafe writer leaves it
    assert cache.file(inst["1.2.3.1"]).read_bytes() == b"1.2.3.1" * 10
    path.unlink()
    path.mkdir()  # something that cannot be read as a file
    assert cache.file(inst["1.2.3.1"]).read_bytes() == b"1.2.3.1" * 10
    assert pacs.retrieved == ["1.2.3.1"] * 3


def test_a_partial_temporary_file_is_never_served(pacs: FakePacs, tmp_path: Path) -> None:
    cache, inst = _cache(pacs, tmp_path / "c", 1 << 20)
    name = cache.file(inst["1.2.3.1"]).name
    target = f"{sha256(b'1.2.3.2').hexdigest()[:32]}.dcm"  # the final name of 1.2.3.2
    stale = tmp_path / "c" / f".part-1-2-{target}"  # a crash in the middle of writing 1.2.3.2
    stale.write_bytes(b"1.2.3.2" * 3)
    fresh = tmp_path / "c" / f".part-3-4-{target}"  # another service writing it right now
    fresh.write_bytes(b"1.2.3.2")
    hour_ago = stale.stat().st_mtime - 7200
    os.utime(stale, (hour_ago, hour_ago))
    got = cache.file(inst["1.2.3.2"])
    assert got.name == target and got.read_bytes() == b"1.2.3.2" * 10  # whole, from the PACS
    assert not stale.exists() and fresh.exists()  # the crash's leftover removed, a write in flight left alone
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted([name, target, fresh.name])
    assert os.stat(tmp_path / "c").st_mode & 0o077 == 0 and os.stat(got).st_mode & 0o077 == 0


def test_serve_refuses_a_cache_bound_below_one_mb() -> None:
    from cxrneo.api.startup import ServeOptions
    from cxrneo.errors import ConfigError

    assert ServeOptions().pacs_cache_mb == 2048
    ServeOptions(pacs_cache_mb=1).check()
    with pytest.raises(ConfigError, match="--pacs-cache-mb must be at least 1, got 0"):
        ServeOptions(pacs_cache_mb=0).check()
