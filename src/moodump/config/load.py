"""Loading: environment mapping and backup.conf text in, a frozen :class:`Config` out.

:func:`load_config` is pure (the only I/O is reading ``*_FILE`` secrets through an
injectable reader); :func:`load_config_from_environment` reads ``os.environ`` and the
BACKUP_CONF file.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo

from moodump.config.conffile import _parse_port, _RawSpec, parse_backup_conf
from moodump.config.keys import (
    _KEY_BY_NAME,
    _KNOWN_NAMES,
    KEYS,
    host_env_prefix,
    is_known_env_name,
)
from moodump.config.keyspec import Key
from moodump.config.model import (
    USERINFO_RULE,
    Config,
    DatabaseSpec,
    mask_url,
    mask_userinfo,
    userinfo_needs_encoding,
)
from moodump.config.moodlephp import MoodleConfig, parse_moodle_config
from moodump.config.values import Secret, parse_ssl_mode, parse_tz, secret_first_line
from moodump.errors import ConfigError
from moodump.formats import CODECS
from moodump.retention import RetentionPolicy

# --------------------------------------------------------------------------- loading


def _read_first_line(path: str) -> str:
    return secret_first_line(Path(path).read_bytes().decode("utf-8"))


ReadFile = Callable[[str], str]


class _Env:
    """Environment lookups with the empty-is-unset and ``_FILE`` rules; records sources."""

    def __init__(self, env: Mapping[str, str], read_file: ReadFile) -> None:
        self.env = env
        self.read_file = read_file

    def get(self, name: str, *, file_ok: bool, whole: bool = False) -> tuple[str, str] | None:
        """(value, source) of ``name`` or ``name_FILE``; None when neither is set.
        ``whole``: the file's whole text (a PEM key), not its first line.

        A value's trailing line ends are dropped (not a ``whole`` one's): a Kubernetes
        Secret made from a file ends in one, which ``secretKeyRef`` passes on, and the old
        container's ``$(getPassword)`` dropped it too (a ``*_FILE`` value is its first
        line)."""
        direct = self.env.get(name, "")
        if not whole:
            direct = direct.rstrip("\r\n")
        file_name = f"{name}_FILE"
        path = self.env.get(file_name, "") if file_ok else ""
        if direct and path:
            raise ConfigError(
                f"both {name} and {file_name} are set",
                hint=f"set only one of them (unset {name} to use the file)",
            )
        if path:
            try:
                value = Path(path).read_text(encoding="utf-8") if whole else self.read_file(path)
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {file_name}={path}: {exc.strerror or exc}",
                    hint="check that the secret is mounted at that path and readable",
                ) from None
            except UnicodeDecodeError:  # never echo the bytes: it may be a password
                raise ConfigError(
                    f"{file_name}={path} is not UTF-8 text",
                    hint=f"write the value of {name} into the file as UTF-8",
                ) from None
            return value, f"file {path} ({file_name})"
        if direct:
            return direct, f"env {name}"
        return None


def _load_key(k: Key, env: _Env) -> tuple[Any, str]:
    found = None
    for name in k.env_names:
        found = env.get(name, file_ok=k.accepts_file, whole=k.whole_file)
        if found is not None:
            break
    raw, source = found if found is not None else (k.default, "default")
    if raw == "" and k.secret:
        return None, source
    try:
        return k.parse(raw), source
    except ValueError as exc:
        shown = "(secret)" if k.secret else repr(raw)
        where = source if source != "default" else f"default of {k.env}"
        raise ConfigError(f"{k.env}={shown} ({where}): {exc}", hint=_fix_hint(k, source)) from None


def _fix_hint(k: Key, source: str) -> str:
    """The next step for a bad value: which variable (or file) to fix, the default that
    unsetting it gives, then what the key means."""
    if source.startswith("env "):
        fix = f"set {source.removeprefix('env ')} to a valid value, or unset it"
    elif source.startswith("file "):
        fix = f"fix the value in {source.removeprefix('file ')}, or unset that variable"
    else:
        fix = f"set {k.env}"
    default = k.default_doc or k.default
    if source != "default":
        fix += f" (default: {default})" if default and not k.secret else " (default: empty)"
    return f"{fix}. {k.doc}"


def _credentials(
    host: str, env: _Env, fallback_user: tuple[str, str], fallback_pw: tuple[Secret | None, str]
) -> tuple[str, str, Secret | None, str]:
    prefix = host_env_prefix(host)
    user = env.get(f"{prefix}_USER", file_ok=True)
    pw = env.get(f"{prefix}_PASSWORD", file_ok=True)
    u, us = (user[0], user[1].removeprefix("env ")) if user else fallback_user
    if pw:
        p: Secret | None = Secret(pw[0])
        ps = pw[1].removeprefix("env ")
    else:
        p, ps = fallback_pw
    return u, us, p, ps


_TLS_SUFFIXES = ("SSL_MODE", "SSL_CA", "SSL_CERT", "SSL_KEY")


def _host_tls(host: str, env: Mapping[str, str]) -> dict[str, str | None]:
    """``<HOST>_SSL_MODE`` / ``_SSL_CA`` / ``_SSL_CERT`` / ``_SSL_KEY`` of ``host``, as
    :class:`DatabaseSpec` fields (None where unset). Paths, not secrets: no ``_FILE``."""
    prefix = host_env_prefix(host)
    out: dict[str, str | None] = {}
    for suffix in _TLS_SUFFIXES:
        name = f"{prefix}_{suffix}"
        value = env.get(name, "").strip() or None
        if value is not None and suffix == "SSL_MODE":
            try:
                value = parse_ssl_mode(value)
            except ValueError as exc:
                raise ConfigError(
                    f"{name}={value!r}: {exc}", hint=_KEY_BY_NAME["ssl_mode"].doc
                ) from None
        out[suffix.lower()] = value
    return out


def load_config(
    env: Mapping[str, str],
    conf_text: str | None,
    conf_path: str,
    *,
    local_zone: str = "UTC",
    read_file: ReadFile = _read_first_line,
    moodle_php: str | None = None,
) -> Config:
    """Build the effective :class:`Config` from an environment and backup.conf text.

    :param env: environment variables (``os.environ`` or a test dict).
    :param conf_text: backup.conf content, or None when the file does not exist.
    :param conf_path: the file's path, for messages and ``moodump config``.
    :param local_zone: time zone used when TZ is unset (the system zone).
    :param read_file: reads a ``*_FILE`` secret's first line (injectable for tests).
    :param moodle_php: the text of MOODLE_CONFIG's config.php (None: not set). Its
        database is the one backed up when neither backup.conf nor DATABASE_SERVICE_NAME
        names one; its credentials, prefix and dataroot apply to that database (the
        environment's DATABASE_USER/PASSWORD, <HOST>_USER/PASSWORD and MOODLE_PREFIX win).
    :raises ConfigError: a bad value, a bad backup.conf line (file:line and the fix), or
        both ``X`` and ``X_FILE`` set.
    """
    e = _Env(env, read_file)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    notes: list[str] = []
    run_warnings: list[str] = []
    for k in KEYS:
        is_set = any(env.get(n) or env.get(f"{n}_FILE") for n in k.env_names)
        if k.name is None:
            if is_set:
                notes.append(f"{k.env} is set: {k.ignored_note}")
                run_warnings.append(notes[-1])
            continue
        if k.changed_note and is_set:
            notes.append(f"{k.env} is set: {k.changed_note}")
            run_warnings.append(notes[-1])
        if k.name == "tz" and not env.get("TZ"):
            # Unset TZ means the system zone, as for every other program.
            try:
                values["tz"], sources["tz"] = parse_tz(local_zone), f"system zone {local_zone}"
            except ValueError:
                values["tz"], sources["tz"] = ZoneInfo("UTC"), "UTC (system zone unknown)"
            continue
        value, source = _load_key(k, e)
        values[k.name] = value
        sources[k.name] = source
    _check_level(values["codec"], values["level"], sources["level"])
    _check_http_urls(values)
    notes.extend(_offsite_url_notes(values))
    for alias_key in ("backup_dir",):
        k = _KEY_BY_NAME[alias_key]
        set_names = [n for n in k.env_names if env.get(n)]
        if len(set_names) > 1 and len({env[n] for n in set_names}) > 1:
            notes.append(f"{' and '.join(set_names)} differ: {set_names[0]} wins, as before")

    retention = RetentionPolicy.resolve(
        values["backup_strategy"],
        num_backups=values["num_backups"],
        daily=values["daily_backups"],
        weekly=values["weekly_backups"],
        monthly=values["monthly_backups"],
    )
    if retention.strategy != values["backup_strategy"]:
        notes.append(
            f"WEEKLY_BACKUPS={values['weekly_backups']} is negative: the daily strategy is "
            f"used (NUM_BACKUPS={retention.num_backups})"
        )

    site = None
    if moodle_php is not None:
        site = parse_moodle_config(moodle_php, values["moodle_config"] or "config.php", env)
        site.check_engine()
        if sources["moodle_prefix"] == "default" and site.has("prefix"):
            text = site.text("prefix", override="MOODLE_PREFIX") or ""
            try:
                values["moodle_prefix"] = _KEY_BY_NAME["moodle_prefix"].parse(text)
            except ValueError as exc:
                raise ConfigError(
                    f"{site.path}:{site.lines['prefix']}: $CFG->prefix {text!r}: {exc}",
                    hint="fix config.php or set MOODLE_PREFIX",
                ) from None
            sources["moodle_prefix"] = f"config.php {site.path}:{site.lines['prefix']}"

    conf = parse_backup_conf(conf_text, conf_path) if conf_text is not None else None
    if conf is not None:
        notes.extend(conf.notes)
    fallback_user = (values["database_user"], _short(sources["database_user"]))
    fallback_pw = (values["database_password"], _short(sources["database_password"]))
    databases: list[DatabaseSpec] = []
    raw_specs = list(conf.specs) if conf else []
    databases_from = "backup.conf" if raw_specs else "none"
    if not raw_specs:
        raw_specs = _fallback_spec(values, sources)
        if raw_specs:
            databases_from = "environment"
    if not raw_specs and site is not None:
        raw_specs = _site_spec(site)
        databases_from = "config.php"
    for s in raw_specs:
        mine = site is not None and _is_site(site, s)
        fb_user, fb_pw = fallback_user, fallback_pw
        dataroot = ""
        if site is not None and mine:
            fb_user, fb_pw, dataroot = _site_credentials(site, s.host, e, fb_user, fb_pw, notes)
        user, user_src, password, pw_src = _credentials(s.host, e, fb_user, fb_pw)
        databases.append(
            DatabaseSpec(
                host=s.host,
                database=s.database,
                port=s.port,
                db_type=s.db_type,
                spec=s.spec,
                line=s.line,
                user=user,
                password=password,
                user_source=user_src,
                password_source=pw_src if password else "",
                dataroot=dataroot,
                **_host_tls(s.host, env),
            )
        )
    for d in databases:
        if not d.user:
            notes.append(
                f"{d.spec}: no account configured (set {host_env_prefix(d.host)}_USER or "
                + ("DATABASE_USER; else PGUSER applies)" if d.is_postgres else "DATABASE_USER)")
            )
    if values["file_mode"] & 0o004:
        notes.append(
            f"MOODUMP_FILE_MODE={values['file_mode']:04o} makes backups world-readable "
            "(password hashes and personal data); 0640 keeps them to the owner and group"
        )
        run_warnings.append(notes[-1])
    for name in sorted(env):
        if name.startswith("MOODUMP_") and not is_known_env_name(name):
            near = difflib.get_close_matches(name, sorted(_KNOWN_NAMES), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            notes.append(f"{name} is not a moodump setting{hint}")
            run_warnings.append(notes[-1])
    return Config(
        **values,
        databases=tuple(databases),
        schedule=conf.schedule if conf else (),
        conf_path=conf_path,
        conf_found=conf_text is not None,
        databases_from=databases_from,
        retention=retention,
        notes=tuple(notes),
        run_warnings=tuple(run_warnings),
        sources=sources,
    )


def _check_level(codec_name: str, level: int | None, source: str) -> None:
    """MOODUMP_LEVEL against MOODUMP_CODEC's range, when the configuration is read (so
    ``moodump config`` reports it), not only when the first dump starts."""
    codec = CODECS[codec_name]
    if level is None or codec.min_level <= level <= codec.max_level:
        return
    raise ConfigError(
        f"MOODUMP_LEVEL={level} ({source}) is out of range for MOODUMP_CODEC={codec_name} "
        f"({codec.min_level}..{codec.max_level})",
        hint=f"set MOODUMP_LEVEL between {codec.min_level} and {codec.max_level}, or leave "
        f"it empty for {codec_name}'s default ({codec.default_level})",
    )


def _check_http_urls(values: Mapping[str, Any]) -> None:
    """WEBHOOK_URL and PGDUTY_URL are http(s) URLs with a host, checked when the
    configuration is read (``moodump config``), not at the first notification."""
    for name, env_name in (("webhook_url", "WEBHOOK_URL"), ("pgduty_url", "PGDUTY_URL")):
        value = values[name]
        text = value.reveal() if isinstance(value, Secret) else str(value or "")
        if not text:
            continue
        if userinfo_needs_encoding(text):
            raise ConfigError(
                f"{env_name}={mask_url(text)}: its user or password holds an unencoded "
                "'/', '?' or '#', which ends the host part of a URL",
                hint=USERINFO_RULE,
            )
        try:
            parts = urlsplit(text)
        except ValueError:  # an unclosed [ (IPv6 host)
            parts = urlsplit("")
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{env_name}={mask_url(text) or '****'} is not an http:// or https:// URL",
                hint=f"set {env_name} to the full address, e.g. https://chat.example.org/hooks/…",
            )
        if _bad_port(parts):
            raise ConfigError(
                f"{env_name}={mask_url(text) or '****'}: {_PORT_RULE}",
                hint=f"fix the port in {env_name} (or leave it out for the scheme's default)",
            )


_PORT_RULE = "the port is not a number from 1 to 65535"


def _bad_port(parts: SplitResult) -> bool:
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        return True
    return port == 0


def _offsite_url_notes(values: Mapping[str, Any]) -> list[str]:
    """FTP_URL and S3_ENDPOINT are parsed where the copies are made (a bad one turns that
    target off for the run, reported as an error; the backups still run), so
    ``moodump config`` notes what would fail rather than refusing the configuration."""
    out = []
    for name, env_name, schemes in (
        ("ftp_url", "FTP_URL", ("ftp", "ftps")),
        ("s3_endpoint", "S3_ENDPOINT", ("http", "https")),
    ):
        text = str(values[name] or "")
        if not text:
            continue
        try:
            parts = urlsplit(text)
            problem = _PORT_RULE if _bad_port(parts) else ""
        except ValueError:  # urlsplit: an unclosed [ (IPv6)
            parts, problem = urlsplit(""), "it is not a valid URL"
        if userinfo_needs_encoding(text):
            problem = USERINFO_RULE.replace("its own variable", f"{env_name[:3]}_PASSWORD")
        if not problem and (parts.scheme.lower() not in schemes or not parts.hostname):
            problem = f"it does not start with {' or '.join(s + '://' for s in schemes)} and a host"
        elif not problem and (parts.query or parts.fragment):
            problem = "it has a ? or # (percent-encode them in a path: %3F, %23)"
        elif not problem and name == "s3_endpoint" and parts.path not in ("", "/"):
            problem = "it has a path (the bucket goes in S3_BUCKET, a prefix in S3_PREFIX)"
        if problem:
            out.append(
                f"{env_name} {mask_userinfo(text)}: {problem}; the off-site copies there "
                "will fail until it is fixed"
            )
    return out


def _short(source: str) -> str:
    """``env DATABASE_USER`` -> ``DATABASE_USER``; ``default`` -> ``""``."""
    if source == "default":
        return ""
    return source.removeprefix("env ")


def _fallback_spec(values: Mapping[str, Any], sources: Mapping[str, str]) -> list[_RawSpec]:
    service = str(values["database_service_name"])
    name = str(values["database_name"])
    if not service or not name:
        return []
    fix = "set DATABASE_SERVICE_NAME to host or host:port (e.g. mysql-0.mysql:3306)"
    m = re.match(r"^(?P<host>[A-Za-z0-9_][A-Za-z0-9._-]*)(?::(?P<port>[0-9]*))?$", service)
    if not m:
        raise ConfigError(f"DATABASE_SERVICE_NAME={service!r} is not a host name", hint=fix)
    if not re.match(r"^[A-Za-z0-9_$-]+$", name):
        raise ConfigError(
            f"{_short(sources['database_name'])}={name!r} is not a database name",
            hint="use the plain database name, e.g. moodle",
        )
    port = _parse_port(m.group("port"), "DATABASE_SERVICE_NAME", fix)
    spec = f"{service}/{name}"
    return [_RawSpec(0, spec, "", m.group("host"), port, name)]


def _site_spec(site: MoodleConfig) -> list[_RawSpec]:
    """config.php's database as a database line (host, port, name)."""
    host = site.text("dbhost", override="DATABASE_SERVICE_NAME") or "localhost"
    name = site.text("dbname", override="DATABASE_NAME")
    if not name:
        raise ConfigError(
            f"{site.path} sets no $CFG->dbname", hint="point MOODLE_CONFIG at the site's config.php"
        )
    port = site.port()
    spec = f"{host}:{port}/{name}" if port else f"{host}/{name}"
    return [_RawSpec(0, spec, site.check_engine(), host, port, name)]


