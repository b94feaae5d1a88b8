"""The rule of a database set aside by `db load` (cxrneo/db/aside.py), on real folders: whatever
point a load was killed at, `recover` leaves the database that was there before it; once the new
one verified, nothing old is ever put back."""

import shutil
from pathlib import Path

from cxrneo.db import aside, server


def _cfg(tmp_path: Path) -> server.ServerConfig:
    return server.ServerConfig(data_dir=tmp_path)  # never started: recover's stop finds no server


def _store(cfg: server.ServerConfig, store: str) -> Path:
    return cfg.home / "data" / store / "neo4j"


def _fill(cfg: server.ServerConfig, what: str, stores: tuple[str, ...] = aside.STORES) -> None:
    for store in stores:
        _store(cfg, store).mkdir(parents=True, exist_ok=True)
        (_store(cfg, store) / "content").write_text(what)


def _held(cfg: server.ServerConfig) -> dict[str, str | None]:
    return {store: (_store(cfg, store) / "content").read_text() if _store(cfg, store).exists() else None
            for store in aside.STORES}


OLD = {"databases": "old", "transactions": "old"}


def test_a_load_that_did_not_finish_is_undone_whatever_it_had_written(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    _fill(cfg, "old")
    aside.set_aside(cfg)
    assert _held(cfg) == {"databases": None, "transactions": None}
    _fill(cfg, "new", ("databases",))  # a load killed halfway
    assert aside.recover(cfg)
    assert _held(cfg) == OLD and not aside.aside_dir(cfg).exists()
    assert not aside.recover(cfg)  # nothing left to put back
    assert _held(cfg) == OLD


def test_a_kill_between_the_two_moves_or_while_putting_back_is_repaired_by_a_rerun(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    _fill(cfg, "old")
    aside.aside_dir(cfg).mkdir()
    _store(cfg, "databases").rename(aside.aside_dir(cfg) / "databases")  # killed before the second move
    assert aside.recover(cfg) and _held(cfg) == OLD
    aside.set_aside(cfg)
    _fill(cfg, "new")
    shutil.rmtree(_store(cfg, "databases"))  # putting back killed after its first store was back:
    (aside.aside_dir(cfg) / "databases").rename(_store(cfg, "databases"))
    assert _held(cfg) == {"databases": "old", "transactions": "new"}
    assert aside.recover(cfg) and _held(cfg) == OLD


def test_a_store_that_did_not_exist_is_removed_again(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    _fill(cfg, "old", ("databases",))
    aside.set_aside(cfg)
    _fill(cfg, "new")
    assert aside.recover(cfg)
    assert _held(cfg) == {"databases": "old", "transactions": None}


def test_a_verified_load_keeps_the_new_database_even_if_killed_while_deleting_the_old(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    _fill(cfg, "old")
    aside.set_aside(cfg)
    _fill(cfg, "new")
    verified = aside.aside_dir(cfg).with_name("load-aside.verified")
    aside.aside_dir(cfg).rename(verified)  # discard killed right after its rename
    assert not aside.recover(cfg)
    assert _held(cfg) == {"databases": "new", "transactions": "new"} and not verified.exists()
    aside.set_aside(cfg)
    _fill(cfg, "newer")
    aside.discard(cfg)
    assert not aside.recover(cfg) and _held(cfg) == {"databases": "newer", "transactions": "newer"}
