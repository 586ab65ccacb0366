"""The benchmark server and data sets: one throwaway MariaDB, Moodle databases per scale.

The server runs with perf-baseline.md's settings in ``<work>/server`` and is kept
(stopped, not removed) between runs, so ``--reuse`` finds the generated databases again.
``<work>/datasets.json`` records what was generated (scale, options, generator version,
rows) so that a database is reused only when it was made the same way.
"""

from __future__ import annotations

# The connector's C extension must load before anything imports hashlib or ssl (see
# moodump.db.connection); stdlib modules such as random and tempfile import hashlib.
import moodump.db.connection  # isort: skip  # noqa: F401

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident, quote_str
from moodump.db.localserver import LocalServer
from moodump.demo.sample import create_moodle_database, table_sizes

# perf-baseline.md "Setup": innodb_buffer_pool_size=4G, innodb_log_file_size=1G,
# skip-log-bin (LocalServer's default), max_allowed_packet=1G, local_infile=1, utf8mb4;
# every other InnoDB setting at MariaDB's default (LocalServer relaxes the commit flush,
# the baseline did not, so it is put back to 1 here).
SERVER_SETTINGS: dict[str, str] = {
    "innodb-buffer-pool-size": "4G",
    "innodb-log-file-size": "1G",
    "max-allowed-packet": "1G",
    "local-infile": "1",
    "character-set-server": "utf8mb4",
    "innodb-flush-log-at-trx-commit": "1",
}

# Debian package that provides each peer binary.
PACKAGES: dict[str, str] = {
    "mariadb": "mariadb-client",
    "mariadb-dump": "mariadb-client",
    "mydumper": "mydumper",
    "myloader": "mydumper",
    "pigz": "pigz",
    "zstd": "zstd",
    "gzip": "gzip",
}


def missing_binaries(names: list[str]) -> list[str]:
    return [n for n in names if shutil.which(n) is None]


