"""``moodump binlog pull``: copy the server's binary log into an archive directory.

The bytes come from ``mariadb-binlog --read-from-remote-server --raw`` (the replication
protocol, so only ``REPLICATION SLAVE`` and ``BINLOG MONITOR`` are needed), written into
the archive's private staging folder; moodump then parses each file (CRC-checked),
compresses it, checksums it and lists it in ``chain.json``.

Resuming: a pull starts at the first file the chain does not hold complete, from the
end of what the archive holds of it (``--start-position``; the new events are joined
to the archived part, see :meth:`Puller._whole`); whatever a ``kill -9`` left in staging
is discarded. A complete file is never fetched twice.
A file the server no longer has when the archive needs it is a *gap*, recorded in the
chain and logged as an error: point-in-time recovery is unavailable across it.

Without ``follow`` the pull fetches to the server's current end, archives the current
(open) file as well, and returns. With ``follow`` it streams and archives each file as
the server rotates past it, publishes the open file every ``publish_s`` seconds and when
stopped, and reconnects when the server restarts.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import subprocess
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from moodump.binlog.chain import (
    CHAIN_FILE,
    ArchivedFile,
    Gap,
    file_name,
    gtid_state,
    split_name,
    when,
)
from moodump.binlog.events import BinlogFormatError
from moodump.db.connection import Connection, ConnSettings, connect
from moodump.errors import ConfigError, IntegrityError, MoodumpError, PrivilegeError, ServerError
from moodump.fsmodes import make_dir
from moodump.lock import RunLock
from moodump.pitr.archive import LOCK_FILE, Archive, Summary, summarize
from moodump.pitr.client import binlog_tool, child_env, connection_args, die_with_parent

log = logging.getLogger("moodump.pitr")

#: mariadb-binlog's errors for a server file that ends inside an event (a torn write)
_TORN = re.compile(r"bogus data in log event|binlog truncated in the middle of event", re.I)


@dataclass
class PullResult:
    output: Path
    archived: list[str] = field(default_factory=list)  # complete files archived by this run
    open_file: str = ""  # the server's current file, archived as far as it went
    gaps: list[str] = field(default_factory=list)  # "PITR unavailable from ..." found now
    covered_until: int = 0  # epoch seconds (server clock)
    duration_s: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _ServerState:
    logs: list[tuple[str, int]]
    now: int
    current: tuple[str, int]


def server_state(settings: ConnSettings) -> _ServerState:
    """The server's binary log files (SHOW BINARY LOGS), its clock, and its write position."""
    with connect(settings.with_database(None)) as c:
        if (c.scalar("SELECT @@GLOBAL.log_bin") or b"0") in (b"0", b"OFF"):
            raise ConfigError(
                f"the server {settings.describe()} has no binary log (log_bin is OFF)",
                hint="start it with log_bin (and binlog_format=ROW); see docs/pitr.md",
            )
        try:
            rows = c.query("SHOW BINARY LOGS")
            status = c.query("SHOW MASTER STATUS")
        except PrivilegeError as exc:
            raise PrivilegeError(
                f"{settings.user} may not list the binary logs: {exc.message}",
                hint="GRANT BINLOG MONITOR, REPLICATION SLAVE ON *.* TO the account",
            ) from exc
        now = int(c.scalar("SELECT UNIX_TIMESTAMP()") or b"0")
    logs = [((r[0] or b"").decode(), int((r[1] or b"0").decode())) for r in rows]
    if not logs:
        raise ConfigError("the server lists no binary log files", hint="enable log_bin")
    cur = (
        ((status[0][0] or b"").decode(), int((status[0][1] or b"0").decode()))
        if status
        else logs[-1]
    )
    return _ServerState(logs, now, cur)


