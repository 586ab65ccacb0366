"""Side-by-side benchmark of moodump against mariadb-dump, mydumper and myloader.

One command reproduces docs/benchmarks.md (issue 5)::

    python benchmarks/run.py --scale 1 --reuse --profile   # all rows, ~25 min at scale 1
    python benchmarks/run.py --scaling --reuse             # scale 0.25..4, 1/2/4 workers
    python benchmarks/run.py --report-only                 # markdown + plots from the JSON

It starts its own throwaway MariaDB (perf-baseline.md's settings) in ``--work-dir``
(default ./bench-work), generates the Moodle database at ``--scale`` (kept for
``--reuse``), installs the peers' Debian packages when missing, and measures every row in
one run on the same data: wall time, client CPU (user+sys of the whole process tree),
server CPU (mariadbd's utime+stime), other CPU on the machine (contention), peak RSS and
output size. Every restore is checked with CHECKSUM TABLE against the source. Results go
to docs/benchmarks.json; docs/benchmarks.md and the plots are rendered from it.

See benchmarks/README.md for the rows, the targets and how to read the figures.
"""

from __future__ import annotations

# The connector's C extension must load before anything imports hashlib or ssl (see
# moodump.db.connection); stdlib modules such as random and tempfile import hashlib.
import moodump.db.connection  # isort: skip  # noqa: F401

import argparse
import fnmatch
import importlib.metadata
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

import _report
from _data import (
    PACKAGES,
    BenchServer,
    ensure_peers,
    log_to_stderr,
    missing_binaries,
)
from _measure import NCPU, Measurement, Stage, describe, path_size, run_pipeline
from _profile import summarize

from moodump.db.connection import quote_ident

ROOT = Path(__file__).resolve().parent.parent
BIGROW_TABLE = "mdl_zz_bench_bigrow"
BIGROW_BYTES = 16 << 20


@dataclass
class Spec:
    id: str
    group: str  # "dump" | "restore" | "verify" | "memory"
    label: str
    needs: tuple[str, ...]  # binaries that must exist
    run: Callable[[Spec], dict[str, Any]]