def ensure_peers(install: bool, log: Any) -> list[str]:
    """Install the peers' Debian packages when missing (as root); return what is missing."""
    missing = missing_binaries(sorted(PACKAGES))
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        pkgs = sorted({PACKAGES[m] for m in missing})
        log(f"installing {' '.join(pkgs)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *pkgs], check=False, env=env)
        missing = missing_binaries(sorted(PACKAGES))
    return missing


def db_name(scale: float) -> str:
    """``moodle_s1``, ``moodle_s0_25``: one database per scale on the benchmark server."""
    return "moodle_s" + f"{scale:g}".replace(".", "_").replace("-", "m")


def generator_version() -> str:
    """A digest of the generator's source, so a changed generator is not reused silently."""
    import moodump.demo.sample as sample

    h = hashlib.sha256()
    base = Path(sample.__file__).parent
    for p in sorted(base.glob("*")):
        if p.suffix in (".py", ".json"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


class BenchServer:
    """The runner's own MariaDB (LocalServer with the baseline's settings)."""

    def __init__(self, work: Path, overrides: dict[str, str]) -> None:
        self.work = work
        settings = dict(SERVER_SETTINGS)
        # Its own tmpdir: something on a shared machine deleting /tmp/#sql-temptable-*
        # files made mariadbd fail queries and once crash (ha_maria::drop_table).
        tmpdir = work / "server" / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        settings["tmpdir"] = str(tmpdir)
        settings.update(overrides)
        self.local = LocalServer(base_dir=work / "server", settings=settings)
        self.settings_used = settings
        self.registry_path = work / "datasets.json"

    def start(self) -> BenchServer:
        self.local.start(timeout=300)
        return self

    def stop(self) -> None:
        self.local.stop(remove=False)

    def alive(self) -> bool:
        return self.local.process is not None and self.local.process.poll() is None

    def restart(self) -> None:
        """Start the server again after it died (MariaDB 10.11 crashed once under mydumper)."""
        self.local.process = None
        self.local.start(timeout=300)

    @property
    def pid(self) -> int:
        assert self.local.process is not None
        return self.local.process.pid

    @property
    def socket(self) -> str:
        return self.local.socket

    @property
    def conn(self) -> ConnSettings:
        return ConnSettings(socket=self.local.socket, user="root", password="")

    def query(self, sql: str, database: str | None = None) -> list[tuple[bytes | None, ...]]:
        with connect(self.conn.with_database(database)) as c:
            return c.query(sql)

    def execute(self, sql: str | bytes, database: str | None = None) -> None:
        with connect(self.conn.with_database(database)) as c:
            c.execute(sql)

    def version(self) -> str:
        rows = self.query("SELECT VERSION()")
        return (rows[0][0] or b"").decode()

    def databases(self) -> set[str]:
        return {(r[0] or b"").decode() for r in self.query("SHOW DATABASES")}

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")

    def create_database(self, name: str) -> None:
        self.drop_database(name)
        self.execute(
            f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )

    def base_tables(self, database: str) -> list[str]:
        rows = self.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA="
            + quote_str(database)
            + " AND TABLE_TYPE='BASE TABLE' ORDER BY TABLE_NAME"
        )
        return [(r[0] or b"").decode() for r in rows]

    def checksums(self, database: str, tables: list[str]) -> dict[str, str | None]:
        """CHECKSUM TABLE (extended) of each table; None for a missing table."""
        out: dict[str, str | None] = {}
        with connect(self.conn.with_database(database)) as c:
            for i in range(0, len(tables), 40):
                part = tables[i : i + 40]
                sql = "CHECKSUM TABLE " + ", ".join(
                    f"{quote_ident(database)}.{quote_ident(t)}" for t in part
                )
                for name, value in c.query(sql):
                    full = (name or b"").decode()
                    out[full.split(".", 1)[1]] = None if value is None else value.decode()
        return out

    # -- data sets -------------------------------------------------------------

    def _registry(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.registry_path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _save_registry(self, reg: dict[str, Any]) -> None:
        self.registry_path.write_text(json.dumps(reg, indent=1, sort_keys=True) + "\n")

    def dataset(self, scale: float, *, reuse: bool, log: Any) -> dict[str, Any]:
        """Make sure the database for ``scale`` exists; generate it unless reusable."""
        name = db_name(scale)
        reg = self._registry()
        entry = reg.get(name)
        version = generator_version()
        if (
            reuse
            and entry is not None
            and entry.get("scale") == scale
            and entry.get("generator") == version
            and name in self.databases()
            and len(self.base_tables(name)) == entry.get("tables")
        ):
            log(f"reusing {name} (scale {scale:g}, generated {entry.get('generated_at')})")
            return dict(entry, reused=True)
        if reuse and entry is not None and entry.get("generator") != version:
            log(f"{name}: the generator changed since it was made; generating again")
        log(f"generating {name} at scale {scale:g} (Moodle schema, blobs) ...")
        reg.pop(name, None)
        self._save_registry(reg)
        t0 = time.monotonic()
        last = [0.0]

        def progress(table: str, done: int, total: int) -> None:
            now = time.monotonic()
            if total >= 1_000_000 and now - last[0] > 30:
                last[0] = now
                log(f"  {now - t0:6.0f}s {table} {done:,}/{total:,}")

        rows = create_moodle_database(
            self.conn, name, scale=scale, blobs=True, workers=2, drop_existing=True,
            progress=progress,
        )  # fmt: skip
        seconds = time.monotonic() - t0
        with connect(self.conn.with_database(name)) as c:
            names = sorted(rows)
            for i in range(0, len(names), 50):
                c.query("ANALYZE TABLE " + ", ".join(quote_ident(n) for n in names[i : i + 50]))
        sizes = table_sizes(self.conn, name)
        entry = {
            "database": name,
            "scale": scale,
            "blobs": True,
            "generator": version,
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "generate_s": round(seconds, 1),
            "tables": len(rows),
            "tables_with_rows": sum(1 for v in rows.values() if v),
            "rows": sum(rows.values()),
            "data_length": sum(s[1] for s in sizes.values()),
            "index_length": sum(s[2] for s in sizes.values()),
            "table_rows": {k: v for k, v in rows.items() if v},
            "table_sizes": {k: [v[1], v[2]] for k, v in sizes.items() if v[1] + v[2] > 0},
        }
        reg[name] = entry
        self._save_registry(reg)
        log(f"generated {name}: {entry['rows']:,} rows in {seconds:.0f}s")
        return dict(entry, reused=False)

    def sample_backup(self, work: Path, scale: float, *, reuse: bool, log: Any) -> tuple[dict[str, Any], Path]:
        """The dataset of ``scale`` (:meth:`dataset`) and a moodump backup of it in
        ``work`` (``export-backup-SCALE``), made unless the dataset and a finished backup
        were both reused."""
        from moodump.dump import DumpOptions, dump

        entry = self.dataset(scale, reuse=reuse, log=log)
        backup = work / f"export-backup-{scale:g}"
        if not (backup / "manifest.json").exists() or not entry.get("reused"):
            shutil.rmtree(backup, ignore_errors=True)
            log(f"dumping {entry['database']} to {backup} ...")
            dump(self.conn, entry["database"], backup, DumpOptions(threads=2))
        return entry, backup


def log_to_stderr(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