class Puller:
    def __init__(
        self,
        settings: ConnSettings,
        archive: Archive,
        *,
        stop: threading.Event,
        poll_s: float,
        publish_s: float,
        server_id: int | None,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.settings = settings.with_database(None)
        self.archive = archive
        self.stop = stop
        self.poll_s = poll_s
        self.publish_s = publish_s
        self.server_id = server_id or 0x40000000 + zlib.crc32(str(archive.root).encode()) % 10**6
        self.progress = progress or (lambda _msg: None)
        self.result = PullResult(archive.root)
        self.new_gaps: list[Gap] = []  # found by this run; their end is known once archived
        self.resume: tuple[str, int] = ("", 0)  # the open file continued, from where
        self.tool = binlog_tool()

    # ---------------------------------------------------------------- planning
    def start_file(self, state: _ServerState) -> str:
        """The file to fetch from; records a gap when the archive's next file is gone."""
        chain = self.archive.chain
        names = [n for n, _ in state.logs]
        base = split_name(names[0])[0]
        if chain.base and chain.base != base:
            raise ConfigError(
                f"{self.archive.root} archives binary logs named {chain.base}.*, the server "
                f"writes {base}.*",
                hint="use a separate archive directory for each server",
            )
        chain.base, chain.server = base, self.settings.describe().split("@", 1)[1]
        needed = chain.next_needed()
        if needed is None or needed in names:
            known = chain.get(needed) if needed else None
            on_server = dict(state.logs).get(needed or "", 0)
            if known is not None and on_server < known.size:
                raise self._new_history(
                    f"the server's {needed} has {on_server} bytes, fewer than the {known.size} "
                    "archived"
                )
            if (
                known is not None
                and not known.complete
                and self._check_same_file(known, on_server, state)
            ):
                known.complete = True  # its last whole event is its end
                self.archive.chain.put(known)
                self.archive.save()
                return self.start_file(state)
            return needed or names[0]
        nseq, first_seq = split_name(needed)[1], split_name(names[0])[1]
        if nseq > split_name(names[-1])[1]:
            raise ConfigError(
                f"the archive in {self.archive.root} expects {needed}, but the server's newest "
                f"binary log is {names[-1]} (another server, or RESET MASTER)",
                hint="use a new archive directory for this server",
            )
        prev = chain.get(needed) or (chain.files[-1] if chain.files else None)
        gap = Gap(
            first_missing=needed,
            last_missing=file_name(base, first_seq - 1) if first_seq - 1 >= nseq else needed,
            after_file=prev.name if prev else "",
            after_position=prev.size if prev else 0,
            from_time=prev.last_time if prev else 0,
            detected_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self.archive.add_gap(gap)
        self.new_gaps.append(gap)
        log.error(
            "binary log %s..%s was purged on the server before it was archived: PITR "
            "unavailable from %s", gap.first_missing, gap.last_missing, when(gap.from_time),
        )  # fmt: skip
        return names[0]

    def _new_history(self, what: str) -> ConfigError:
        """The server's binary log is not the one archived under the same names."""
        return ConfigError(
            f"{what}: the server's binary log is not the history in {self.archive.root} "
            "(RESET MASTER, a restored server, or another server); nothing of it was archived",
            hint="archive the new history into a new directory (and take a new backup: "
            "the old archive cannot replay past the reset)",
        )

    def _check_same_file(self, known: ArchivedFile, on_server: int, state: _ServerState) -> bool:
        """Before continuing the archived open file ``known``: the server's file of that
        name starts with the same GTID state and has an event boundary where the archive
        ends (after RESET MASTER the name is reused for other events). True when instead
        the file ends there with a torn event (:meth:`_torn_tail`): it is complete."""
        with connect(self.settings) as c:
            head = c.query(f"SHOW BINLOG EVENTS IN '{known.name}' LIMIT 2")
            listed = [(r[5] or b"").decode() for r in head if (r[2] or b"") == b"Gtid_list"]
            if listed and {g.strip() for g in listed[0].strip("[]").split(",")} - {""} != set(
                known.gtid_list
            ):
                raise self._new_history(
                    f"the server's {known.name} starts at GTID state {listed[0]}, the archived "
                    f"one at [{','.join(known.gtid_list)}]"
                )
            if on_server > known.size:
                try:
                    c.query(f"SHOW BINLOG EVENTS IN '{known.name}' FROM {known.size} LIMIT 1")
                except ServerError as exc:
                    if self._torn_tail(c, known, on_server, state):
                        return True
                    raise self._new_history(
                        f"the server's {known.name} has no event at {known.size}, where the "
                        f"archived part ends ({exc.message})"
                    ) from exc
        return False

    def _torn_tail(
        self, c: Connection, known: ArchivedFile, on_server: int, state: _ServerState
    ) -> bool:
        """The server's ``known`` file ends, after its archived whole events, with bytes
        that are no event: a write a crash cut short (the server's recovery ignores them,
        the transaction never committed, and mariadb-binlog cannot read past them). True,
        with a warning, when the server has moved on to a next file that starts at exactly
        the GTID state the archived events end with: no transaction is missing."""
        names = [n for n, _ in state.logs]
        if known.name == state.current[0] or known.name not in names[:-1]:
            return False
        nxt = names[names.index(known.name) + 1]
        head = c.query(f"SHOW BINLOG EVENTS IN '{nxt}' LIMIT 2")
        listed = [(r[5] or b"").decode() for r in head if (r[2] or b"") == b"Gtid_list"]
        after = {**gtid_state(",".join(known.gtid_list)), **gtid_state(",".join(known.gtid_last))}
        if not listed or gtid_state(listed[0].strip("[]")) != after:
            return False
        msg = (
            f"the server's {known.name} ends with {on_server - known.size} bytes that are not "
            f"a whole event after position {known.size} (a write cut short by a crash); "
            f"{nxt} starts at the GTID state its events end with, so {known.name} is "
            f"archived up to {known.size}"
        )
        log.warning("%s", msg)
        self.result.warnings.append(msg)
        return True

    def _check_follows(self, name: str, s: Summary) -> None:
        """A new file must continue the archived one before it: its starting GTID state
        holds the state and the last GTIDs of that file (RESET MASTER starts the names
        and the GTIDs over)."""
        chain = self.archive.chain
        base, seq = split_name(name)
        prev = chain.get(file_name(base, seq - 1))
        if prev is None or not prev.complete or chain.get(name) is not None:
            return
        start = gtid_state(",".join(s.gtid_list))
        # the state after prev: its starting state, each domain-server's last GTID in it
        # overriding (that is what the server's next Gtid_list lists, even a lower one)
        after = {**gtid_state(",".join(prev.gtid_list)), **gtid_state(",".join(prev.gtid_last))}
        for (d, sid), q in after.items():
            if start.get((d, sid), -1) < q:
                raise self._new_history(
                    f"{name} starts at GTID state {','.join(s.gtid_list) or '(empty)'}, which "
                    f"lacks {d}-{sid}-{q} of {prev.name}"
                )

    # ---------------------------------------------------------------- fetching
    def _fresh_staging(self) -> Path:
        st = self.archive.staging
        shutil.rmtree(st, ignore_errors=True)
        make_dir(st, parents=True, exist_ok=True)
        st.chmod(0o700)
        return st

    def _command(self, start: str, follow: bool, position: int) -> list[str]:
        args = [self.tool, *connection_args(self.tool, self.settings)]
        args += ["--read-from-remote-server", "--raw", f"--result-file={self.archive.staging}/"]
        if follow:
            args += ["--stop-never", f"--stop-never-slave-server-id={self.server_id}"]
        else:
            args.append("--to-last-log")
        if position > 4:
            args.append(f"--start-position={position}")
        return [*args, start]

    def _spawn(self, start: str, follow: bool) -> subprocess.Popen[bytes]:
        """Start the fetcher at ``start``; an open file the archive already holds in part
        is continued from where it ends (see :meth:`_whole`), not fetched again."""
        st = self._fresh_staging()
        known = self.archive.chain.get(start)
        self.resume = (start, 0)
        if known is not None and not known.complete and known.size > 4:
            self.archive.extract(known, st)  # checked against both checksums
            (st / start).rename(st / f".{start}.head")
            self.resume = (start, known.size)
            log.info("continuing %s from position %d (archived before)", start, known.size)
        err = open(self.archive.staging / ".fetch.err", "wb")  # noqa: SIM115 - owned by proc
        try:
            return subprocess.Popen(
                self._command(start, follow, self.resume[1]),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=child_env(self.settings),
                preexec_fn=die_with_parent,
            )
        finally:
            err.close()

    def _fetch_error(self, rc: int) -> MoodumpError:
        text = (self.archive.staging / ".fetch.err").read_text(errors="replace").strip()
        tail = " | ".join(text.splitlines()[-3:]) or "(no message)"
        if "denied" in text.lower() or "1227" in text:
            return PrivilegeError(
                f"mariadb-binlog may not read the binary log: {tail}",
                hint="GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO the account",
            )
        return ServerError(
            f"mariadb-binlog exited {rc}: {tail}",
            hint="check the server and the connection settings, then pull again",
        )

    # ---------------------------------------------------------------- archiving
    def _whole(self, p: Path) -> Path:
        """The staged file ``p`` as the whole server file. For a file continued from
        position N, mariadb-binlog writes the magic, a format description and the events
        from N on: they are joined to the archived first N bytes, after checking that the
        first event after the format description starts exactly at N."""
        name, at = self.resume
        if p.name != name or at <= 4:
            return p
        data = p.read_bytes()
        if len(data) < 4 + 19:
            raise IntegrityError(f"the continued {name} is too short", hint="pull again")
        fde_end = 4 + int.from_bytes(data[4 + 9 : 4 + 13], "little")
        with open(p.with_name(f".{name}.head"), "rb") as head:
            archived = head.read(4 + 4)
        if data[4:8] != archived[4:8]:  # the format description's time: the file's creation
            raise self._new_history(
                f"the server's {name} was created at another time than the archived one"
            )
        if len(data) >= fde_end + 19:
            size = int.from_bytes(data[fde_end + 9 : fde_end + 13], "little")
            log_pos = int.from_bytes(data[fde_end + 13 : fde_end + 17], "little")
            if log_pos - size != at:
                raise IntegrityError(
                    f"{name} continued from position {at} does not start there "
                    f"(first event at {log_pos - size})",
                    hint="pull again; if it repeats, start a new archive directory",
                )
        whole = p.with_name(f".{name}.whole")
        with open(whole, "wb") as out:
            with open(p.with_name(f".{name}.head"), "rb") as head:
                shutil.copyfileobj(head, out, 1 << 20)
            out.write(data[fde_end:])
        return whole

    def _staged_end(self, p: Path) -> int:
        """The server position the staged file ``p`` reaches (a continued file holds
        only a format description before the events from its start position)."""
        size = p.stat().st_size
        name, at = self.resume
        if p.name != name or at <= 4:
            return size
        with open(p, "rb") as fh:
            head = fh.read(4 + 13)
        if len(head) < 17:
            return at
        fde_end = 4 + int.from_bytes(head[4 + 9 : 4 + 13], "little")
        return at + max(0, size - fde_end)

    def collect(self, *, publish_open: bool) -> None:
        """Archive every staged file the server has rotated past; with ``publish_open``
        also the newest one, as far as it goes."""
        st = self.archive.staging
        staged = sorted(
            (p for p in st.iterdir() if p.is_file() and not p.name.startswith(".")),
            key=lambda p: split_name(p.name)[1],
        )
        for i, p in enumerate(staged):
            newest = i == len(staged) - 1
            staged_path, p = p, self._whole(p)
            try:
                s = summarize(p)
            except BinlogFormatError as exc:
                raise IntegrityError(
                    f"the fetched {p.name} is not a valid binary log: {exc}", hint="pull again"
                ) from exc
            complete = s.ends_with_rotate or not newest
            if complete:
                if s.trailing:
                    raise IntegrityError(
                        f"{p.name} ends inside an event although the server moved on",
                        hint="pull again",
                    )
                name = staged_path.name
                known = self.archive.chain.get(name)
                if known is None or not known.complete:
                    self._check_follows(name, s)
                    self.archive.store(p, name, complete=True)
                    self.result.archived.append(name)
                    self.progress(f"archived {name}")
                staged_path.unlink()
                if p != staged_path:
                    p.unlink()
                    self.resume = ("", 0)
            elif publish_open:
                name = staged_path.name
                known = self.archive.chain.get(name)
                if known is None or known.size != s.size:
                    self._check_follows(name, s)
                    self.archive.store(p, name, complete=False)
                self.result.open_file = name

    def once(self) -> None:
        for _attempt in range(8):
            state = server_state(self.settings)
            start = self.start_file(state)
            proc = self._spawn(start, follow=False)
            rc = proc.wait()
            if rc == 0:
                break
            failure = self._fetch_error(rc)
            if not _TORN.search(failure.message):
                raise failure
            # a file ending with a torn event: archive what came (whole events), and let
            # start_file decide whether the file is complete there (_torn_tail)
            self.collect(publish_open=True)
        else:
            raise failure
        self.collect(publish_open=True)
        self.archive.chain.covered_until = state.now
        self.archive.save()

    def follow(self) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            try:
                state = server_state(self.settings)
            except (ServerError, MoodumpError) as exc:
                if isinstance(exc, (ConfigError, PrivilegeError)):
                    raise
                log.warning("binlog pull: %s; retrying in %.0fs", exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            proc = self._spawn(self.start_file(state), follow=True)
            last_publish = time.monotonic()
            try:
                while proc.poll() is None and not self.stop.is_set():
                    self.stop.wait(self.poll_s)
                    self.collect(publish_open=False)
                    if time.monotonic() - last_publish >= self.publish_s:
                        self._publish_open()
                        last_publish = time.monotonic()
                        backoff = 1.0
                if self.stop.is_set():
                    self._publish_open()
                    return
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(10)
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
            rc = proc.returncode
            failure = self._fetch_error(rc)
            if isinstance(failure, PrivilegeError):
                raise failure
            self.collect(publish_open=True)
            log.warning("binlog pull: %s; reconnecting in %.0fs", failure, backoff)
            self.stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)

    def _publish_open(self) -> None:
        """Archive the open file once the stream has caught up with the server's position
        read just before (so ``covered_until`` is true), or as far as it got."""
        try:
            state = server_state(self.settings)
        except MoodumpError as exc:
            log.warning("binlog pull: cannot read the server's position: %s", exc)
            self.collect(publish_open=True)
            return
        name, pos = state.current
        target = self.archive.staging / name
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if target.exists() and self._staged_end(target) >= pos:
                break
            if (
                not target.exists()
                and (known := self.archive.chain.get(name)) is not None
                and known.complete
            ):
                break
            time.sleep(0.05)
        else:
            self.collect(publish_open=True)
            return
        self.collect(publish_open=True)
        self.archive.chain.covered_until = state.now
        self.archive.save()


def pull(
    settings: ConnSettings,
    output: Path | str,
    *,
    follow: bool = False,
    stop: threading.Event | None = None,
    poll_s: float = 1.0,
    publish_s: float = 30.0,
    server_id: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> PullResult:
    """Archive the server's binary log into ``output`` (see the module docstring).

    :raises LockBusy: another pull writes into ``output``.
    :raises PrivilegeError: the account lacks REPLICATION SLAVE or BINLOG MONITOR.
    :raises ConfigError: the server has no binary log, or the archive is another server's.
    """
    t0 = time.monotonic()
    archive = Archive.open(output, create=True)
    with RunLock(archive.root / LOCK_FILE, purpose="binlog pull"):
        if (archive.root / CHAIN_FILE).exists():  # read again, under the lock
            archive = Archive.open(output)
        p = Puller(
            settings,
            archive,
            stop=stop or threading.Event(),
            poll_s=poll_s,
            publish_s=publish_s,
            server_id=server_id,
            progress=progress,
        )
        try:
            if follow:
                p.follow()
            else:
                p.once()
        finally:
            shutil.rmtree(archive.staging, ignore_errors=True)
        p.result.covered_until = archive.chain.covered_until
        p.result.gaps = [g.describe() for g in p.new_gaps]
        for text in p.result.gaps:
            log.error("%s", text)
        p.result.duration_s = time.monotonic() - t0
        return p.result
