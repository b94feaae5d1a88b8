"""Who may see which patient, over real HTTP (an app over an in-memory archive, no Neo4j): named users'
keys and their roles, revocation on the next request, the audit entry of every read before its answer
leaves, the Host allow-list and the browser's rules. `-k access` selects these."""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cxrneo.access.audit import AuditTrail, verify
from cxrneo.access.authenticate import Authenticator
from cxrneo.access.identity import Role
from cxrneo.access.users import UserStore
from cxrneo.api.app import create_app
from cxrneo.service.searcher import Searcher
from tests.hostile import multipart
from tests.serving import Running
from tests.unit.test_routes import _archive


class Served:
    """A running app with a user list and an audit trail in a temporary folder."""

    def __init__(self, folder: Path, running: Running, users: UserStore, trail: AuditTrail) -> None:
        self.folder, self.running, self.users, self.trail = folder, running, users, trail
        self.keys = {name: users.add(name, role) for name, role in
                     (("vera", Role.VIEWER), ("cora", Role.CURATOR), ("ada", Role.ADMIN))}

    def call(self, path: str, body: Any = None, key: str | None = None, host: str | None = None,
             raw: tuple[bytes, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        data, kind = raw if raw else ((json.dumps(body).encode(), "application/json") if body is not None else (None, ""))
        req = urllib.request.Request(self.running.url + path, data=data, method="POST" if data else "GET")
        if kind:
            req.add_header("Content-Type", kind)
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        if host:
            req.add_header("Host", host)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.trail.path.read_text().splitlines()]


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    images = tmp_path / "images"
    images.mkdir()
    users = UserStore(tmp_path / "users.json")
    trail = AuditTrail(tmp_path / "audit" / "audit.jsonl")
    app = create_app(Searcher(_archive(60, 0, images), images=images),  # type: ignore[arg-type]
                     access=Authenticator(users=users, loopback=True), trail=trail)
    try:
        with Running(app) as running:
            yield Served(tmp_path, running, users, trail)
    finally:
        trail.close()


def test_access_roles_viewer_reads_admin_manages(served: Served) -> None:
    viewer, admin = served.keys["vera"], served.keys["ada"]
    assert served.call("/query", {"id": "im003.png", "k": 3}, viewer)[0] == 200
    assert served.call("/images/im003.png", key=viewer)[0] == 200
    for path in ("/users", "/audit"):
        status, _, body = served.call(path, key=viewer)
        assert status == 403 and "viewer" in json.loads(body)["error"], path
        assert served.call(path, key=served.keys["cora"])[0] == 403, path
    assert served.call("/users/vera/revoke", {}, viewer)[0] == 403
    status, _, body = served.call("/users", key=admin)
    assert status == 200 and {u["name"] for u in json.loads(body)["users"]} == {"vera", "cora", "ada"}
    assert "cxrneo_" not in body.decode()  # no key is ever shown again


def test_access_a_revoked_or_rotated_key_fails_on_its_next_request(served: Served) -> None:
    viewer = served.keys["vera"]
    assert served.call("/images/im001.png", key=viewer)[0] == 200
    UserStore(served.folder / "users.json").revoke("vera")  # as `cxrneo users revoke` does, another process's view
    assert served.call("/images/im001.png", key=viewer)[0] == 401
    curator = served.keys["cora"]
    fresh = UserStore(served.folder / "users.json").rotate("cora")
    assert served.call("/images/im001.png", key=curator)[0] == 401
    assert served.call("/images/im001.png", key=fresh)[0] == 200
    assert served.call("/users/cora/revoke", {}, served.keys["ada"])[0] == 200
    assert served.call("/images/im001.png", key=fresh)[0] == 401


def test_access_every_read_is_audited_before_its_answer(served: Served) -> None:
    viewer = served.keys["vera"]
    status, headers, body = served.call("/query", {"id": "im003.png", "k": 4, "method": "knn"}, viewer)
    hits = [h["image_id"] for h in json.loads(body)["hits"]]
    served.call("/images/im007.png/pixels?size=64", key=viewer)
    served.call("/images/im010.png", key=viewer)
    served.call("/explain?query=im001.png&hit=im002.png&format=json", key=viewer)
    served.call("/subgraph", {"ids": ["im001.png", "im002.png"]}, viewer)
    served.call("/query", {"id": "im003.png"}, "cxrneo_nosuchkey_" + "x" * 43)
    served.call("/images/nope.png", key=viewer)
    form = multipart([("scan.png", b"\x89PNG not really")])
    served.call("/query/image", key=viewer, raw=form)
    entries = served.entries()
    record = entries.pop(2)
    assert (record["route"], record["ids"], record["patients"]) == ("/images/im010.png", ["im010.png"], ["p3"])
    assert [(e["route"], e["status"]) for e in entries] == [
        ("/query", 200), ("/images/im007.png/pixels", 200), ("/explain", entries[2]["status"]),
        ("/subgraph", 200), ("/query", 401), ("/images/nope.png", 404), ("/query/image", entries[6]["status"])]
    first = entries[0]
    assert first["user"] == "vera" and first["role"] == "viewer" and first["auth"] == "key"
    assert first["client"] == "127.0.0.1" and first["query"] == "im003.png"
    assert first["ids"] == ["im003.png", *hits] and int(headers["x-audit-entry"]) == first["seq"]
    assert set(first["patients"]) == {"p1"} | {f"p{int(h[2:5]) // 3}" for h in hits}
    assert entries[1]["ids"] == ["im007.png"] and entries[1]["patients"] == ["p2"]
    assert entries[3]["ids"] == ["im001.png", "im002.png"]
    assert entries[4]["user"] is None and entries[4]["auth"] == "refused" and entries[4]["refused"]
    assert entries[6]["query"].startswith("upload sha256:") and "scan.png" not in json.dumps(entries[6])
    assert verify(served.trail.path).ok


def test_access_an_answer_the_trail_cannot_record_is_withheld(served: Served) -> None:
    served.trail.close()  # a trail that takes nothing more (as a full disk would)
    status, headers, body = served.call("/images/im001.png", key=served.keys["vera"])
    assert status == 503 and "audit" in json.loads(body)["error"] and b"p0" not in body


def test_access_a_foreign_host_gets_400(served: Served) -> None:
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
        status, _, body = served.call("/images/im001.png/pixels", key=served.keys["vera"], host=host)
        assert status == 400 and "Host" in json.loads(body)["error"], host
    for host in ("localhost", f"127.0.0.1:{served.running.port}", "[::1]:8000"):
        assert served.call("/health", host=host)[0] == 200, host


def test_access_every_answer_carries_the_browsers_rules(served: Served) -> None:
    viewer = served.keys["vera"]
    for path, key in (("/", None), ("/health", None), ("/images/im001.png", viewer),
                      ("/images/im001.png/pixels", viewer), ("/query", None), ("/static/main.js", None)):
        _, headers, _ = served.call(path, key=key)
        h = {k.lower(): v for k, v in headers.items()}
        assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert "script-src 'self';" in h["content-security-policy"], path
        if not path.startswith("/static/"):
            assert h["cache-control"] == "no-store", path


def test_access_without_users_loopback_is_local_and_users_switch_auth_on(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json")
    app = create_app(Searcher(_archive(12, 1)), access=Authenticator(users=users, loopback=True))  # type: ignore[arg-type]
    with Running(app) as running:
        def status(key: str | None = None) -> int:
            req = urllib.request.Request(running.url + "/images/im001.png")
            if key:
                req.add_header("Authorization", f"Bearer {key}")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return int(r.status)
            except urllib.error.HTTPError as e:
                return e.code
        assert status() == 200  # nothing configured: loopback serves its own machine
        key = users.add("first", Role.VIEWER)
        assert status() == 401 and status(key) == 200  # the first user switches authentication on


def test_access_a_wide_service_without_any_authentication_refuses_everyone(tmp_path: Path) -> None:
    app = create_app(Searcher(_archive(12, 1)),  # type: ignore[arg-type]
                     access=Authenticator(users=UserStore(tmp_path / "users.json"), loopback=False))
    with Running(app) as running:
        req = urllib.request.Request(running.url + "/images/im001.png")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert refused.value.code == 401


def test_access_single_sign_on_tokens_through_the_service(tmp_path: Path) -> None:
    from cxrneo.access.oidc import OidcVerifier
    from tests.oidc_issuer import AUDIENCE, OidcIssuer

    trail = AuditTrail(tmp_path / "audit.jsonl")
    with OidcIssuer() as issuer:
        access = Authenticator(oidc=OidcVerifier(issuer.issuer, AUDIENCE), loopback=True)
        app = create_app(Searcher(_archive(12, 1)), access=access, trail=trail)  # type: ignore[arg-type]
        with Running(app) as running:
            def status(token: str, path: str = "/images/im001.png") -> int:
                req = urllib.request.Request(running.url + path, headers={"Authorization": f"Bearer {token}"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        return int(r.status)
                except urllib.error.HTTPError as e:
                    return e.code
            now = int(time.time())
            assert status(issuer.sign(issuer.claims())) == 200
            assert status(issuer.sign(issuer.claims()), "/users") == 403  # a viewer
            assert status(issuer.sign(issuer.claims(roles=["admin"])), "/audit") == 200
            assert status(issuer.sign(issuer.claims(exp=now - 600, iat=now - 4000))) == 401
            assert status(issuer.sign(issuer.claims(aud="another-app"))) == 401
            assert status(issuer.forge(issuer.claims(), "rsa-1")) == 401
    trail.close()
    entries = [json.loads(line) for line in trail.path.read_text().splitlines()]
    assert [(e["user"], e["auth"], e["status"]) for e in entries[:3]] == [
        ("alice", "oidc", 200), ("alice", "oidc", 403), ("alice", "oidc", 200)]
    assert [e["status"] for e in entries[3:]] == [401, 401, 401] and all(e["refused"] for e in entries[3:])
