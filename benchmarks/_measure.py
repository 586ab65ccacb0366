"""Measuring one command (or pipeline) the way perf-baseline.md did.

For every run we record:

- ``wall_s``: time.monotonic() around spawning and reaping the processes;
- ``client_*``: user+sys CPU of every process of the pipeline, from ``os.wait4`` (which
  includes each process's reaped descendants and all their threads);
- ``peak_rss_bytes``: the largest peak RSS (``VmHWM``) of the pipeline's processes, read
  from /proc/PID/status every 10 ms while they run (for a pipeline, ``rss_sum_bytes``
  adds them up as an upper bound of the concurrent peak). Not ``ru_maxrss``: Linux
  carries the forking parent's RSS over into the child's ``ru_maxrss`` across exec, so
  every command started by this ~40 MB Python runner would show at least ~40 MB
  (``ru_maxrss_bytes`` keeps that figure for reference);
- ``server_cpu_s``: change of utime+stime of the mariadbd PID in /proc/PID/stat;
- ``other_cpu_s``: busy CPU of the whole machine (/proc/stat: user, nice, system, irq,
  softirq, steal) minus the client, the server and this runner itself. Disk writeback
  by kernel threads lands here too, so a few tenths of a second are normal.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores)."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    vals = [int(x) for x in parts[1:9]]
    busy = vals[0] + vals[1] + vals[2] + vals[5] + vals[6] + vals[7]
    return busy / CLK_TCK


def process_cpu_s(pid: int | None) -> float:
    """utime+stime of a process (all its threads), 0.0 when it is gone or unknown."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return 0.0
    fields = data.rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Stage:
    """One process of a pipeline: argv plus where its stdin/stdout go."""

    argv: list[str]
    stdin: Path | None = None  # read from this file (else the previous stage, or /dev/null)
    stdout: Path | None = None  # write to this file (else the next stage, or capture)


@dataclass
class Measurement:
    wall_s: float
    client_user_s: float
    client_sys_s: float
    server_cpu_s: float
    other_cpu_s: float
    peak_rss_bytes: int
    rss_sum_bytes: int
    ru_maxrss_bytes: int
    returncodes: list[int]
    stdout: str = ""
    stderr_tail: str = ""
    started_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def client_cpu_s(self) -> float:
        return self.client_user_s + self.client_sys_s

    @property
    def ok(self) -> bool:
        return all(rc == 0 for rc in self.returncodes)

    def contended(self, threshold_s: float | None = None) -> bool:
        """True when other work used a noticeable share of the machine meanwhile.

        perf-baseline.md marks runs with other_cpu_s > 2 s; for long runs we also allow
        up to 3 % of the machine's capacity (background noise of a long restore).
        """
        limit = threshold_s if threshold_s is not None else max(2.0, 0.03 * self.wall_s * NCPU)
        return self.other_cpu_s > limit

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["client_cpu_s"] = self.client_cpu_s
        d["contended"] = self.contended()
        for k, v in list(d.items()):
            if isinstance(v, float):
                d[k] = round(v, 3)
        return d


def vm_hwm(pid: int) -> int:
    """Peak resident set size of a running process (bytes), 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class HwmPoller:
    """Track the VmHWM of a set of processes from a background thread."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self._live: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, pid: int) -> None:
        with self._lock:
            self._live.add(pid)
            self.peaks.setdefault(pid, 0)

    def reaped(self, pid: int) -> None:
        with self._lock:
            self._live.discard(pid)

    def _poll(self) -> None:
        with self._lock:
            pids = list(self._live)
        for pid in pids:
            v = vm_hwm(pid)
            with self._lock:
                if pid in self._live and v > self.peaks[pid]:
                    self.peaks[pid] = v

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def describe(stages: Sequence[Stage]) -> str:
    """The pipeline as a shell would show it (for the report)."""
    out: list[str] = []
    for st in stages:
        s = " ".join(st.argv)
        if st.stdin is not None:
            s += f" < {st.stdin.name}"
        if st.stdout is not None:
            s += f" > {st.stdout.name}"
        out.append(s)
    return " | ".join(out)


