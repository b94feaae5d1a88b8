"""The database a `db load` replaces, kept aside until the loaded one has verified.

The rule, kept here and nowhere else: before it loads, `db load` moves the local server's store
folders of the `neo4j` database (data/databases/neo4j and data/transactions/neo4j under the
server's home) into data/load-aside/. Only once the loaded database matches its dump's record is
load-aside/ renamed to load-aside.verified/ and deleted. So whenever data/load-aside/ exists, a
load did not finish (refused, failed, or killed, kill -9 included) and the folders in it are the
database as it was: `recover` puts them back in place of whatever is there. `db load` and
`db start` run `recover` first. Every step is a rename or a delete of a whole folder, so the rule
can be run again after a kill at any point and ends in the same place.
"""

import os
import shutil
from pathlib import Path

from cxrneo.db import server
from cxrneo.errors import ServerError

DATABASE = "neo4j"
STORES = ("databases", "transactions")


def aside_dir(cfg: server.ServerConfig) -> Path:
    """Where a load keeps the database it replaces until the new one verified."""
    return cfg.home / "data" / "load-aside"


def _verified_dir(cfg: server.ServerConfig) -> Path:
    return cfg.home / "data" / "load-aside.verified"


def _live(cfg: server.ServerConfig, store: str) -> Path:
    return cfg.home / "data" / store / DATABASE


def set_aside(cfg: server.ServerConfig) -> None:
    """Move the stopped server's store folders aside (a missing one is noted as absent, so that
    putting back removes what a load created there)."""
    aside = aside_dir(cfg)
    try:
        aside.mkdir(mode=0o700)
        for store in STORES:
            live = _live(cfg, store)
            if live.exists():
                os.rename(live, aside / store)
            else:
                (aside / f"{store}.absent").touch(mode=0o600)
    except OSError as e:
        raise ServerError(f"could not set the database aside in {aside}: {e}") from None


def put_back(cfg: server.ServerConfig) -> bool:
    """Put the folders set aside back in place of what is there (the server stopped); False when
    nothing was set aside."""
    aside = aside_dir(cfg)
    if not aside.is_dir():
        return False
    try:
        for store in STORES:
            live, kept = _live(cfg, store), aside / store
            if kept.is_dir() or (aside / f"{store}.absent").exists():
                if live.exists():
                    shutil.rmtree(live)
                if kept.is_dir():
                    os.rename(kept, live)
        shutil.rmtree(aside)
    except OSError as e:
        raise ServerError(f"could not put the database in {aside} back: {e}") from None
    return True


def discard(cfg: server.ServerConfig) -> None:
    """The loaded database verified: delete the old one (renamed first, so that a kill while it is
    deleted leaves nothing that `recover` would put back)."""
    done = _verified_dir(cfg)
    os.rename(aside_dir(cfg), done)
    shutil.rmtree(done, ignore_errors=True)


def recover(cfg: server.ServerConfig) -> bool:
    """Apply the rule: finish deleting the old folders of a verified load, and put back those of a
    load that did not finish (the server is stopped for it; the caller starts it). True when
    something was put back."""
    shutil.rmtree(_verified_dir(cfg), ignore_errors=True)
    if not aside_dir(cfg).is_dir():
        return False
    server.stop(cfg)
    return put_back(cfg)
