"""A DICOMweb client (standard library only): QIDO-RS to search, WADO-RS to retrieve, and STOW-RS to store
the one kind of object cxrneo writes, a key object (cxrneo.pacs.keyobject), only where the service
was allowed to (`serve --pacs-write`, or `cxrneo keep`).

cxrneo never deletes anything in a PACS, nor stores an instance it holds already. The user and
password come from the settings (CXRNEO_PACS_USER, CXRNEO_PACS_PASSWORD), never from argv, and are
never logged; TLS certificates are verified (a hospital CA can be added with a CA bundle). Every answer is read within a bound:
a QIDO-RS page up to MAX_JSON_BYTES, an instance up to MAX_INSTANCE_BYTES, streamed to disk in
chunks as it arrives (memory stays at one chunk); transient failures (connection resets, 5xx, 429)
are retried with back-off.

Every UID of a QIDO-RS answer is checked (cxrneo.pacs.uid) before it becomes part of a URL or a
file name, redirects never carry the credentials to another origin nor from https to http
(cxrneo.pacs.redirects), and a retrieved instance is written to a private temporary file, synced
and renamed, so that a crash never leaves a partial file under the final name.
"""

import base64
import json
import os
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from cxrneo.errors import ConfigError, CxrneoError, InputError, PacsError, ServiceError
from cxrneo.pacs.redirects import opener
from cxrneo.pacs.uid import check_uid, file_of
from cxrneo.settings import Settings

MAX_INSTANCE_BYTES = 512 << 20  # one DICOM instance larger than this is refused
MAX_JSON_BYTES = 64 << 20  # one QIDO-RS answer (a page of PAGE results) larger than this is refused
CHUNK = 1 << 20
RETRIES = 4
PAGE = 1000  # QIDO-RS results per request (limit/offset)


def modalities(text: str) -> tuple[str, ...]:
    """The modalities of a `--modality CR,DX` flag."""
    return tuple(m.strip().upper() for m in text.split(",") if m.strip())


@dataclass(frozen=True)
class Instance:
    """One image in the PACS, by its UIDs."""

    study: str
    series: str
    sop: str

    def checked(self, what: str) -> "Instance":
        """The instance when its three UIDs are DICOM UIDs; InputError "<what> <Tag> '...': not a DICOM UID"."""
        check_uid(self.study, f"{what} StudyInstanceUID")
        check_uid(self.series, f"{what} SeriesInstanceUID")
        check_uid(self.sop, f"{what} SOPInstanceUID")
        return self


def _tag(doc: dict[str, Any], tag: str) -> str:
    value = (doc.get(tag) or {}).get("Value") or [""]
    return str(value[0])


