"""The staging scrub as data: which table and column, and what is done to it. Pure.

A staging copy (``moodump restore --staging``) is a production site's database made
safe for upgrade rehearsals and testing: nobody can log in with a production password,
no mail reaches a real person, no session or token of the live site works against it,
and cron does not talk to the outside world. :data:`RULES` declares every change; the
restore applies them in one transaction (:mod:`moodump.moodlesite.staging`) and lists
each (rule, table, column, rows affected) in its report. docs/moodle.md, "Staging
copies", is the human-readable version of this table.

Actions:

- ``email``: a non-deliverable address built from the row id, ``user<id>@example.invalid``
  (``.invalid`` is reserved by RFC 2606: it never resolves); empty values stay empty.
- ``password``: Moodle's ``AUTH_PASSWORD_NOT_CACHED`` marker ``not cached``, which
  ``validate_internal_user_password()`` refuses: no password logs in, and the operator
  sets one with ``php admin/cli/reset_password.php``.
- ``blank``: the empty string (secrets such as MFA seeds, OAuth client secrets).
- ``empty``: every row deleted (sessions, tokens, keys).
- ``config``: the ``{prefix}config`` row ``column`` (a setting name) set to ``value``,
  inserted when missing.

A rule is ``required`` when its table is core Moodle: a missing table or column then
fails the restore before anything is changed (the schema is not Moodle's, or not a
version this table knows). For plugin tables (``required=False``) a missing table is
skipped and noted, but a table that is there without the column still fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from moodump.errors import ConfigError
from moodump.sqltext import quote_ident, quote_str

EMAIL, PASSWORD, BLANK, EMPTY, CONFIG = "email", "password", "blank", "empty", "config"
#: Moodle's AUTH_PASSWORD_NOT_CACHED (lib/authlib.php): never a valid password hash.
NOT_CACHED = "not cached"
INVALID_DOMAIN = "example.invalid"


@dataclass(frozen=True)
class Rule:
    name: str  # what it is for, shown in the report
    table: str  # without the prefix
    column: str  # for "empty": a column that must exist (the key); for "config": the setting
    action: str
    value: str = ""  # for "config"
    required: bool = True


RULES: tuple[Rule, ...] = (
    # People: addresses and passwords.
    Rule("user e-mail", "user", "email", EMAIL),
    Rule("user password hash", "user", "password", PASSWORD),
    Rule("user secret (password reset, confirmation)", "user", "secret", BLANK),
    Rule("old password hashes", "user_password_history", "hash", EMPTY),
    Rule("password reset tokens", "user_password_resets", "token", EMPTY),
    Rule("OAuth 2 linked login e-mail", "auth_oauth2_linked_login", "email", EMAIL, required=False),
    Rule(
        "OAuth 2 linked login token",
        "auth_oauth2_linked_login",
        "confirmtoken",
        BLANK,
        required=False,
    ),
    # Sessions and tokens of the live site.
    Rule("sessions", "sessions", "sid", EMPTY),
    Rule("web service tokens", "external_tokens", "token", EMPTY),
    Rule("external service users", "external_services_users", "userid", EMPTY),
    Rule("user private keys (RSS, calendar export...)", "user_private_key", "value", EMPTY),
    Rule("MNet sessions", "mnet_session", "token", EMPTY, required=False),
    Rule("mobile app devices (push ids)", "user_devices", "pushid", EMPTY, required=False),
    Rule("OAuth 2 access tokens", "oauth2_access_token", "token", EMPTY, required=False),
    Rule("OAuth 2 refresh tokens", "oauth2_refresh_token", "token", EMPTY, required=False),
    Rule(
        "OAuth 2 system account token",
        "oauth2_system_account",
        "refreshtoken",
        BLANK,
        required=False,
    ),
    Rule("OAuth 2 system account e-mail", "oauth2_system_account", "email", EMAIL, required=False),
    Rule("OAuth 2 client secrets", "oauth2_issuer", "clientsecret", BLANK, required=False),
    Rule("badge backpack tokens", "badge_backpack_oauth2", "token", EMPTY, required=False),
    Rule("LTI access tokens", "lti_access_tokens", "token", EMPTY, required=False),
    Rule("LTI consumer secrets", "enrol_lti_users", "consumersecret", BLANK, required=False),
    Rule("MFA factor secrets", "tool_mfa", "secret", BLANK, required=False),
    Rule("MFA one-time codes", "tool_mfa_secrets", "secret", EMPTY, required=False),
    Rule("inbound mail keys", "messageinbound_datakeys", "datakey", EMPTY, required=False),
    # Site settings: no mail, no cron, no stored outgoing credentials.
    Rule("outgoing mail off", "config", "noemailever", CONFIG, "1"),
    Rule("cron off (Moodle 4.2+)", "config", "cron_enabled", CONFIG, "0"),
    Rule("SMTP password", "config", "smtppass", CONFIG, ""),
    Rule("cron web password", "config", "cronremotepassword", CONFIG, ""),
)


@dataclass(frozen=True)
class Plan:
    """The rules that apply to one schema, and those skipped (optional table absent)."""

    rules: tuple[Rule, ...]
    skipped: tuple[Rule, ...]


def plan_scrub(columns: dict[str, list[str]], prefix: str, rules: tuple[Rule, ...] = RULES) -> Plan:
    """Check ``rules`` against a schema (prefixed table name -> its columns).

    :raises ConfigError: a required table, or a column of a present table, is missing;
        the message names every one, and nothing has been changed yet.
    """
    apply: list[Rule] = []
    skipped: list[Rule] = []
    problems: list[str] = []
    for r in rules:
        table = prefix + r.table
        cols = columns.get(table)
        if cols is None:
            if r.required:
                problems.append(f"table {table} is missing")
            else:
                skipped.append(r)
            continue
        need = ("name", "value") if r.action == CONFIG else (r.column,)
        if r.action == EMAIL:
            need = (r.column, "id")
        missing = [c for c in need if c not in cols]
        if missing:
            problems.append(f"{table} has no column {', '.join(missing)} (rule {r.name!r})")
            continue
        apply.append(r)
    if problems:
        raise ConfigError(
            "cannot make a staging copy: " + "; ".join(sorted(set(problems))),
            hint="--staging knows Moodle's schema (3.9 to 4.4) with the table prefix given by "
            "--prefix; check the prefix, or restore without --staging",
        )
    return Plan(tuple(apply), tuple(skipped))


def rule_sql(r: Rule, database: str, prefix: str) -> str:
    """The one statement that applies ``r`` in ``database``."""
    t = f"{quote_ident(database)}.{quote_ident(prefix + r.table)}"
    c = quote_ident(r.column)
    if r.action == EMAIL:
        return (
            f"UPDATE {t} SET {c} = CONCAT('user', `id`, {quote_str('@' + INVALID_DOMAIN)}) "
            f"WHERE {c} IS NOT NULL AND {c} <> ''"
        )
    if r.action == PASSWORD:
        return f"UPDATE {t} SET {c} = {quote_str(NOT_CACHED)} WHERE {c} IS NOT NULL"
    if r.action == BLANK:
        return f"UPDATE {t} SET {c} = '' WHERE {c} IS NOT NULL AND {c} <> ''"
    if r.action == EMPTY:
        return f"DELETE FROM {t}"  # not TRUNCATE: DDL would end the transaction
    if r.action == CONFIG:
        return (
            f"INSERT INTO {t} (`name`, `value`) VALUES ({quote_str(r.column)}, "
            f"{quote_str(r.value)}) ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)"
        )
    raise ValueError(f"unknown scrub action {r.action!r}")
