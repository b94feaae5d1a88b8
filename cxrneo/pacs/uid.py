"""DICOM UIDs checked before they become a file name or a part of a URL.

A PACS's answer (QIDO-RS JSON, a DICOM header) and a user's request are outside input: a
SOPInstanceUID of ``../../x`` must never choose where a retrieved instance is written or which
address is asked. A UID (DICOM PS3.5 section 9.1) is ASCII digits and dots, at most 64 characters;
its components are non-empty and have no leading zero (a component "0" itself is allowed).
"""

import re
from pathlib import Path

from cxrneo.errors import InputError

MAX_UID = 64
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*", re.ASCII)


def is_uid(text: object) -> bool:
    """Whether ``text`` is a well-formed DICOM UID (a str of ASCII digits and dots, see above)."""
    return isinstance(text, str) and 0 < len(text) <= MAX_UID and _UID.fullmatch(text) is not None


def check_uid(text: object, what: str) -> str:
    """``text`` when it is a DICOM UID; InputError naming ``what`` (e.g. "PACS returned a bad
    SOPInstanceUID") otherwise."""
    if not is_uid(text):
        shown = repr(text)[:80] if isinstance(text, str) else type(text).__name__
        raise InputError(f"{what} {shown}: not a DICOM UID")
    assert isinstance(text, str)
    return text


def file_of(folder: Path, uid: str, suffix: str, what: str) -> Path:
    """The file ``folder/<uid><suffix>`` of a checked UID, confirmed to resolve inside ``folder``
    (symlinks followed); InputError otherwise."""
    name = check_uid(uid, what) + suffix
    root = folder.resolve()
    if not (root / name).resolve().is_relative_to(root):
        raise InputError(f"{what} {uid!r}: its file would lie outside {folder}")
    return root / name
