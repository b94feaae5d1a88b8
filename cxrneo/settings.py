"""Settings: one pydantic-settings model read from CXRNEO_* variables, built by the CLI."""

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the database is and where cxrneo keeps its files."""

    model_config = SettingsConfigDict(env_prefix="CXRNEO_", extra="ignore")

    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    neo4j_database: str = "neo4j"
    data_dir: Path = Path.home() / ".cxrneo"
    http_port: int = 7474
    debug: bool = False
    api_token: SecretStr | None = None  # bearer token of `cxrneo serve` (and sent by `query --server`)
    server: str | None = None  # URL of a running `cxrneo serve`: `cxrneo query` goes through it

    @property
    def snapshot_dir(self) -> Path:
        """Local snapshots of stored graphs (see cxrneo.db.snapshot)."""
        return self.data_dir / "snapshots"

    def password(self) -> str:
        """The password, or a clear error when none is set."""
        from cxrneo.errors import ConfigError

        if self.neo4j_password is None or not self.neo4j_password.get_secret_value():
            raise ConfigError(
                "no Neo4j password: set CXRNEO_NEO4J_PASSWORD (at least 8 characters)"
            )
        return self.neo4j_password.get_secret_value()