def _best(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest uncontended attempt, else the least contended one."""
    calm = [a for a in attempts if not a.get("contended")]
    if calm:
        return min(calm, key=lambda a: a["wall_s"])
    return min(attempts, key=lambda a: a["other_cpu_s"])


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = args.work_dir.resolve()
        self.out = self.work / "out"
        self.logs = self.work / "logs"
        self.server: BenchServer | None = None
        self.db = ""
        self.env = dict(os.environ, MYSQL_PWD="")
        self._source_sums: dict[str, str | None] | None = None
        self.rows: dict[str, dict[str, Any]] = {}

    # -- helpers ------------------------------------------------------------------
    def log(self, msg: str) -> None:
        log_to_stderr(msg)

    @property
    def srv(self) -> BenchServer:
        assert self.server is not None
        return self.server

    def moodump(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "moodump", *argv]

    def conn_args(self) -> list[str]:
        return ["-S", self.srv.socket, "-u", "root"]

    def _rm(self, path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()

    def measure(
        self,
        spec: Spec,
        stages: list[Stage],
        *,
        output: Path | None = None,
        prep: Callable[[], None] | None = None,
        check: Callable[[Measurement], dict[str, Any]] | None = None,
        capture: bool = False,
        repeat: int | None = None,
    ) -> dict[str, Any]:
        """Run ``stages`` ``repeat`` times (more if contended) and keep the best attempt."""
        want = repeat if repeat is not None else (self.args.repeat if spec.group == "dump" else 1)
        limit = want + self.args.retry_contended
        attempts: list[dict[str, Any]] = []
        crashes = 0
        while True:
            if output is not None:
                self._rm(output)
            if prep is not None:
                prep()
            m = run_pipeline(
                stages,
                server_pid=self.srv.pid,
                env=self.env,
                log_path=self.logs / f"{spec.id}.log",
                capture_stdout=capture,
            )
            a = m.as_dict()
            if not self.srv.alive():
                crashes += 1
                self.log(f"  {spec.id}: the server died during the run; restarting it")
                self.srv.restart()
                if crashes <= 1:
                    continue
                a["returncodes"] = [*a["returncodes"], -1]
                m.returncodes.append(-1)
            a["command"] = describe(stages).replace(str(self.work) + "/", "")
            if output is not None and output.exists():
                a["output_bytes"] = path_size(output)
            if capture and m.stdout.strip():
                try:
                    a["json"] = json.loads(m.stdout)
                except ValueError:
                    a["stdout"] = m.stdout[-2000:]
            a.pop("stdout", None) if "json" in a else None
            if m.ok and check is not None:
                a["check"] = check(m)
            attempts.append(a)
            flag = " (contended)" if a["contended"] else ""
            self.log(
                f"  {spec.id}: {a['wall_s']:.2f}s wall, client {a['client_cpu_s']:.2f}, "
                f"server {a['server_cpu_s']:.2f}, other {a['other_cpu_s']:.2f}{flag}"
                + ("" if m.ok else f" FAILED rc={m.returncodes}")
            )
            if not m.ok:
                break
            if len(attempts) >= limit:
                break
            if len(attempts) >= want and any(not x["contended"] for x in attempts):
                break
        good = [x for x in attempts if all(rc == 0 for rc in x["returncodes"])]
        best = _best(good) if good else attempts[-1]
        if good and len(good) < len(attempts):
            self.log(f"  {spec.id}: {len(attempts) - len(good)} failed attempt(s) ignored")
        row = dict(best)
        row.update(id=spec.id, group=spec.group, label=spec.label, attempts=len(attempts))
        if crashes:
            row["server_crashes"] = crashes
        row["all_wall_s"] = [x["wall_s"] for x in good] if good else [best["wall_s"]]
        if len(good) < len(attempts):
            row["failed_attempts"] = [
                {"returncodes": x["returncodes"], "stderr_tail": x.get("stderr_tail", "")[-300:]}
                for x in attempts
                if x not in good
            ]
        ok = all(rc == 0 for rc in best["returncodes"])
        chk = best.get("check")
        row["status"] = "ok" if ok and (chk is None or chk.get("ok", True)) else "failed"
        if not ok:
            row["reason"] = "exit status " + ",".join(map(str, best["returncodes"]))
        elif chk is not None and not chk.get("ok", True):
            row["reason"] = chk.get("reason", "check failed")
        return row

    # -- correctness ----------------------------------------------------------------
    def source_sums(self) -> dict[str, str | None]:
        if self._source_sums is None:
            t0 = time.monotonic()
            tables = self.srv.base_tables(self.db)
            self._source_sums = self.srv.checksums(self.db, tables)
            self.log(f"source checksums: {len(tables)} tables in {time.monotonic() - t0:.1f}s")
        return self._source_sums

    def compare(self, target: str) -> dict[str, Any]:
        src = self.source_sums()
        tables = sorted(src)
        got = self.srv.checksums(target, tables)
        bad = [t for t in tables if got.get(t) != src[t]]
        extra = sorted(set(self.srv.base_tables(target)) - set(tables))
        extra = [t for t in extra if not t.startswith("_moodump")]
        ok = not bad and not extra
        res: dict[str, Any] = {
            "ok": ok,
            "method": "CHECKSUM TABLE of every table, target vs source",
            "tables": len(tables),
            "mismatched": bad[:20],
            "unexpected": extra[:20],
        }
        if not ok:
            res["reason"] = f"{len(bad)} table(s) differ from the source: {', '.join(bad[:5])}"
        if not self.args.keep_restored:
            self.srv.drop_database(target)
        return res

    # -- artifacts used by restores --------------------------------------------------
    def artifact(self, kind: str) -> Path:
        """The dump a restore row needs; made (untimed) when its dump row did not run."""
        paths = {
            "sql": self.out / "mariadb-dump.sql",
            "mydumper": self.out / "mydumper-t2-r",
            "moodump": self.out / "moodump-gzip-t2",
        }
        path = paths[kind]
        if path.exists() and (kind != "moodump" or (path / "manifest.json").exists()):
            return path
        self.log(f"preparing {path.name} (untimed, needed by a restore row)")
        self._rm(path)
        if kind == "sql":
            stages = [Stage(self.mariadb_dump(), stdout=path)]
        elif kind == "mydumper":
            stages = [Stage(self.mydumper(path, chunk=True, compress=False))]
        else:
            stages = [Stage(self.moodump_dump(path, "gzip", 2))]
        m = run_pipeline(
            stages, server_pid=self.srv.pid, env=self.env, log_path=self.logs / f"prep-{kind}.log"
        )
        if not m.ok:
            raise RuntimeError(f"could not prepare {path}: {m.stderr_tail}")
        return path

    # -- command lines ----------------------------------------------------------------
    def mariadb_dump(self) -> list[str]:
        return [
            "mariadb-dump",
            "-S",
            self.srv.socket,
            "-uroot",
            "--single-transaction",
            "--quick",
            self.db,
        ]

    def mydumper(self, out: Path, *, chunk: bool, compress: bool) -> list[str]:
        argv = ["mydumper", "-S", self.srv.socket, "-u", "root", "-B", self.db, "-t", "2",
                "--trx-consistency-only", "-v", "1"]  # fmt: skip
        if compress:
            argv.append("-c")
        if chunk:
            argv += ["-r", "500000"]
        return [*argv, "-o", str(out)]

    def moodump_dump(self, out: Path, codec: str, threads: int) -> list[str]:
        return self.moodump(
            "dump", *self.conn_args(), "--threads", str(threads), "--codec", codec,
            "--json", "-q", "-o", str(out), self.db,
        )  # fmt: skip

    # -- rows ---------------------------------------------------------------------
    def specs(self) -> list[Spec]:
        out: list[Spec] = []

        def add(
            id_: str,
            group: str,
            label: str,
            needs: tuple[str, ...],
            fn: Callable[[Spec], dict[str, Any]],
        ) -> None:
            out.append(Spec(id_, group, label, needs, fn))

        md = ("mariadb-dump",)
        add("mariadb-dump-file", "dump", "mariadb-dump → file", md, self.row_mariadb_dump_file)
        for id_, label, comp in (
            ("mariadb-dump-gzip6", "mariadb-dump | gzip -6", ["gzip", "-6"]),
            ("mariadb-dump-pigz2", "mariadb-dump | pigz -p2", ["pigz", "-p2"]),
            ("mariadb-dump-zstd3", "mariadb-dump | zstd -3 -T2", ["zstd", "-q", "-3", "-T2"]),
        ):
            add(id_, "dump", label, (*md, comp[0]), self._row_mdump_pipe(comp))
        for id_, label, chunk, comp in (
            ("mydumper-t2", "mydumper -t 2", False, False),
            ("mydumper-t2-c", "mydumper -t 2 -c", False, True),
            ("mydumper-t2-r", "mydumper -t 2 -r 500000", True, False),
            ("mydumper-t2-r-c", "mydumper -t 2 -r 500000 -c", True, True),
        ):
            add(id_, "dump", label, ("mydumper",), self._row_mydumper(chunk, comp))
        for codec in ("gzip", "zstd"):
            for t in (1, 2, 4):
                add(
                    f"moodump-{codec}-t{t}",
                    "dump",
                    f"moodump dump --codec {codec} --threads {t}",
                    (),
                    self._row_moodump(codec, t),
                )
        add(
            "restore-mariadb",
            "restore",
            "mariadb db < dump.sql",
            ("mariadb", "mariadb-dump"),
            self.row_restore_mariadb,
        )
        add(
            "restore-myloader",
            "restore",
            "myloader -t 2 (from the -r 500000 dump)",
            ("myloader", "mydumper"),
            self.row_restore_myloader,
        )
        add(
            "restore-moodump",
            "restore",
            "moodump restore --threads 2 (gzip backup)",
            (),
            self.row_restore_moodump,
        )
        add(
            "verify-restore",
            "verify",
            "moodump verify (restore into a scratch database, compare)",
            (),
            self.row_verify_restore,
        )
        add(
            "verify-offline",
            "verify",
            "moodump verify --offline (files, rows, digests)",
            (),
            self.row_verify_offline,
        )
        add(
            "memory-16mb-row",
            "memory",
            "moodump dump --threads 2 with a 16 MiB row (gzip)",
            (),
            self.row_memory,
        )
        return out

    def row_mariadb_dump_file(self, spec: Spec) -> dict[str, Any]:
        path = self.out / "mariadb-dump.sql"
        row = self.measure(spec, [Stage(self.mariadb_dump(), stdout=path)], output=path)
        return row  # kept: the mariadb restore row reads it

    def _row_mdump_pipe(self, comp: list[str]) -> Callable[[Spec], dict[str, Any]]:
        def run(spec: Spec) -> dict[str, Any]:
            path = self.out / f"{spec.id}.out"
            row = self.measure(
                spec, [Stage(self.mariadb_dump()), Stage(comp, stdout=path)], output=path
            )
            self._discard(path)
            return row

        return run

    def _row_mydumper(self, chunk: bool, comp: bool) -> Callable[[Spec], dict[str, Any]]:
        def run(spec: Spec) -> dict[str, Any]:
            path = self.out / spec.id
            row = self.measure(
                spec, [Stage(self.mydumper(path, chunk=chunk, compress=comp))], output=path
            )
            if spec.id != "mydumper-t2-r":
                self._discard(path)  # the -r 500000 dump feeds myloader
            return row

        return run

    def _row_moodump(self, codec: str, threads: int) -> Callable[[Spec], dict[str, Any]]:
        def run(spec: Spec) -> dict[str, Any]:
            path = self.out / spec.id
            row = self.measure(
                spec, [Stage(self.moodump_dump(path, codec, threads))], output=path, capture=True
            )
            if spec.id != "moodump-gzip-t2":
                self._discard(path)  # the gzip, 2-thread backup feeds restore and verify
            return row

        return run

    def _discard(self, path: Path) -> None:
        if not self.args.keep_outputs:
            self._rm(path)

    def row_restore_mariadb(self, spec: Spec) -> dict[str, Any]:
        sql = self.artifact("sql")
        target = "moodle_r1"
        stages = [Stage(["mariadb", "-S", self.srv.socket, "-uroot", target], stdin=sql)]
        return self.measure(
            spec,
            stages,
            prep=lambda: self.srv.create_database(target),
            check=lambda m: self.compare(target),
        )

    def row_restore_myloader(self, spec: Spec) -> dict[str, Any]:
        d = self.artifact("mydumper")
        target = "moodle_r2"
        argv = ["myloader", "-S", self.srv.socket, "-u", "root", "-t", "2", "-d", str(d),
                "-s", self.db, "-B", target, "-o", "-v", "1"]  # fmt: skip
        return self.measure(
            spec,
            [Stage(argv)],
            prep=lambda: self.srv.create_database(target),
            check=lambda m: self.compare(target),
        )

    def row_restore_moodump(self, spec: Spec) -> dict[str, Any]:
        d = self.artifact("moodump")
        target = "moodle_r3"
        argv = self.moodump("restore", str(d), *self.conn_args(), "--database", target,
                            "--threads", "2", "--yes", "--json", "-q")  # fmt: skip
        return self.measure(
            spec,
            [Stage(argv)],
            prep=lambda: self.srv.drop_database(target),
            check=lambda m: self.compare(target),
            capture=True,
        )

    def _verify_check(self, m: Measurement) -> dict[str, Any]:
        try:
            rep = json.loads(m.stdout)
        except ValueError:
            return {"ok": False, "reason": "no JSON report from moodump verify"}
        ok = bool(rep.get("passed"))
        out = {"ok": ok, "method": "moodump verify's own report", "passed": ok,
               "tables_checked": rep.get("tables_checked"), "rows_checked": rep.get("rows_checked")}  # fmt: skip
        if not ok:
            out["reason"] = "; ".join(map(str, rep.get("problems", [])))[:500] or "verify failed"
        return out

    def row_verify_restore(self, spec: Spec) -> dict[str, Any]:
        d = self.artifact("moodump")
        argv = self.moodump("verify", str(d), *self.conn_args(), "--threads", "2", "--json")
        return self.measure(spec, [Stage(argv)], check=self._verify_check, capture=True)

    def row_verify_offline(self, spec: Spec) -> dict[str, Any]:
        d = self.artifact("moodump")
        argv = self.moodump("verify", str(d), "--offline", "--json")
        return self.measure(spec, [Stage(argv)], check=self._verify_check, capture=True)

    def _bigrow_payload(self) -> bytes:
        """16 MiB, the same every run: half random bytes, half text full of escapes."""
        half = BIGROW_BYTES // 2
        noise = random.Random(16).randbytes(half)
        text = (
            "Café 'quoted' \"double\" back\\slash\ttab\r\nline 😀 Ωmega 中文 " * (half // 40 + 1)
        ).encode()
        return noise + text[:half]

    def row_memory(self, spec: Spec) -> dict[str, Any]:
        payload = self._bigrow_payload()
        tbl = quote_ident(BIGROW_TABLE)

        def prep() -> None:
            self.srv.execute(f"DROP TABLE IF EXISTS {tbl}", self.db)
            self.srv.execute(
                f"CREATE TABLE {tbl} (id BIGINT NOT NULL PRIMARY KEY, payload LONGBLOB, "
                "note VARCHAR(100)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
                self.db,
            )
            self.srv.execute(
                b"INSERT INTO " + tbl.encode() + b" VALUES (1, X'" + payload.hex().encode()
                + b"', 'a 16 MiB row'), (2, 'small', 'a small row'), (3, NULL, NULL)",
                self.db,
            )  # fmt: skip

        path = self.out / spec.id
        try:
            row = self.measure(
                spec,
                [Stage(self.moodump_dump(path, "gzip", 2))],
                output=path,
                prep=prep,
                capture=True,
                repeat=1,
            )
        finally:
            self.srv.execute(f"DROP TABLE IF EXISTS {tbl}", self.db)
            self._discard(path)
        row["extra"] = {"row_bytes": len(payload), "table": BIGROW_TABLE}
        return row

    # -- whole runs -----------------------------------------------------------------
    def selected(self, specs: list[Spec]) -> list[Spec]:
        pats = [p.strip() for p in (self.args.only or "*").split(",") if p.strip()]
        skip = [p.strip() for p in (self.args.skip or "").split(",") if p.strip()]
        return [
            s for s in specs
            if any(fnmatch.fnmatchcase(s.id, p) for p in pats)
            and not any(fnmatch.fnmatchcase(s.id, p) for p in skip)
        ]  # fmt: skip

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        missing = ensure_peers(self.args.install, self.log)
        if missing:
            self.log(f"missing peers (their rows are skipped): {', '.join(missing)}")
        self.server = BenchServer(
            self.work, dict(kv.split("=", 1) for kv in self.args.server_option)
        ).start()
        self.log(f"server {self.srv.version()} pid {self.srv.pid} socket {self.srv.socket}")

    def warm_up(self) -> dict[str, Any]:
        """Read every table once so that no row pays for a cold buffer pool."""
        argv = [
            "mariadb-dump",
            "-S",
            self.srv.socket,
            "-uroot",
            "--single-transaction",
            "--quick",
            self.db,
        ]
        if shutil.which("mariadb-dump") is None:
            argv = self.moodump(
                "dump", *self.conn_args(), "-q", "-o", str(self.out / "warmup"), self.db
            )
        m = run_pipeline(
            [Stage(argv)], server_pid=self.srv.pid, env=self.env, log_path=self.logs / "warmup.log"
        )
        self._rm(self.out / "warmup")
        self.log(f"warm-up read: {m.wall_s:.1f}s")
        return {
            "command": describe([Stage(argv)]).replace(str(self.work) + "/", ""),
            "wall_s": round(m.wall_s, 3),
        }

    def run_main(self) -> dict[str, Any]:
        self.start()
        try:
            dataset = self.srv.dataset(self.args.scale, reuse=self.args.reuse, log=self.log)
            self.db = dataset["database"]
            self._rm(self.out)
            self.out.mkdir(parents=True)
            for name in ("moodle_r1", "moodle_r2", "moodle_r3"):
                self.srv.drop_database(name)
            self.srv.execute(f"DROP TABLE IF EXISTS {quote_ident(BIGROW_TABLE)}", self.db)
            warm = self.warm_up()
            results: list[dict[str, Any]] = []
            specs = self.selected(self.specs())
            for spec in specs:
                missing = missing_binaries(list(spec.needs))
                if missing:
                    pkgs = sorted({PACKAGES.get(m, m) for m in missing})
                    reason = (
                        f"{', '.join(missing)} not installed (apt-get install {' '.join(pkgs)})"
                    )
                    self.log(f"{spec.id}: skipped: {reason}")
                    results.append(
                        {
                            "id": spec.id,
                            "group": spec.group,
                            "label": spec.label,
                            "status": "skipped",
                            "reason": reason,
                        }
                    )
                    continue
                self.log(f"{spec.id}: {spec.label}")
                # Rows measured so far survive an interrupted run (not used by the report).
                (self.work / "partial.json").write_text(json.dumps(results, indent=1, default=str))
                try:
                    results.append(spec.run(spec))
                except Exception as exc:  # one broken row must not lose the others
                    self.log(f"{spec.id}: error: {exc}")
                    results.append(
                        {
                            "id": spec.id,
                            "group": spec.group,
                            "label": spec.label,
                            "status": "failed",
                            "reason": str(exc)[:500],
                        }
                    )
            sql = self.out / "mariadb-dump.sql"
            if sql.exists():
                dataset["dump_text_bytes"] = sql.stat().st_size
            profile = self.run_profile() if self.args.profile else None
            return {
                "dataset": dataset,
                "warmup": warm,
                "rows": results,
                "profile": profile,
                "server": {"version": self.srv.version(), "settings": self.srv.settings_used},
            }
        finally:
            self.srv.stop()

    def run_profile(self) -> dict[str, Any] | None:
        spy = shutil.which("py-spy")
        if spy is None:
            self.log("py-spy not installed: no profile (pip install py-spy)")
            return None
        raw = self.work / "profile-dump.txt"
        path = self.out / "profile-dump"
        self._rm(path)
        self._rm(raw)
        inner = self.moodump_dump(path, "gzip", 2)
        argv = [
            spy,
            "record",
            "-r",
            "100",
            "--native",
            "-f",
            "raw",
            "-o",
            str(raw),
            "--subprocesses",
            "--",
            *inner,
        ]
        self.log("profiling moodump dump --codec gzip --threads 2 with py-spy")
        m = run_pipeline(
            [Stage(argv)], server_pid=self.srv.pid, env=self.env, log_path=self.logs / "profile.log"
        )
        self._rm(path)
        if not raw.exists():
            self.log("py-spy wrote no profile")
            return None
        summary = summarize(raw)
        summary.update(
            command="py-spy record -r 100 --native -f raw --subprocesses -- moodump dump --codec gzip --threads 2",
            wall_s=round(m.wall_s, 3),
            client_cpu_s=round(m.client_cpu_s, 3),
            server_cpu_s=round(m.server_cpu_s, 3),
            raw_file=str(raw),
        )
        return summary

    def run_scaling(self) -> dict[str, Any]:
        scales = [float(s) for s in self.args.scales.split(",") if s.strip()]
        workers = [int(w) for w in self.args.scaling_workers.split(",") if w.strip()]
        self.start()
        points: list[dict[str, Any]] = []
        datasets: dict[str, Any] = {}
        try:
            for scale in scales:
                ds = self.srv.dataset(scale, reuse=self.args.reuse, log=self.log)
                self.db = ds["database"]
                datasets[f"{scale:g}"] = {
                    k: ds[k]
                    for k in (
                        "database",
                        "rows",
                        "data_length",
                        "index_length",
                        "generate_s",
                        "reused",
                    )
                }
                self._rm(self.out)
                self.out.mkdir(parents=True)
                self.warm_up()
                runs: list[tuple[str, int, Spec]] = [
                    (
                        "moodump gzip",
                        w,
                        Spec(
                            f"scaling-s{scale:g}-moodump-gzip-t{w}",
                            "dump",
                            f"moodump gzip t{w}",
                            (),
                            self._row_moodump("gzip", w),
                        ),
                    )
                    for w in workers
                ]
                if not self.args.no_scaling_peers and shutil.which("mydumper"):
                    runs.append(
                        (
                            "mydumper -c",
                            2,
                            Spec(
                                f"scaling-s{scale:g}-mydumper-t2-c",
                                "dump",
                                "mydumper -t 2 -c",
                                ("mydumper",),
                                self._row_mydumper(False, True),
                            ),
                        )
                    )
                for tool, w, spec in runs:
                    self.log(f"scale {scale:g}: {tool} with {w} worker(s)")
                    row = spec.run(spec)
                    points.append({
                        "scale": scale, "tool": tool, "workers": w, "status": row["status"],
                        **{k: row.get(k) for k in ("wall_s", "client_cpu_s", "server_cpu_s", "other_cpu_s", "contended", "peak_rss_bytes", "output_bytes", "all_wall_s")},
                    })  # fmt: skip
        finally:
            self.srv.stop()
        return {"scales": scales, "workers": workers, "datasets": datasets, "points": points}


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": NCPU,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        info["os"] = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        info["os"] = platform.platform()
    pkgs = {}
    for dist in ("moodump", "mysql-connector-python", "isal", "zstandard", "click"):
        try:
            pkgs[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pkgs[dist] = None
    info["python_packages"] = pkgs
    try:
        import _mysql_connector  # noqa: F401

        info["connector_c_extension"] = True
    except ImportError:
        info["connector_c_extension"] = False
    tools = {}
    for name, argv in (
        ("mariadb-dump", ["mariadb-dump", "--version"]),
        ("mydumper", ["mydumper", "--version"]),
        ("myloader", ["myloader", "--version"]),
        ("gzip", ["gzip", "--version"]),
        ("pigz", ["pigz", "--version"]),
        ("zstd", ["zstd", "--version"]),
    ):
        if shutil.which(argv[0]) is None:
            tools[name] = None
            continue
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        text = (r.stdout or r.stderr).strip().splitlines()
        tools[name] = text[0] if text else ""
    info["tools"] = tools
    with contextlib.suppress(OSError):
        info["moodump_commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        info["moodump_src_modified"] = bool(dirty)  # uncommitted engine changes were measured
    return info


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Replace rows of ``old`` by the rows of ``new`` with the same id (reruns of a subset)."""
    out = dict(old)
    by_id = {r["id"]: r for r in old.get("rows", [])}
    order = [r["id"] for r in old.get("rows", [])]
    for r in new.get("rows", []):
        if r["id"] not in by_id:
            order.append(r["id"])
        r = dict(r, rerun_at=new.get("generated_at"))
        by_id[r["id"]] = r
    out["rows"] = [by_id[i] for i in order]
    for key in ("profile", "scaling"):
        if new.get(key):
            out[key] = new[key]
    out.setdefault("reruns", []).append(new.get("generated_at"))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="data scale (1 ~ 2 GB InnoDB data)")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=Path("bench-work"),
        help="server, data and outputs (default ./bench-work)",
    )
    p.add_argument(
        "--reuse", action="store_true", help="reuse a database generated earlier at the same scale"
    )
    p.add_argument(
        "--only", default="", help="comma-separated row ids or globs (e.g. 'moodump-*,restore-*')"
    )
    p.add_argument("--skip", default="", help="comma-separated row ids or globs to leave out")
    p.add_argument("--list", action="store_true", help="list the row ids and exit")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each dump row (the fastest uncontended is kept)",
    )
    p.add_argument(
        "--retry-contended",
        type=int,
        default=1,
        help="extra runs when every run so far was contended",
    )
    p.add_argument(
        "--profile", action="store_true", help="also profile a 2-worker moodump dump with py-spy"
    )
    p.add_argument(
        "--scaling", action="store_true", help="measure wall time against scale and workers"
    )
    p.add_argument("--scales", default="0.25,0.5,1,2,4", help="scales for --scaling")
    p.add_argument("--scaling-workers", default="1,2,4", help="worker counts for --scaling")
    p.add_argument(
        "--no-scaling-peers",
        action="store_true",
        help="--scaling without the mydumper -c reference",
    )
    p.add_argument(
        "--no-install", dest="install", action="store_false", help="never apt-get the peers"
    )
    p.add_argument(
        "--keep-outputs", action="store_true", help="keep every dump output in <work>/out"
    )
    p.add_argument("--keep-restored", action="store_true", help="keep the restored databases")
    p.add_argument(
        "--server-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a server setting (e.g. innodb-buffer-pool-size=256M)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=ROOT / "docs" / "benchmarks.json",
        help="results file (default docs/benchmarks.json)",
    )
    p.add_argument(
        "--markdown", type=Path, default=None, help="report (default: benchmarks.md beside --json)"
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="update the rows run now in an existing --json, keep the others",
    )
    p.add_argument(
        "--report-only", action="store_true", help="render the markdown and plots from --json only"
    )
    p.add_argument("--no-plots", action="store_true", help="no PNGs (matplotlib missing)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    md = args.markdown or args.json.with_suffix(".md")
    if args.list:
        for s in Bench(args).specs():
            print(f"{s.id:22s} {s.group:8s} {s.label}")
        return 0
    if not args.report_only:
        bench = Bench(args)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        old: dict[str, Any] = {}
        if args.json.exists() and (args.merge or args.scaling):
            old = json.loads(args.json.read_text())
        if args.scaling:
            result = dict(old) if old else {"machine": machine_info(), "rows": []}
            result["scaling"] = bench.run_scaling()
            result["scaling"]["generated_at"] = now
            result["scaling"]["machine"] = machine_info()
        else:
            new = bench.run_main()
            new.update(generated_at=now, machine=machine_info(), scale=args.scale,
                       command="python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:]))  # fmt: skip
            if args.merge and old:
                if old.get("scale") != args.scale:
                    raise SystemExit(
                        f"--merge: {args.json} is at scale {old.get('scale')}, not {args.scale}"
                    )
                result = merge(old, new)
                result["machine"] = new["machine"]
            else:
                if old.get("scaling"):
                    new["scaling"] = old["scaling"]
                result = new
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, sort_keys=False, default=str) + "\n")
        log_to_stderr(f"wrote {args.json}")
    data = json.loads(args.json.read_text())
    _report.write(data, md, plots=not args.no_plots)
    log_to_stderr(f"wrote {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
