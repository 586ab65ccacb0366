"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) into hot spots.

Each line of the raw output is ``frame;frame;...;leaf COUNT``, outermost frame first,
with frames written ``function (file:line)`` or, for native frames without symbols,
``0xADDR (library)``. We report:

- ``categories``: each sample is put in the first category that matches, walking from the
  leaf outwards (so libc's memcpy called by isal counts as compression);
- ``python``: the innermost Python frame of each busy sample (self time of Python code
  plus the native code it called), by function and file;
- ``native``: the leaf frame's library (or source file) of each busy sample, i.e. where
  the CPU actually was.

"Busy" leaves out the samples of threads waiting on a lock, condition or join: py-spy
counts those as active when they sit in a C call.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

# (category, patterns) in priority order for the same frame; frames are matched leaf-first.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("waiting for the GIL (pthread_cond_timedwait: ready to run, another thread holds the interpreter)", ("pthread_cond_timedwait",)),
    ("waiting (lock / condition / join: a thread with nothing to do)", ("condition.wait", "_wait_for_tstate_lock", "lock.acquire", "queue.get", "event.wait", "pthread_cond_wait", "sem_wait", "futex")),
    ("compression (isal / zstd / zlib)", ("isal", "igzip", "zstd", "libz.so", "zlib", "compression.py")),
    ("hashing (sha256 / digests)", ("sha256", "hashlib", "libcrypto", "_sha2", "sha2", "blake2", "md5")),
    ("fetching rows (connector C extension, socket)", ("_mysql_connector", "libmysqlclient", "mysql_", "mariadb", "recv", "vio_", "my_net", "cli_safe_read")),
    ("row formatting / escaping (moodump.db._speedups C, rowstream.py)", ("_speedups", "rowstream.py", "formats.py")),
]  # fmt: skip

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<where>[^()]*)\)$")


def _split_frame(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame)
    if not m:
        return frame, ""
    return m.group("func"), m.group("where")


def _py_key(frame: str) -> str | None:
    func, where = _split_frame(frame)
    file = where.rsplit(":", 1)[0]
    if not file.endswith(".py"):
        return None
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else file
    return f"{func} ({short})"


def _native_key(frame: str) -> str:
    func, where = _split_frame(frame)
    file = where.rsplit(":", 1)[0]
    if func.startswith("0x"):
        return where or func  # an unsymbolised address: name its library
    return f"{func} ({Path(file).name})" if file else func


def summarize(raw_path: Path, top: int = 12) -> dict[str, Any]:
    cats: Counter[str] = Counter()
    py: Counter[str] = Counter()
    native: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    waiting = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count_s = line.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = stack.split(";")
        total += count
        if frames and frames[0].startswith("thread"):
            threads[frames[0]] += count
        cat = "other (interpreter, scheduling, small work)"
        for frame in reversed(frames):
            low = frame.lower()
            hit = next((c for c, pats in CATEGORIES if any(p in low for p in pats)), None)
            if hit:
                cat = hit
                break
        cats[cat] += count
        if cat.startswith("waiting"):
            waiting += count
            continue  # the hot-spot lists below are about CPU, not about waiting
        pkey = next((k for k in (_py_key(f) for f in reversed(frames)) if k), "(no Python frame)")
        py[pkey] += count
        native[_native_key(frames[-1])] += count

    busy = total - waiting

    def pct(c: Counter[str], n: int) -> list[dict[str, Any]]:
        return [
            {
                "name": k,
                "samples": v,
                "percent": round(100.0 * v / total, 1) if total else 0.0,
                "percent_busy": round(100.0 * v / busy, 1)
                if busy and not k.startswith("waiting")
                else None,
            }
            for k, v in c.most_common(n)
        ]

    return {
        "samples": total,
        "busy_samples": busy,
        "categories": pct(cats, len(cats)),
        "python": pct(py, top),
        "native": pct(native, top),
    }
