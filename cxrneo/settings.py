"""Settings: one pydantic-settings model read from CXRNEO_* variables, built by the CLI."""

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _memory_bytes() -> int:
    """Physical memory of this machine (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def default_memory() -> str:
    """Heap and page cache of the local server, each: a quarter of the machine's memory,
    between 1 and 4 GiB (so both together take at most half of it)."""
    gib = _memory_bytes() / 2**30
    return f"{max(1, min(4, int(gib // 4)))}g"


class Settings(BaseSettings):
    """Where the database is and where cxrneo keeps its files."""

    model_config = SettingsConfigDict(env_prefix="CXRNEO_", extra="ignore")

    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    neo4j_database: str = "neo4j"
    data_dir: Path = Path.home() / ".cxrneo"
    http_port: int = 7474
    neo4j_heap: str = Field(default_factory=default_memory, pattern=r"^[1-9][0-9]*[kmgKMG]$")
    neo4j_pagecache: str = Field(default_factory=default_memory, pattern=r"^[1-9][0-9]*[kmgKMG]$")
    debug: bool = False
    api_token: SecretStr | None = None  # an admin token `cxrneo serve` accepts (older set-ups; sent by `query --server`)
    api_key: SecretStr | None = None  # the key `cxrneo query --server` sends (a user's key of `cxrneo users add`)
    server: str | None = None  # URL of a running `cxrneo serve`: `cxrneo query` goes through it
    pacs_user: str | None = None  # DICOMweb (PACS) credentials: environment only, never argv
    pacs_password: SecretStr | None = None
    scan: str = Field(default="auto", pattern=r"^(auto|float32|bfloat16|lowrank)$")  # the service's first pass over the codes

    @property
    def snapshot_dir(self) -> Path:
        """Local snapshots of stored graphs (see cxrneo.db.snapshot)."""
        return self.data_dir / "snapshots"

    def credential(self) -> str | None:
        """What `cxrneo query --server` sends as its bearer credential: the user's key, else the token."""
        chosen = self.api_key or self.api_token
        return chosen.get_secret_value() if chosen else None

    @property
    def users_file(self) -> Path:
        """Named users and their API keys (see cxrneo.access.users)."""
        return self.data_dir / "users.json"

    @property
    def audit_file(self) -> Path:
        """The service's audit trail (see cxrneo.access.audit), the default of `cxrneo audit show`."""
        return self.data_dir / "audit" / "audit.jsonl"

    def password(self) -> str:
        """The password, or a clear error when none is set."""
        from cxrneo.errors import ConfigError

        if self.neo4j_password is None or not self.neo4j_password.get_secret_value():
            raise ConfigError(
                "no Neo4j password: set CXRNEO_NEO4J_PASSWORD (at least 8 characters)"
            )
        return self.neo4j_password.get_secret_value()
