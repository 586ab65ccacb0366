"""Smoke test of the benchmark runner (benchmarks/run.py) at a tiny scale.

Benchmarks are not timed tests: this only proves that the one command still works end to
end -- its own throwaway server, the generated Moodle data, every kind of row (dumps,
restores with their CHECKSUM TABLE check, verify, the 16 MiB-row memory run, the
profile-free report), the JSON, the markdown with the targets, the scaling mode and
``--report-only``. No figure is asserted. Peers whose binaries are missing (mydumper on a
bare machine) must show up as skipped rows with the reason; the test never installs them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moodump.db.localserver import server_binaries

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "benchmarks" / "run.py"

# One row of each kind, and the rows the targets need (ids from `run.py --list`).
ROWS = {
    "mariadb-dump-file": ("mariadb-dump",),
    "mariadb-dump-gzip6": ("mariadb-dump", "gzip"),
    "mydumper-t2": ("mydumper",),
    "mydumper-t2-c": ("mydumper",),
    "moodump-gzip-t2": (),
    "moodump-zstd-t2": (),
    "restore-mariadb": ("mariadb", "mariadb-dump"),
    "restore-myloader": ("myloader", "mydumper"),
    "restore-moodump": (),
    "verify-restore": (),
    "verify-offline": (),
    "memory-16mb-row": (),
}
SMALL_SERVER = [
    "--server-option",
    "innodb-buffer-pool-size=128M",
    "--server-option",
    "innodb-log-file-size=48M",
]

pytestmark = pytest.mark.db  # starts its own MariaDB server


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [sys.executable, str(RUNNER), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.mark.slow
def test_runner_smoke(tmp_path: Path) -> None:
    if server_binaries() is None:
        pytest.skip("no MariaDB server binaries (apt-get install mariadb-server)")
    docs = ROOT / "docs"
    before = {p.name: _digest(p) for p in docs.glob("benchmarks*")}
    work = tmp_path / "work"
    out = tmp_path / "docs" / "benchmarks.json"
    common = ["--work-dir", str(work), "--json", str(out), "--no-install", *SMALL_SERVER]

    _run(
        ["--scale", "0.001", "--only", ",".join(ROWS), "--retry-contended", "0", *common],
        cwd=tmp_path,
    )

    data = json.loads(out.read_text())
    rows = {r["id"]: r for r in data["rows"]}
    assert set(rows) == set(ROWS)
    for rid, needs in ROWS.items():
        r = rows[rid]
        missing = [b for b in needs if shutil.which(b) is None]
        if missing:
            assert r["status"] == "skipped", r
            assert missing[0] in r["reason"] and "apt-get install" in r["reason"]
            continue
        assert r["status"] == "ok", r
        for key in ("wall_s", "client_cpu_s", "server_cpu_s", "other_cpu_s", "peak_rss_bytes"):
            assert isinstance(r[key], (int, float)), (rid, key)
        assert r["peak_rss_bytes"] > 0
        if r["group"] in ("dump", "memory"):
            assert r["output_bytes"] > 0
        if r["group"] == "restore":
            assert r["check"]["ok"] and r["check"]["tables"] == data["dataset"]["tables"]
        if r["group"] == "verify":
            assert r["check"]["passed"] is True
    assert data["dataset"]["scale"] == 0.001
    assert data["machine"]["nproc"] >= 1

    md = out.with_suffix(".md").read_text()
    assert "## Targets (issue 5)" in md and "## Machine" in md
    for rid in ROWS:
        assert f"| {rid} |" in md, rid
    for target in ("0.5\u00d7 mydumper", "0.3\u00d7 mariadb-dump", "1.2\u00d7 uncompressed",
                   "0.6\u00d7 myloader", "full verify", "peak RSS", "gzip output"):  # fmt: skip
        line = next(x for x in md.splitlines() if target in x)
        assert any(s in line for s in ("**MET", "**NOT MET", "**n/a")), line
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "docs" / "benchmarks.png").stat().st_size > 0

    # Scaling mode (two tiny scales; 0.001 is reused), added to the same JSON.
    _run(
        ["--scaling", "--scales", "0.001,0.002", "--scaling-workers", "1,2",
         "--no-scaling-peers", "--reuse", "--retry-contended", "0", *common],
        cwd=tmp_path,
    )  # fmt: skip
    data = json.loads(out.read_text())
    points = data["scaling"]["points"]
    assert {(p["scale"], p["workers"]) for p in points} == {
        (0.001, 1), (0.001, 2), (0.002, 1), (0.002, 2)
    }  # fmt: skip
    assert all(p["status"] == "ok" and p["wall_s"] > 0 for p in points)
    assert data["scaling"]["datasets"]["0.001"]["reused"] is True
    assert len(data["rows"]) == len(ROWS)  # the main rows are kept
    md = out.with_suffix(".md").read_text()
    assert "## Scaling" in md

    # --report-only renders the same page from the JSON alone.
    again = tmp_path / "again.md"
    _run(["--report-only", "--json", str(out), "--markdown", str(again), "--no-plots"], tmp_path)
    assert again.read_text().split("## Machine")[0] == md.split("## Machine")[0]

    # The repository's docs were not touched.
    assert {p.name: _digest(p) for p in docs.glob("benchmarks*")} == before


def test_pg_restore_floor_reads_the_server_log_and_renders_its_floors() -> None:
    """benchmarks/pg_restore_floor.py without a server: the statement kinds of a server log
    (a statement's text runs over lines) and the page rendered from its JSON."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("pg_restore_floor", root / "benchmarks" / "pg_restore_floor.py")
        assert spec is not None and spec.loader is not None
        floor = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(floor)
    finally:
        sys.path.remove(str(root / "benchmarks"))
    log = (
        "2026-12-06 17:36:01.000 UTC [9] LOG:  duration: 1500.000 ms  statement: -- Name: x; Type: INDEX\n"
        '\tCREATE INDEX "x" ON "public"."t" USING "btree" ("a");\n'
        "2026-12-06 17:36:02.000 UTC [9] LOG:  duration: 2000.000 ms  statement: COPY public.t (a) FROM stdin;\n"
        "2026-12-06 17:36:02.100 UTC [8] LOG:  duration: 250.000 ms  statement: "
        'ALTER TABLE ONLY "public"."t"\n\tADD CONSTRAINT "t_pk" PRIMARY KEY ("id");\n'
        "2026-12-06 17:36:02.200 UTC [8] LOG:  duration: 10.000 ms  statement: SET search_path = ''\n"
        "2026-12-06 17:36:02.300 UTC [8] LOG:  checkpoint starting: wal\n"
    )
    assert floor.statement_kinds(log) == {"index and constraint builds": 1.75, "COPY": 2.0, "other": 0.01}
    run = {"seconds": 50.0, "client_cpu_s": 7.0, "server_cpu_s": 88.0,
           "statements_s": {"index and constraint builds": 60.0, "COPY": 30.0, "other": 1.0}}  # fmt: skip
    peer = {**run, "client_cpu_s": 10.0, "server_cpu_s": 90.0}
    copy = {"client_parse_cpu_s": 8.0, "bytes": {"text": 1 << 30, "binary": 3 << 29},
            "server_cpu_s": {"text": [10.0], "binary": [8.0]}, "binary_saves": 0.2}  # fmt: skip
    out = {"when": "now", "machine": "x", "load_average": 0.1, "scale": 1, "rounds": 1,
           "runs": {"moodump restore": [run], "pg_restore -j 2": [peer]},
           "copy_formats": {"t": copy}, "client_floor_cpu_s": 5.0, "text_bytes": 3 << 30}  # fmt: skip
    out["summary"] = s = floor.summarise(out)
    assert s["ratio_of_cpu"] == round(95 / 100, 3)
    assert s["floors"]["text COPY, client only reads, checks and decompresses"] == [93.0, 0.93]
    # 30 of the 91 statement seconds are COPY, of which binary saves 20 %
    free = 88 * (1 - 30 / 91 * 0.2) + 5
    assert s["floors"]["binary COPY converted for free"] == [round(free, 1), round(free / 100, 3)]
    assert s["floors"]["binary COPY converted at pyarrow's parsing cost"][0] == round(free + 24, 1)
    page = floor.render(out)
    assert "**floor**, binary COPY converted for free" in page and "(target <= 0.9)" in page