def _is_site(site: MoodleConfig, spec: _RawSpec) -> bool:
    """Whether a configured database is config.php's (same database name and host)."""
    try:
        return spec.database == site.text("dbname") and spec.host == (
            site.text("dbhost") or "localhost"
        )
    except ConfigError:
        return False


def _site_credentials(
    site: MoodleConfig,
    host: str,
    env: _Env,
    fallback_user: tuple[str, str],
    fallback_pw: tuple[Secret | None, str],
    notes: list[str],
) -> tuple[tuple[str, str], tuple[Secret | None, str], str]:
    """The fallback account of config.php's database: DATABASE_USER/PASSWORD when set,
    else config.php's dbuser/dbpass (read only when needed: an unreadable dbpass is an
    error only when nothing overrides it); and its dataroot ("" when unknown)."""
    prefix = host_env_prefix(host)
    where = f"config.php {site.path}"
    if not fallback_user[0] and not env.get(f"{prefix}_USER", file_ok=True):
        user = site.text("dbuser", override=f"{prefix}_USER or DATABASE_USER") or ""
        fallback_user = (user, f"{where}:{site.lines.get('dbuser', 0)}")
    if not fallback_pw[0] and not env.get(f"{prefix}_PASSWORD", file_ok=True):
        pw = site.text("dbpass", override=f"{prefix}_PASSWORD or DATABASE_PASSWORD")
        fallback_pw = (Secret(pw) if pw else None, f"{where}:{site.lines.get('dbpass', 0)}")
    try:
        dataroot = site.text("dataroot") or ""
    except ConfigError as exc:
        notes.append(f"{exc.message}: the CLI maintenance file is not looked for")
        dataroot = ""
    return fallback_user, fallback_pw, dataroot


