"""A real Neo4j + GDS for integration tests: NEO4J_URI, else testcontainers, else the local server."""

import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def neo4j_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
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

    data_dir = Path(os.environ.get("CXRNEO_DATA_DIR", Path.home() / ".cxrneo"))
    instance = tmp_path_factory.mktemp("neo4j")
    cfg = server.ServerConfig(data_dir=instance, bolt_port=_free_port(), http_port=_free_port(),
                              heap="2g", pagecache="1g")
    dist = server.ServerConfig(data_dir=data_dir).dist
    server.assemble(server.ServerConfig(data_dir=data_dir))
    cfg.dist.parent.mkdir(parents=True, exist_ok=True)
    cfg.dist.symlink_to(dist, target_is_directory=True)
    server.start(cfg, password)
    try:
        yield _settings(cfg.bolt_address, password)
    finally:
        server.stop(cfg)


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
