"""``docs/configuration.md``, generated from the key table (``python -m moodump.config
--markdown``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from moodump.config.keys import CLIENT_ENV, KEYS
from moodump.config.keyspec import GROUP_IGNORED, GROUPS, ORIGIN_NEW

# --------------------------------------------------------------------------- docs

_DOC_HEAD = """\
# Configuration

<!-- Generated from moodump/config/keys.py (KEYS) by `python -m moodump.config --markdown`.
     Do not edit by hand: tests/test_config.py fails when this file is out of date. -->

moodump reads the same environment variables and the same `backup.conf` as the old
backup-container, with the same defaults unless a row says otherwise, plus its own
`MOODUMP_*` settings. `moodump config` prints the effective configuration (secrets
masked) and exits with status 2 when something is wrong, naming the variable or the
`backup.conf` line and the fix.

General rules:

- An empty variable counts as unset (the old scripts used `${VAR:-default}`).
- A value's trailing line ends (`\\n`, `\\r\\n`) are dropped: a Kubernetes Secret made from a
  file ends in a newline, which `secretKeyRef` passes on (the old scripts' `$(...)` dropped
  it too). Other blanks are kept in secrets.
- Variables marked *file* also accept `<NAME>_FILE`: the first line of that file is the
  value (for Kubernetes secrets mounted as files). Setting both is an error. The line
  ends at LF, CR LF or a lone CR, and a UTF-8 byte order mark is dropped, here, in
  `--password-file` and in `backup.sh -r` alike.
- Secrets are never printed, logged or put on a command line.
- Per-database credentials: `<HOST>_USER` and `<HOST>_PASSWORD` (also `_FILE`), where
  HOST is the spec's host upper-cased with `-` and `.` turned into `_`
  (`mysql-0.mysql` -> `MYSQL_0_MYSQL_USER`). Unset, they fall back to `DATABASE_USER` and
  `DATABASE_PASSWORD`. (The old scripts only turned `-` into `_`; a host with a dot could
  not be used at all.)
- Per-database TLS: `<HOST>_SSL_MODE`, `<HOST>_SSL_CA`, `<HOST>_SSL_CERT` and
  `<HOST>_SSL_KEY` (paths, no `_FILE`), with the same HOST. Unset, the option file's
  `ssl-mode`/`ssl-ca`/`ssl-cert`/`ssl-key` and then `MOODUMP_SSL_*` apply (docs/tls.md).

## backup.conf

```
# comments start with '#'; blank lines are ignored
mysql-0.mysql/moodle               # [type=]host[:port]/database
mariadb=db.example.org:3307/moodle_archive
postgres=patroni:5432/app          # PostgreSQL (port default 5432; docs/postgresql.md)
mongo=mongodb/docs                 # other types are skipped (one ConfigMap, several containers)
0 1 * * * default ./backup.sh -s          # m h dom mon dow user command: backup
0 4 * * * default ./backup.sh -s -v all   # verify every database
30 5 * * * default moodump check --max-age 26h
```

- Host names may contain dots (the old parser took such lines for cron lines).
- `mariadb=` and `mysql=` lines and untyped lines are backed up, in file order, and so
  are `postgres=` (or `postgresql=`) lines, with the PostgreSQL engine: the same
  credentials (`<HOST>_USER`/`_PASSWORD`, `DATABASE_USER`/`_PASSWORD`), then `PGUSER`,
  `PGPASSWORD` or `~/.pgpass` (docs/postgresql.md). `mongo=`, `mssql=` and `null=` lines
  are skipped with a note.
- A line that is neither a database nor a valid schedule line is an error with
  `file:line`.
- Without database lines, `DATABASE_SERVICE_NAME[:port]/DATABASE_NAME` is used.
- With schedule lines moodump runs them in-process in `TZ` (cron mode); without them it
  runs every `BACKUP_PERIOD` (legacy mode). `moodump run --once` runs one cycle.
"""


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown() -> str:
    """docs/configuration.md, generated from :data:`KEYS`."""
    out = [_DOC_HEAD]
    for group in GROUPS:
        keys = [k for k in KEYS if k.group == group]
        if not keys:
            continue
        out.append(f"\n## {group}\n")
        if group == GROUP_IGNORED:
            out.append(
                "Set in old deployments but not used by moodump; `moodump config` prints a "
                "note when one is set.\n"
            )
            out.append("| Variable | Meaning (old) | What moodump does |")
            out.append("|---|---|---|")
            for k in keys:
                out.append(f"| `{k.env}` | {_md_escape(k.doc)} | {_md_escape(k.ignored_note)} |")
            continue
        out.append("| Variable | Default | Meaning |")
        out.append("|---|---|---|")
        for k in keys:
            default = k.default_doc if k.default_doc is not None else (k.default or "(none)")
            default = f"`{default}`" if k.default_doc is None and k.default else default
            names = f"`{k.env}`"
            if k.aliases:
                names += " (also " + ", ".join(f"`{a}`" for a in k.aliases) + ")"
            flags = []
            if k.secret:
                flags.append("secret")
            if k.accepts_file:
                flags.append("file")
            if k.origin == ORIGIN_NEW:
                flags.append("new")
            tag = f" *({', '.join(flags)})*" if flags else ""
            out.append(f"| {names}{tag} | {_md_escape(default)} | {_md_escape(k.doc)} |")
    out.append("\n## Connection variables of the one-off commands\n")
    out.append("`moodump dump`, `restore` and `verify` take connection options; these fill gaps:\n")
    out.append("| Variable | Meaning |")
    out.append("|---|---|")
    for name, doc in CLIENT_ENV.items():
        out.append(f"| `{name}` | {doc} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m moodump.config --markdown [--output PATH]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m moodump.config")
    parser.add_argument("--markdown", action="store_true", help="print docs/configuration.md")
    parser.add_argument("--output", help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    text = render_markdown()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