class DicomWeb:
    """One DICOMweb service root (e.g. http://pacs:8042/dicom-web)."""

    def __init__(self, url: str, user: str | None = None, password: str | None = None,
                 ca_bundle: Path | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"--dicomweb must be an http(s) URL of a DICOMweb root, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._auth = ("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()) if user else None
        tls = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        self._opener = opener([urllib.request.HTTPSHandler(context=tls)])

    @classmethod
    def from_settings(cls, url: str, settings: Settings, ca_bundle: Path | None = None) -> "DicomWeb":
        """A client with the credentials of the settings (CXRNEO_PACS_USER, CXRNEO_PACS_PASSWORD)."""
        password = settings.pacs_password.get_secret_value() if settings.pacs_password else None
        return cls(url, settings.pacs_user, password, ca_bundle)

    def _open(self, path: str, accept: str, body: bytes | None = None, kind: str = "") -> Any:
        """The answer to a GET of ``path`` (a POST of ``body`` of type ``kind``), retried on transient
        failures; a refusal is one line (ConfigError, InputError, ServiceError; PacsError for a POST)."""
        req = urllib.request.Request(self.url + path, data=body, headers={"Accept": accept},
                                     method="GET" if body is None else "POST")
        if kind:
            req.add_header("Content-Type", kind)
        if self._auth:
            req.add_header("Authorization", self._auth)
        where = path.split("?")[0]
        for attempt in range(RETRIES):
            try:
                return self._opener.open(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                last = attempt + 1 == RETRIES or e.code < 500 and e.code != 429
                if body is not None and last:
                    hint = ": check CXRNEO_PACS_USER and CXRNEO_PACS_PASSWORD" if e.code in (401, 403) else ""
                    raise PacsError(f"the PACS at {self.url} refused to store at {where}: HTTP {e.code}"
                                    f"{_why(e)}{hint}") from None
                if e.code in (401, 403):
                    raise ConfigError(f"the PACS at {self.url} refused the credentials (HTTP {e.code}): "
                                      "check CXRNEO_PACS_USER and CXRNEO_PACS_PASSWORD") from None
                if e.code == 404:
                    raise InputError(f"the PACS at {self.url} has no {where}") from None
                if last:
                    raise ServiceError(f"the PACS at {self.url} answered HTTP {e.code} to {where}") from None
            except (urllib.error.URLError, OSError) as e:
                if attempt + 1 == RETRIES:
                    reason = getattr(e, "reason", e)
                    error = PacsError if body is not None else ServiceError
                    raise error(f"cannot reach the PACS at {self.url} ({reason})") from None
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _json(self, path: str, body: bytes | None = None, kind: str = "") -> list[dict[str, Any]]:
        with self._open(path, "application/dicom+json", body, kind) as r:
            answer = r.read(MAX_JSON_BYTES + 1)
        if len(answer) > MAX_JSON_BYTES:
            raise ServiceError(f"the PACS at {self.url} sent more than {MAX_JSON_BYTES >> 20} MB for {path.split('?')[0]}")
        try:
            doc = json.loads(answer) if answer.strip() else []
        except ValueError:
            raise ServiceError(f"the PACS at {self.url} sent something other than DICOM JSON for {path}") from None
        if isinstance(doc, dict) and body is not None:  # a STOW-RS answer: one dataset
            return [doc]
        return doc if isinstance(doc, list) else []

    def _pages(self, path: str, query: dict[str, str]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._json(f"{path}?{urlencode({**query, 'limit': PAGE, 'offset': offset})}")
            yield from page
            if len(page) < PAGE:
                return
            offset += PAGE

    def instances(self, modalities: tuple[str, ...] = ("CR", "DX"), since: str | None = None) -> Iterator[Instance]:
        """Every instance of the series of those modalities, in studies since a date (YYYYMMDD)."""
        query = {"StudyDate": f"{since}-"} if since else {}
        bad = "PACS returned a bad"
        for study in self._pages("/studies", query):
            suid = check_uid(_tag(study, "0020000D"), f"{bad} StudyInstanceUID")
            for series in self._pages(f"/studies/{suid}/series", {}):
                if modalities and _tag(series, "00080060") not in modalities:
                    continue
                seuid = check_uid(_tag(series, "0020000E"), f"{bad} SeriesInstanceUID")
                for inst in self._pages(f"/studies/{suid}/series/{seuid}/instances", {}):
                    yield Instance(suid, seuid, check_uid(_tag(inst, "00080018"), f"{bad} SOPInstanceUID"))

    def retrieve(self, inst: Instance, dest: Path) -> Path:
        """WADO-RS: the instance (its UIDs checked first) as a DICOM file at ``dest``, streamed to a private
        temporary name in chunks (never held in memory), cut to its first part, synced, then renamed:
        ``dest`` is whole or absent, never partial."""
        inst.checked("bad")
        path = f"/studies/{inst.study}/series/{inst.series}/instances/{inst.sop}"
        tmp = dest.with_name(f"{PART}{os.getpid()}-{threading.get_ident()}-{dest.name}")  # concurrent callers
        try:
            with self._open(path, 'multipart/related; type="application/dicom"') as r, _private(tmp) as out:
                kind = r.headers.get("Content-Type", "")
                size = 0
                while chunk := r.read(CHUNK):
                    size += len(chunk)
                    if size > MAX_INSTANCE_BYTES:
                        raise InputError(f"instance {inst.sop} is larger than {MAX_INSTANCE_BYTES >> 20} MB")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            _first_part(tmp, kind)
            tmp.replace(dest)
            _sync_folder(dest.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def metadata(self, inst: Instance) -> dict[str, Any]:
        """WADO-RS: the header of one instance as DICOM JSON (no bulk data); InputError when the PACS
        has no such instance in that study and series."""
        inst.checked("bad")
        path = f"/studies/{inst.study}/series/{inst.series}/instances/{inst.sop}/metadata"
        try:
            found = self._json(path)
        except InputError:
            found = []
        if not found:
            raise InputError(f"the PACS at {self.url} has no instance {inst.sop} in study {inst.study}, "
                             f"series {inst.series}")
        return found[0]

    def has(self, inst: Instance) -> bool:
        """QIDO-RS: whether the PACS holds the instance in that study and series."""
        inst.checked("bad")
        path = f"/studies/{inst.study}/series/{inst.series}/instances?{urlencode({'SOPInstanceUID': inst.sop})}"
        try:
            found = self._json(path)
        except InputError:  # 404: no such study or series
            return False
        return any(_tag(doc, "00080018") == inst.sop for doc in found)

    def store(self, instance: bytes, where: Instance) -> None:
        """STOW-RS: one DICOM Part 10 instance (at the UIDs ``where``) stored in the PACS and then found
        there (QIDO-RS: an archive may answer success and drop what a filter of its own refused), or
        PacsError in one line: a refusal (an HTTP error, or a failure its answer lists), or no PACS."""
        where.checked("bad")
        boundary = f"cxrneo-{uuid.uuid4().hex}"
        body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + instance
                + f"\r\n--{boundary}--\r\n".encode())
        try:
            answer = self._json("/studies", body, f'multipart/related; type="application/dicom"; boundary={boundary}')
        except ServiceError as e:
            raise PacsError(str(e)) from None
        stored, failed = _stow_result(answer)
        if where.sop in failed or where.sop not in stored:
            why = f" (failure reason {failed[where.sop]})" if failed.get(where.sop) else ""
            raise PacsError(f"the PACS at {self.url} did not store instance {where.sop}{why}")
        try:
            held = self.has(where)
        except CxrneoError as e:
            raise PacsError(f"the PACS at {self.url} took instance {where.sop} but cannot be asked for it: {e}") from None
        if not held:
            raise PacsError(f"the PACS at {self.url} answered the store of instance {where.sop} but does not "
                            "hold it (a filter of the archive refused it?)")


def _why(e: urllib.error.HTTPError) -> str:
    """A refusal's reason as the PACS words it (Orthanc's "Message", a STOW-RS failure reason, else the
    HTTP reason), one line."""
    try:
        doc = json.loads(e.read(MAX_JSON_BYTES) or b"{}")
    except (ValueError, OSError):
        doc = {}
    said = doc.get("Message") if isinstance(doc, dict) else None
    failed = _stow_result([doc])[1] if isinstance(doc, dict) else {}
    if not said and failed:
        said = "failure reason " + ", ".join(sorted(set(failed.values())))
    text = " ".join(str(said or e.reason or "").split())[:200]
    return f" ({text})" if text else ""


def _stow_result(answer: list[dict[str, Any]]) -> tuple[set[str], dict[str, str]]:
    """(the SOP instances stored, those failed with their failure reason) of a STOW-RS answer."""
    stored: set[str] = set()
    failed: dict[str, str] = {}
    for doc in answer:
        for item in (doc.get("00081199") or {}).get("Value") or []:  # ReferencedSOPSequence
            stored.add(_tag(item, "00081155"))
        for item in (doc.get("00081198") or {}).get("Value") or []:  # FailedSOPSequence
            reason = (item.get("00081197") or {}).get("Value") or [""]
            failed[_tag(item, "00081155")] = f"0x{reason[0]:04X}" if isinstance(reason[0], int) else str(reason[0])
    return stored, failed


PART = ".part-"  # the name prefix of an instance being written (never served, see cxrneo.pacs.cache)


def instance_file(folder: Path, inst: Instance) -> Path:
    """Where ``inst`` is kept in ``folder``: ``<SOPInstanceUID>.dcm``, its UID checked and the file
    confirmed to lie inside ``folder`` (InputError otherwise)."""
    return file_of(folder, inst.sop, ".dcm", "PACS returned a bad SOPInstanceUID")


def _private(path: Path) -> BinaryIO:
    """A new file open for writing, readable by its owner only (an instance holds patient data)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _first_part(path: Path, kind: str) -> None:
    """Cut a multipart/related answer on disk down to its first part (WADO-RS sends one instance per
    part), in place and without reading it into memory; a plain application/dicom answer is left."""
    import mmap

    found = re.search(r'boundary="?([^";]+)"?', kind)
    if not found:
        return
    delimiter = b"--" + found.group(1).encode()
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ServiceError("the PACS sent an empty multipart answer")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            first = m.find(delimiter)
            head_end = m.find(b"\r\n\r\n", first) if first >= 0 else -1
            if first < 0 or head_end < 0 or m[first + len(delimiter):first + len(delimiter) + 2] == b"--":
                raise ServiceError("the PACS sent an empty multipart answer")
            start = head_end + 4
            end = m.find(b"\r\n" + delimiter, start)
            end = len(m) if end < 0 else end
            cut = path.with_name(path.name + ".body")
            try:
                with _private(cut) as body:
                    for at in range(start, end, CHUNK):
                        body.write(m[at:min(at + CHUNK, end)])
                    body.flush()
                    os.fsync(body.fileno())
                cut.replace(path)
            finally:
                cut.unlink(missing_ok=True)
