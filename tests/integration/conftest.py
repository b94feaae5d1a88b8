"""A real Neo4j + GDS for integration tests: NEO4J_URI, else testcontainers, else the local server.

The local server leaves $HOME alone: its jars and Maven's repository live under
``$CXRNEO_DATA_DIR`` or else ``.cxrneo/`` in the repository root (git-ignored, reused by later
runs); each session's instance (database, logs) is a temporary folder.
"""

import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cxrneo.db import server
from cxrneo.db.connection import Database
from cxrneo.settings import Settings

pytestmark = pytest.mark.neo4j


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # testcontainers' dependency

        docker.from_env().ping()
        return True
    except Exception:  # no engine: docker's errors vary by platform
        return False


def _settings(uri: str, password: str) -> Settings:
    return Settings(neo4j_uri=uri, neo4j_password=password, neo4j_user=os.environ.get("NEO4J_USER", "neo4j"))


ROOT = Path(__file__).resolve().parents[2]
TEST_PASSWORD_EXTRA = ' "q\\ $x'  # quotes, a backslash, a space, a dollar: the argfile quoting is tested
_STARTED: list[server.ServerConfig] = []


def _say(config: pytest.Config) -> Callable[[str], None]:
    reporter = config.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[neo4j] {line}")

    return say


@contextmanager
def _ticking(say: Callable[[str], None], what: str, every: float = 15.0) -> Iterator[None]:
    """Say every `every` seconds that `what` is still going (assembly takes 1-3 minutes)."""
    done = threading.Event()
    t0 = time.monotonic()

    def tick() -> None:
        while not done.wait(every):
            say(f"{what}: {time.monotonic() - t0:.0f} s so far")

    threading.Thread(target=tick, daemon=True).start()
    try:
        yield
    finally:
        done.set()


def shared_dist(config: pytest.Config) -> server.ServerConfig:
    """The assembled jars, under $CXRNEO_DATA_DIR or else .cxrneo/ in the repository (never
    $HOME; Maven's repository too), assembled on first use with progress lines."""
    say = _say(config)
    data_dir = Path(os.environ.get("CXRNEO_DATA_DIR", ROOT / ".cxrneo"))
    shared = server.ServerConfig(data_dir=data_dir)
    if not (shared.dist / "ASSEMBLED").exists():
        say(f"assembling Neo4j + GDS from Maven Central into {shared.dist} (1-3 minutes, once)")
        with _ticking(say, "assembling"):
            took = server.assemble(shared, maven_repo=data_dir / "m2", progress=say)
        say(f"assembled in {took:.0f} s")
    return shared


@pytest.fixture(scope="session")
def assembled(pytestconfig: pytest.Config) -> server.ServerConfig:
    """The assembled jars (see shared_dist), for tests that start servers of their own."""
    return shared_dist(pytestconfig)


@pytest.fixture(scope="session")
def neo4j_settings(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Settings]:
    """Settings of one real Neo4j + GDS for the whole test session (started here if need be)."""
    uri = os.environ.get("NEO4J_URI")
    password = os.environ.get("NEO4J_PASSWORD") or os.environ.get("CXRNEO_NEO4J_PASSWORD", "")
    if uri:
        yield _settings(uri, password)
        return
    password = secrets.token_urlsafe(16)
    if _docker_answers():
        from testcontainers.neo4j import Neo4jContainer

        container = Neo4jContainer("neo4j:5.26", password=password).with_env(
            "NEO4J_PLUGINS", '["graph-data-science"]'
        )
        with container:
            yield _settings(container.get_connection_url(), password)
        return
    from cxrneo.db import server

    # the local server takes any password: quoting is tested too, and a leading "-" (not an option)
    password = "-" + password + TEST_PASSWORD_EXTRA
    say = _say(pytestconfig)
    shared = shared_dist(pytestconfig)
    instance = tmp_path_factory.mktemp("neo4j")
    cfg = server.ServerConfig(data_dir=instance, bolt_port=_free_port(), http_port=_free_port(),
                              heap="2g", pagecache="1g")
    cfg.dist.parent.mkdir(parents=True, exist_ok=True)
    cfg.dist.symlink_to(shared.dist, target_is_directory=True)
    say(f"starting a throwaway Neo4j on {cfg.bolt_address} (instance {instance})")
    t0 = time.monotonic()
    with _ticking(say, "starting"):
        server.start(cfg, password)
    say(f"Neo4j answers after {time.monotonic() - t0:.0f} s")
    _STARTED.append(cfg)
    try:
        yield _settings(cfg.bolt_address, password)
    finally:
        server.stop(cfg)


@pytest.fixture(scope="session")
def local_server(neo4j_settings: Settings) -> server.ServerConfig:
    """The local cxrneo server behind neo4j_settings: the one this session started, or the one
    CXRNEO_DATA_DIR + NEO4J_URI + CXRNEO_HTTP_PORT name; skipped for any other server."""
    if _STARTED:
        return _STARTED[0]
    data_dir = os.environ.get("CXRNEO_DATA_DIR")
    if data_dir:
        cfg = server.ServerConfig.from_uri(Path(data_dir), neo4j_settings.neo4j_uri,
                                           int(os.environ.get("CXRNEO_HTTP_PORT", "7474")))
        if server.running_pid(cfg) is not None:
            return cfg
    pytest.skip("not a local server started by cxrneo (set CXRNEO_DATA_DIR and CXRNEO_HTTP_PORT)")


@pytest.fixture(scope="session")
def neo4j_db(neo4j_settings: Settings) -> Iterator[Database]:
    """One Database for the whole test session."""
    with Database.connect(neo4j_settings) as db:
        yield db


@pytest.fixture
def clean_db(neo4j_db: Database) -> Database:
    """The shared database, emptied of every node and relationship."""
    neo4j_db.auto("delete_everything")
    return neo4j_db