def run_pipeline(
    stages: Sequence[Stage],
    *,
    server_pid: int | None,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    capture_stdout: bool = False,
) -> Measurement:
    """Run ``stages`` connected by pipes and measure them (see the module docstring).

    The last stage's stdout goes to its file, or is captured (``capture_stdout``), or is
    discarded. Every stage's stderr goes to ``log_path`` (appended) when given.
    """
    log_fh: IO[bytes] | None = open(log_path, "ab") if log_path else None  # noqa: SIM115
    opened: list[IO[bytes]] = []
    procs: list[subprocess.Popen[bytes]] = []
    stdout_data = b""
    poller = HwmPoller()
    try:
        if log_fh is not None:
            log_fh.write(("\n$ " + describe(stages) + "\n").encode())
            log_fh.flush()
        busy0 = machine_busy_s()
        server0 = process_cpu_s(server_pid)
        self0 = self_cpu_s()
        started = time.time()
        t0 = time.monotonic()
        prev_out: IO[bytes] | None = None
        for i, st in enumerate(stages):
            last = i == len(stages) - 1
            if st.stdin is not None:
                fin: Any = open(st.stdin, "rb")  # noqa: SIM115
                opened.append(fin)
            elif prev_out is not None:
                fin = prev_out
            else:
                fin = subprocess.DEVNULL
            if st.stdout is not None:
                fout: Any = open(st.stdout, "wb")  # noqa: SIM115
                opened.append(fout)
            elif not last or capture_stdout:
                fout = subprocess.PIPE
            else:
                fout = subprocess.DEVNULL
            p = subprocess.Popen(
                st.argv,
                stdin=fin,
                stdout=fout,
                stderr=log_fh if log_fh is not None else subprocess.DEVNULL,
                env=env,
            )
            if prev_out is not None:
                prev_out.close()  # the child holds it now; SIGPIPE reaches the writer
            prev_out = p.stdout if not last else None
            procs.append(p)
            poller.add(p.pid)
        if capture_stdout and procs[-1].stdout is not None:
            stdout_data = procs[-1].stdout.read()
        user = sys_ = 0.0
        ru_peak = 0
        rcs: list[int] = []
        for p in procs:
            # Stop polling once it has exited but before reaping it (no PID reuse).
            os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
            poller.reaped(p.pid)
            _pid, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            rcs.append(p.returncode)
            user += ru.ru_utime
            sys_ += ru.ru_stime
            ru_peak = max(ru_peak, ru.ru_maxrss * 1024)
        wall = time.monotonic() - t0
        server = process_cpu_s(server_pid) - server0
        busy = machine_busy_s() - busy0
        own = self_cpu_s() - self0
    finally:
        poller.stop()
        for fh in opened:
            fh.close()
        for p in procs:
            if p.stdout is not None:
                p.stdout.close()
            if p.returncode is None:
                p.kill()
                p.wait()
        if log_fh is not None:
            log_fh.close()
    other = max(0.0, busy - user - sys_ - server - own)
    tail = ""
    if log_path is not None and any(rc != 0 for rc in rcs):
        tail = log_path.read_text(errors="replace")[-2000:]
    return Measurement(
        wall_s=wall,
        client_user_s=user,
        client_sys_s=sys_,
        server_cpu_s=server,
        other_cpu_s=other,
        peak_rss_bytes=max(poller.peaks.values(), default=0),
        rss_sum_bytes=sum(poller.peaks.values()),
        ru_maxrss_bytes=ru_peak,
        returncodes=rcs,
        stdout=stdout_data.decode(errors="replace"),
        stderr_tail=tail,
        started_at=started,
    )


def path_size(path: Path) -> int:
    """Bytes of a file, or of every file under a directory."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total
