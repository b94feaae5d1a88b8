"""Named users and API keys (cxrneo.access.users, `cxrneo users`): keys that work, keys that stop
working on the next check whoever changed the file, and a file that keeps no key and only its owner reads."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrneo.access.identity import Identity, Role
from cxrneo.access.users import UserStore
from cxrneo.cli.main import app
from cxrneo.errors import ConfigError, NotFoundError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "users.json"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(path.parent))
    monkeypatch.delenv("CXRNEO_DEBUG", raising=False)


def _other_secret(key: str) -> str:
    """The same key id with another secret of the same length."""
    head, secret = key[: len("cxrneo_") + 9], key[len("cxrneo_") + 9:]
    return head + ("A" if secret[0] != "A" else "B") + secret[1:]


def test_add_check_list(path: Path) -> None:
    store = UserStore(path)
    assert not store.has_users() and store.list() == []
    key = store.add("alice@example.org", "curator")
    assert key.startswith("cxrneo_") and key[len("cxrneo_") + 8] == "_"
    assert store.has_users()
    assert store.check(key) == Identity("alice@example.org", Role.CURATOR, "key")
    [user] = store.list()
    assert (user.name, user.role, user.rotated, user.revoked, user.active) == (
        "alice@example.org", Role.CURATOR, None, None, True)
    assert store.check(key + "x") is None
    assert store.check("") is None and store.check("cxrneo_") is None and store.check(key[len("cxrneo_"):]) is None


def test_a_wrong_secret_with_a_valid_key_id_fails(path: Path) -> None:
    store = UserStore(path)
    key = store.add("bob", Role.VIEWER)
    assert store.check(key) is not None
    assert store.check(_other_secret(key)) is None


def test_two_users_have_their_own_roles(path: Path) -> None:
    store = UserStore(path)
    a, b = store.add("a", "viewer"), store.add("b", "admin")
    assert a != b
    assert (store.check(a), store.check(b)) == (Identity("a", Role.VIEWER, "key"), Identity("b", Role.ADMIN, "key"))


def test_rotate_and_revoke_in_another_instance_take_effect_on_the_next_check(path: Path) -> None:
    service, cli = UserStore(path), UserStore(path)
    key = cli.add("carol", "viewer")
    assert service.check(key) is not None  # the service has read the file
    new = cli.rotate("carol")
    assert service.check(key) is None
    assert service.check(new) == Identity("carol", Role.VIEWER, "key")
    cli.revoke("carol")
    assert service.check(new) is None
    assert not service.has_users()
    [user] = service.list()
    assert user.revoked is not None and user.rotated is not None and not user.active


def test_every_rotation_is_seen_on_the_next_check(path: Path) -> None:
    """Quick writes one after another (same size, maybe the same clock tick, a reused inode number)."""
    service, cli = UserStore(path), UserStore(path)
    key = cli.add("pat", "viewer")
    for _ in range(8):
        assert service.check(key) == Identity("pat", Role.VIEWER, "key")
        old, key = key, cli.rotate("pat")
        assert service.check(old) is None


def test_an_unchanged_file_is_not_read_again(path: Path) -> None:
    """check() reads the file only when its (inode, size, mtime_ns) moved: bytes changed in place with the
    same size and mtime go unseen (the service then stats, never reads, per request)."""
    store = UserStore(path)
    key = store.add("quinn", "viewer")
    assert store.check(key) is not None
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"x" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.check(key) is not None
    with pytest.raises(ConfigError, match="malformed"):
        UserStore(path).check(key)


def test_revoke_from_another_process_takes_effect_on_the_next_check(path: Path) -> None:
    service = UserStore(path)
    key = service.add("dave", "admin")
    assert service.check(key) is not None
    code = "import sys; from pathlib import Path; from cxrneo.access.users import UserStore; " \
           "UserStore(Path(sys.argv[1])).revoke('dave')"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert service.check(key) is None


def test_a_revoked_name_may_be_added_again(path: Path) -> None:
    store = UserStore(path)
    old = store.add("erin", "viewer")
    store.revoke("erin")
    new = store.add("erin", "admin")
    assert store.check(old) is None and store.check(new) == Identity("erin", Role.ADMIN, "key")


def test_refusals(path: Path) -> None:
    store = UserStore(path)
    store.add("frank", "viewer")
    with pytest.raises(ConfigError, match="exists"):
        store.add("frank", "admin")
    for bad in ["", "a b", "x" * 65, "a/b", "../x", "name\n", "é"]:
        with pytest.raises(ConfigError, match="bad user name"):
            store.add(bad, "viewer")
    with pytest.raises(ConfigError, match="unknown role"):
        store.add("gina", "root")
    with pytest.raises(NotFoundError, match="no user"):
        store.revoke("nobody")
    with pytest.raises(NotFoundError, match="no user"):
        store.rotate("nobody")
    store.revoke("frank")
    with pytest.raises(ConfigError, match="revoked"):
        store.rotate("frank")
    assert [u.name for u in store.list()] == ["frank"]
    store.add("x" * 64, "viewer")  # the longest name


def test_the_file_is_private_and_keeps_no_key(path: Path) -> None:
    store = UserStore(path)
    keys = [store.add("hank", "viewer"), store.add("ivy", "curator")]
    keys.append(store.rotate("ivy"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    for key in keys:
        secret = key.split("_", 2)[2]
        assert key not in text and secret not in text
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_file_others_can_read_is_refused(path: Path) -> None:
    store = UserStore(path)
    key = store.add("jack", "viewer")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="group or others"):
        UserStore(path).check(key)
    with pytest.raises(ConfigError, match="group or others"):
        store.list()
    with pytest.raises(ConfigError, match="group or others"):
        store.add("kim", "viewer")
    path.chmod(0o600)
    assert UserStore(path).check(key) is not None


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give the file to another user")
def test_a_file_of_another_user_is_refused(path: Path) -> None:
    UserStore(path).add("lee", "viewer")
    os.chown(path, 65534, -1)
    with pytest.raises(ConfigError, match="not owned"):
        UserStore(path).list()


@pytest.mark.parametrize("text", ["{", "[]", '{"version": 1, "users": [{"name": "x"}]}',
                                  '{"version": 1, "users": [{"name": "a b", "role": "viewer", "created": '
                                  '"2024-01-01T00:00:00+00:00", "rotated": null, "revoked": null, '
                                  '"keyid": "abcdefgh", "salt": "", "digest": ""}]}',
                                  '{"version": 1, "users": [{"name": "ab", "role": "viewer", "created": '
                                  '"2024-01-01T00:00:00+00:00", "rotated": null, "revoked": null, '
                                  '"keyid": "abcdefgh", "salt": "zz", "digest": ""}]}'])
def test_a_malformed_file_is_named_in_one_line(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="malformed users file") as e:
        UserStore(path).has_users()
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_the_cli_prints_the_key_alone_on_its_last_line(path: Path, cli_env: None) -> None:
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "mia", "--role", "curator"])
    assert added.exit_code == 0, added.output
    key = added.stdout.splitlines()[-1]
    store = UserStore(path)
    assert store.check(key) == Identity("mia", Role.CURATOR, "key")
    rotated = runner.invoke(app, ["users", "rotate", "mia"])
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.splitlines()[-1]
    assert store.check(key) is None and store.check(new) == Identity("mia", Role.CURATOR, "key")
    listed = runner.invoke(app, ["users", "list"])
    assert listed.exit_code == 0 and "mia" in listed.stdout and "curator" in listed.stdout
    assert new not in listed.stdout
    revoked = runner.invoke(app, ["users", "revoke", "mia"])
    assert revoked.exit_code == 0, revoked.output
    assert store.check(new) is None
    assert "revoked" in runner.invoke(app, ["users", "list"]).stdout


@pytest.mark.parametrize("args, message", [
    (["add", "nina", "--role", "boss"], "unknown role"),
    (["add", "no/slash", "--role", "viewer"], "bad user name"),
    (["revoke", "nobody"], "no user"),
    (["rotate", "nobody"], "no user"),
])
def test_cli_errors_are_one_line(path: Path, cli_env: None, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["users", *args])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], \
        result.output
    assert not path.exists()


def test_cli_add_refuses_an_existing_name_in_one_line(path: Path, cli_env: None) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["users", "add", "omar", "--role", "viewer"]).exit_code == 0
    result = runner.invoke(app, ["users", "add", "omar", "--role", "admin"])
    assert result.exit_code == 1 and result.output.strip().startswith("error: ") and "exists" in result.output
    assert json.loads(path.read_text())["users"][0]["role"] == "viewer"
