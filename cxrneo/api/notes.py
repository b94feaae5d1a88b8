"""What the audit trail learns of one request: the route fills a note (what was asked, which images
and patients the answer shows), the gate adds who asked and the status, and the entry is on disk
before the answer leaves (cxrneo/api/gate.py; the file itself is cxrneo/access/audit.py).

An entry: time, user, role, auth (key, token, oidc, local), client, method, route, query (an image
id, or sha256 of the uploaded files), ids and patients of the answer, status, request; and for a
request that wrote outside cxrneo, what it wrote (e.g. the key object stored in the PACS).
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cxrneo.access.identity import Identity

AUDITED = ("/query", "/images/", "/explain", "/subgraph", "/users", "/audit", "/keep")  # routes that show or write patient data


class Trail(Protocol):
    """Where entries go (cxrneo.access.audit.AuditTrail): ``append`` returns once the entry is on disk."""

    async def append(self, entry: dict[str, Any]) -> int: ...


@dataclass
class Note:
    """What a route tells the audit trail about its answer."""

    query: str | None = None
    ids: list[str] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    wrote: str | None = None  # what the request stored outside cxrneo (a key object in the PACS)

    def saw(self, ids: Iterable[str], patients: Iterable[str | None]) -> None:
        """The images an answer shows and their patients (each once, in order)."""
        self.ids.extend(i for i in ids if i not in self.ids)
        self.patients.extend(p for p in dict.fromkeys(patients) if p and p not in self.patients)


def audited(path: str) -> bool:
    return path.startswith(AUDITED)


def digest(paths: Iterable[Path]) -> str:
    """The query of an upload as the trail keeps it: the SHA-256 of each file (not the image)."""
    hashes = []
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        hashes.append(h.hexdigest())
    return "upload sha256:" + ",".join(hashes)


def entry(scope: dict[str, Any], who: Identity | None, status: int, note: Note | None,
          claimed: str | None = None) -> dict[str, Any]:
    """One entry of the trail for a request (``claimed``: why its credential was refused)."""
    client = scope.get("client") or ("-", 0)
    doc: dict[str, Any] = {
        "user": who.name if who else None, "role": who.role.label if who else None,
        "auth": who.kind if who else "refused", "client": client[0], "method": scope.get("method"),
        "route": scope.get("path"), "status": status, "request": scope.get("state", {}).get("request"),
    }
    if claimed:
        doc["refused"] = claimed
    if note is not None:
        doc.update(query=note.query, ids=note.ids, patients=note.patients)
        if note.wrote:
            doc["wrote"] = note.wrote
    return doc