def read_moodle_config(path: str, env: Mapping[str, str] | None = None) -> MoodleConfig:
    """Read and parse a Moodle config.php (``getenv()`` reads ``env``, default
    ``os.environ``); its ``dbtype`` must be of the MySQL family."""
    site = parse_moodle_config(_read_moodle_text(path), path, os.environ if env is None else env)
    site.check_engine()
    return site


def _read_moodle_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ConfigError(
            f"cannot read Moodle config {path}: {exc.strerror or exc}",
            hint="check --moodle-config / MOODLE_CONFIG and the file's permissions",
        ) from None


def configured_zone(env: Mapping[str, str] | None = None) -> ZoneInfo:
    """The zone backup names are written in: ``TZ`` when set (parsed as the key table
    says), else the system's zone; for commands that need it without a full config."""
    text = (os.environ if env is None else env).get("TZ", "")
    return parse_tz(text or system_zone_name())


def system_zone_name() -> str:
    """The system time zone's name (``/etc/timezone`` or the ``/etc/localtime`` link)."""
    try:
        name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def load_config_from_environment(
    *, overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """:func:`load_config` over ``os.environ`` and the BACKUP_CONF file.

    ``overrides`` replace environment variables (the CLI's ``--backup-dir`` passes
    ``{"BACKUP_DIR": ...}``; ROOT_BACKUP_DIR is then ignored). A missing backup.conf is
    fine at the default path (the environment fallback applies, as before), but an
    explicitly set BACKUP_CONF that does not exist is an error.
    """
    env = dict(os.environ if environ is None else environ)
    for name, value in (overrides or {}).items():
        env[name] = value
        if name == "BACKUP_DIR":
            env.pop("ROOT_BACKUP_DIR", None)
    conf_path = env.get("BACKUP_CONF") or _KEY_BY_NAME["backup_conf"].default
    try:
        # Not UTF-8 (a Latin-1 comment, as the shell never cared): undecodable bytes
        # become U+FFFD, harmless in a comment and a clear error in a database line.
        conf_text: str | None = Path(conf_path).read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        if env.get("BACKUP_CONF"):
            raise ConfigError(
                f"BACKUP_CONF={conf_path} does not exist",
                hint="mount the ConfigMap at that path, or point BACKUP_CONF at the file",
            ) from None
        conf_text = None
    except OSError as exc:
        raise ConfigError(
            f"cannot read BACKUP_CONF={conf_path}: {exc.strerror}",
            hint="check the file's permissions",
        ) from None
    moodle_php = None
    if env.get("MOODLE_CONFIG"):
        moodle_php = _read_moodle_text(env["MOODLE_CONFIG"])
    return load_config(
        env, conf_text, conf_path, local_zone=system_zone_name(), moodle_php=moodle_php
    )


def setting(
    env_name: str,
    env: Mapping[str, str] | None = None,
    *,
    read_file: ReadFile | None = None,
) -> Any:
    """One key's parsed value from the environment, by its variable name.

    For the few settings read deep in the engine rather than through :class:`Config`
    (the fetch-path switches): the same table, parser, default and ``_FILE`` rules as
    :func:`load_config`, so there is one place that knows every setting.
    """
    key = next((k for k in KEYS if k.env == env_name and k.name), None)
    if key is None:
        raise KeyError(f"{env_name} is not in the key table")
    reader = read_file or _read_first_line
    value, _source = _load_key(key, _Env(os.environ if env is None else env, reader))
    return value.reveal() if isinstance(value, Secret) else value
