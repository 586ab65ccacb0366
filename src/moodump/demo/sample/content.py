"""What goes into each table: the site's dimensions and the per-table column expressions.

:func:`site_at` turns a scale factor into row counts (scale 1 is a mid-sized site, about
2 GB of InnoDB data). :func:`special_fills` gives hand-written column expressions for the
tables that dominate a real Moodle database and for those whose rows others refer to;
every other table is filled by the generic rules in :mod:`moodump.demo.sample.generate`. All
expressions are SQL over ``seq`` (see :mod:`moodump.demo.sample.sql`); literal text always
goes through :func:`~moodump.demo.sample.sql.lit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from moodump.demo.sample import vocab as V
from moodump.demo.sample.sql import (
    T_END,
    YEAR,
    between,
    cat,
    chance,
    h,
    hex_id,
    ipv4,
    lit,
    nullable,
    pick,
    pick_field,
    pick_sql,
    random_bytes,
    timestamp,
    words,
)

# Rows at scale 1 of the tables that shape the dump (perf-baseline.md, "Dataset").
LOGSTORE_ROWS = 5_000_000
STEP_DATA_ROWS = 2_000_000
GRADE_ROWS = 1_000_000
FILE_ROWS = 500_000
USER_ROWS = 300_000
SESSION_ROWS = 50_000
BACKUP_ROWS = 6_000
COURSE_ROWS = 2_000
ENROLMENT_ROWS = 400_000
ROLE_ASSIGNMENT_ROWS = 400_000
FORUM_POST_ROWS = 100_000
# Site settings do not grow with the site: these two are the same at every scale.
CONFIG_ROWS = 600
CONFIG_PLUGIN_ROWS = 4_000
MOODLE_VERSION = "2023112400.00"
MOODLE_RELEASE = "4.4dev (Build: 20231124)"


@dataclass(frozen=True)
class Site:
    """Row counts of one generated site (each at least 1).

    Context ids are laid out in blocks: 1 is the system context, then one context per
    course category, per course, per course module and per user, in that order.
    """

    scale: float
    users: int
    courses: int
    categories: int
    course_modules: int
    grade_items: int
    question_steps: int
    question_attempts: int
    enrols: int

    @property
    def ctx_category0(self) -> int:
        return 2

    @property
    def ctx_course0(self) -> int:
        return self.ctx_category0 + self.categories

    @property
    def ctx_module0(self) -> int:
        return self.ctx_course0 + self.courses

    @property
    def ctx_user0(self) -> int:
        return self.ctx_module0 + self.course_modules

    @property
    def contexts(self) -> int:
        return self.ctx_user0 + self.users - 1


def scaled(rows_at_1: int, scale: float, minimum: int = 1) -> int:
    """Rows of a table at ``scale`` (rounded, never below ``minimum``)."""
    return max(minimum, round(rows_at_1 * scale))


def site_at(scale: float) -> Site:
    users = scaled(USER_ROWS, scale, 30)
    courses = scaled(COURSE_ROWS, scale, 3)
    steps = math.ceil(scaled(STEP_DATA_ROWS, scale) / 4)  # four data rows per step
    return Site(
        scale=scale,
        users=users,
        courses=courses,
        categories=max(2, courses // 20),
        course_modules=courses * 15,
        grade_items=max(10, scaled(GRADE_ROWS, scale) // 25),
        question_steps=steps,
        question_attempts=math.ceil(steps / 3),
        enrols=courses * 3,
    )


@dataclass
class Fill:
    """How to fill one table.

    ``columns`` maps column names to SQL expressions over ``seq``; columns not named get
    the generic rules. Rows ``first..last`` of the sequence are inserted (``id = seq``),
    after the literal ``head`` statements, which insert ``head_rows`` rows.
    """

    rows: int
    columns: dict[str, str] = field(default_factory=dict)
    first: int = 1
    head: list[str] = field(default_factory=list)
    head_rows: int = 0

    @property
    def last(self) -> int:
        return self.first + self.rows - 1

    @property
    def total(self) -> int:
        return self.head_rows + self.rows


def _user(site: Site, salt: str = "u") -> str:
    return between(1, site.users, salt)


def _decimal(expr: str, length: int, decimals: int) -> str:
    return f"CAST({expr} AS DECIMAL({length},{decimals}))"


def _fraction(salt: str, length: int, decimals: int, top: int = 1) -> str:
    """A DECIMAL(length, decimals) in [0, top]."""
    steps = top * 10**decimals
    return _decimal(f"({h(salt)} MOD {steps + 1})/{10**decimals}", length, decimals)


def _rich_text(salt: str, sentences: int) -> str:
    """An HTML paragraph of multilingual sentences; some end in CR/LF, LF or a tab."""
    parts = []
    for i in range(sentences):
        n = 5 + (i * 3) % 7
        parts.append(cat(words(V.WORDS, n, f"{salt}.{i}"), pick(V.SENTENCE_ENDS, f"{salt}.e{i}")))
    return cat(lit("<p>"), *_joined(parts, lit(" ")), lit("</p>"))


def _joined(parts: list[str], sep: str) -> list[str]:
    out: list[str] = []
    for i, p in enumerate(parts):
        if i:
            out.append(sep)
        out.append(p)
    return out


def logstore(site: Site) -> Fill:
    n = scaled(LOGSTORE_ROWS, site.scale)

    def event(i: int) -> str:  # one event per row: its fields all use the salt "ev"
        return pick_field(V.EVENTS, i, "ev")

    other = pick_sql(
        [
            lit("null"),
            lit("N;"),
            cat(
                lit('{"modulename":"'),
                pick(V.MODULES, "om"),
                lit('","instanceid":'),
                between(1, 99999, "oi"),
                lit("}"),
            ),
            cat(
                lit('{"attemptid":"'),
                "seq",
                lit('","quizid":"'),
                between(1, 9999, "oq"),
                lit('","studentid":"'),
                _user(site, "os"),
                lit('"}'),
            ),
            # JSON as PHP's json_encode writes it: escaped slashes, \uXXXX from JSON_QUOTE.
            cat(
                lit('{"name":'),
                f"JSON_QUOTE({words(V.WORDS, 3, 'on')})",
                lit(',"path":"\\/pluginfile.php\\/'),
                between(1, 9999, "op"),
                lit('\\/x.pdf","content":null}'),
            ),
            # Older rows hold PHP-serialised arrays.
            cat(
                lit('a:2:{s:8:"courseid";i:'),
                between(1, site.courses, "oc"),
                lit(';s:6:"reason";s:4:"b\'z\\";}'),
            ),
        ],
        "other",
    )
    return Fill(
        rows=n,
        columns={
            "eventname": event(0),
            "component": event(1),
            "action": event(2),
            "target": event(3),
            "objecttable": f"NULLIF({event(4)},'')",
            "objectid": f"IF({event(4)}='',NULL,{between(1, 999999, 'oid')})",
            "crud": event(5),
            "edulevel": event(6),
            "contextid": between(1, site.contexts, "lctx"),
            "contextlevel": event(7),
            "contextinstanceid": between(1, site.courses, "lci"),
            "userid": _user(site),
            "courseid": f"IF({h('lc')} MOD 10=0,1,{between(1, site.courses, 'lc2')})",
            "relateduserid": nullable(_user(site, "ru"), 80, "run"),
            "anonymous": f"IF({h('an')} MOD 500=0,1,0)",
            "other": other,
            # Log rows are written in time order over the last year.
            "timecreated": f"({T_END - YEAR}+seq*{YEAR // n}+{h('lt')} MOD 3)",
            "origin": pick(["web", "web", "web", "web", "cli", "ws", "restore"], "lo"),
            "ip": f"IF({chance(3, 'ip6')},CONCAT('2001:db8::',HEX(seq)),{ipv4('lip')})",
            "realuserid": nullable("2", 99, "rl"),
        },
    )


def step_data(site: Site) -> Fill:
    n = scaled(STEP_DATA_ROWS, site.scale)
    answer = pick_sql(
        [
            words(V.WORDS, 6, "qa"),
            cat(words(V.WORDS, 4, "qb"), lit("\r\n"), words(V.WORDS, 5, "qc")),
            f"{between(0, 9999, 'qn')}/100",
            lit("1"),
            lit("0"),
            cat(lit("<p>"), words(V.WORDS, 3, "qd"), lit("</p>")),
            lit(""),
        ],
        "qv",
    )
    # A few answers carry a NUL byte, as pasted text can.
    nul = cat(lit("x"), "CHAR(0 USING utf8mb4)", lit("y "), words(V.WORDS, 2, "qz"))
    answer = f"IF({chance(1, 'qnul')},{nul},{answer})"
    order = f"CONCAT_WS(',',{','.join(between(1, 99999, f'o{i}') for i in range(4))})"
    # Four rows per step: its question order, the answer, a flag and a mark.
    value = (
        f"CASE (seq-1) MOD 4 WHEN 0 THEN {order} WHEN 1 THEN {answer} "
        f"WHEN 2 THEN IF({chance(10, 'qnull')},NULL,'1') ELSE {between(0, 100, 'qm')} END"
    )
    name = (
        "CASE (seq-1) MOD 4 WHEN 0 THEN '_order' "
        f"WHEN 1 THEN {pick(['answer', 'sub0', 'choice0', '_separators'], 'qnm')} "
        f"WHEN 2 THEN {pick(['-submit', '-finish', '-tryagain'], 'qnx')} "
        f"ELSE {pick(['-mark', '-maxmark', '_variant', '-comment'], 'qny')} END"
    )
    return Fill(rows=n, columns={"attemptstepid": "1+(seq-1) DIV 4", "name": name, "value": value})


def grade_grades(site: Site) -> Fill:
    gi = site.grade_items
    n = min(scaled(GRADE_ROWS, site.scale), gi * site.users)
    return Fill(
        rows=n,
        columns={
            # (userid, itemid) is unique: item = seq mod items, user = seq div items.
            "itemid": f"1+(seq-1) MOD {gi}",
            "userid": f"1+((seq-1) DIV {gi}) MOD {site.users}",
            "rawgrade": nullable(_fraction("gr", 10, 5, 100), 40, "grn"),
            "rawgrademax": "100.00000",
            "rawgrademin": "0.00000",
            "rawscaleid": nullable(between(1, 20, "gs"), 90, "gsn"),
            "usermodified": nullable(_user(site, "gum"), 30, "gumn"),
            "finalgrade": nullable(_fraction("gf", 10, 5, 100), 30, "gfn"),
            "hidden": "0",
            "locked": f"IF({chance(2, 'gl')},{timestamp('glt')},0)",
            "locktime": "0",
            "exported": "0",
            "overridden": f"IF({chance(5, 'go')},{timestamp('got')},0)",
            "excluded": "0",
            "feedback": nullable(_rich_text("gfb", 1), 85, "gfbn"),
            "feedbackformat": "1",
            "information": nullable(words(V.WORDS, 4, "gin"), 97, "ginn"),
            "informationformat": "0",
            "timecreated": nullable(timestamp("gtc"), 20, "gtcn"),
            "timemodified": nullable(timestamp("gtm"), 10, "gtmn"),
            "aggregationstatus": pick(["used", "used", "unknown", "novalue", "dropped"], "gas"),
            "aggregationweight": nullable(_fraction("gaw", 10, 5), 50, "gawn"),
        },
    )


def files(site: Site) -> Fill:
    n = scaled(FILE_ROWS, site.scale)
    is_dir = f"({h('fdir')} MOD 3=0)"  # Moodle keeps a "." row per directory
    comp = pick_field(V.FILE_COMPONENTS, 0, "fc")
    area = pick_field(V.FILE_COMPONENTS, 1, "fc")
    ext = pick_field(V.FILE_EXTS, 0, "fe")
    mime = pick_field(V.FILE_EXTS, 1, "fe")
    filename = (
        f"IF({is_dir},'.',{cat(pick(V.FILE_NAMES, 'fn'), lit(' '), 'seq MOD 97', lit('.'), ext)})"
    )
    filepath = pick(["/", "/", "/", "/sub dir/", "/Übungen/week 1/"], "fp")
    contextid = between(1, site.contexts, "fctx")
    itemid = between(0, 999999, "fit")
    empty_sha1 = lit("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    # About half the files share their content with another file, as on a real site.
    content = f"SHA1(CONCAT('content',{h('fh')} MOD {max(1, n // 2)}))"
    path = cat(lit("/"), contextid, lit("/"), comp, lit("/"), area, lit("/"), itemid, filepath)
    author = cat(pick(V.FIRST_NAMES, "fa1"), lit(" "), pick(V.LAST_NAMES, "fa2"))
    size = between(1, 52428800, "fs")
    big = between(4294967296, 9999999999, "fsb")  # BIGINT sizes: a few files exceed 4 GiB
    return Fill(
        rows=n,
        columns={
            "contenthash": f"IF({is_dir},{empty_sha1},{content})",
            "pathnamehash": f"SHA1({cat(path, filename, lit('#'), 'seq')})",
            "contextid": contextid,
            "component": comp,
            "filearea": area,
            "itemid": itemid,
            "filepath": filepath,
            "filename": filename,
            "userid": nullable(_user(site, "fu"), 5, "fun"),
            "filesize": f"IF({is_dir},0,IF({chance(1, 'fbig')},{big},{size}))",
            "mimetype": f"IF({is_dir},NULL,{mime})",
            "status": "0",
            "source": f"IF({is_dir},NULL,{nullable(filename, 40, 'fsrc')})",
            "author": f"IF({is_dir},NULL,{author})",
            "license": f"IF({is_dir},NULL,{pick(V.LICENSES, 'fl')})",
            "timecreated": timestamp("ftc"),
            "timemodified": timestamp("ftm"),
            "sortorder": "0",
            "referencefileid": "NULL",
        },
    )


def users(site: Site, prefix: str) -> Fill:
    """Guest (id 1) and admin (id 2) as Moodle creates them, then ``users - 2`` people."""
    b64 = "TO_BASE64(UNHEX(SHA2(CONCAT('pw',seq),256)))"
    password = cat(lit("$2y$10$"), f"LEFT(REPLACE({b64},'+','.'),53)")
    first = pick(V.ASCII_FIRST, "ua1")
    last = pick(V.ASCII_LAST, "ua2")
    cols = (
        "id,auth,confirmed,mnethostid,username,password,firstname,lastname,email,lang,"
        "timezone,description,timecreated,timemodified,lastaccess"
    )
    guest = [
        "1", lit("manual"), "1", "1", lit("guest"),
        lit("$2y$10$AbCdEfGhIjKlMnOpQrStUuGuestPasswordHashNotUsable012345"),
        lit("Guest user"), lit(" "), lit("root@localhost"), lit("en"), lit("99"),
        lit("This user is a special user that allows read-only access to some courses."),
        "0", str(T_END - 3 * YEAR), "0",
    ]  # fmt: skip
    admin = [
        "2", lit("manual"), "1", "1", lit("admin"),
        lit("$2y$10$QvMcKzLn4y7Ew9gT1rUo3eHqZk5dJ8sP2aXbN6fV0cYiW4lRtMhSuK"),
        lit("Admin"), lit("User"), lit("admin@example.edu"), lit("en"), lit("99"), "NULL",
        "0", str(T_END - 3 * YEAR), str(T_END - 3600),
    ]  # fmt: skip
    head = f"INSERT INTO `{prefix}user` ({cols}) VALUES ({','.join(guest)}),({','.join(admin)})"
    extra = cat(lit("\r\n<p>"), words(V.WORDS, 12, "ud3"), lit("\t🎓</p>"))
    description = cat(_rich_text("ud", 2), f"IF({chance(20, 'udx')},{extra},'')")
    phone = cat(lit("+41 "), between(100000000, 999999999, "upn"))
    address = cat(between(1, 200, "uan"), lit(" "), pick(V.CITIES, "uac"), lit(" Straße"))
    return Fill(
        rows=site.users - 2,
        first=3,
        head=[head],
        head_rows=2,
        columns={
            "auth": pick(["manual"] * 3 + ["email", "ldap", "oauth2", "nologin"], "uau"),
            "confirmed": f"IF({chance(2, 'uc')},0,1)",
            "policyagreed": f"IF({chance(30, 'upa')},1,0)",
            "deleted": f"IF({chance(3, 'udel')},1,0)",
            "suspended": f"IF({chance(4, 'usu')},1,0)",
            "mnethostid": "1",
            "username": cat(first, lit("."), last, "seq"),
            "password": password,
            "idnumber": f"IF({chance(40, 'uid')},'',CONCAT('S',LPAD(seq,8,'0')))",
            "firstname": pick(V.FIRST_NAMES, "ufn"),
            "lastname": pick(V.LAST_NAMES, "uln"),
            "email": cat(first, lit("."), last, "seq", lit("@"), pick(V.DOMAINS, "udom")),
            "emailstop": "0",
            "phone1": f"IF({chance(60, 'up1')},'',{phone})",
            "phone2": "''",
            "institution": pick(V.INSTITUTIONS, "uin"),
            "department": pick(V.DEPARTMENTS, "udp"),
            "address": f"IF({chance(70, 'uad')},'',{address})",
            "city": pick(V.CITIES, "uci"),
            "country": pick(V.COUNTRIES, "uco"),
            "lang": pick(V.LANGS, "ula"),
            "calendartype": lit("gregorian"),
            "theme": "''",
            "timezone": pick(V.TIMEZONES, "utz"),
            "firstaccess": timestamp("ufa"),
            "lastaccess": timestamp("ula2", 1.0),
            "lastlogin": timestamp("ull", 1.0),
            "currentlogin": timestamp("ucl", 1.0),
            "lastip": ipv4("uip"),
            "secret": hex_id("usec", 15),
            "picture": f"IF({chance(25, 'upic')},{between(1, 999999, 'upid')},0)",
            "description": nullable(description, 30, "udn"),
            "descriptionformat": "1",
            "mailformat": "1",
            "maildigest": between(0, 2, "umd"),
            "maildisplay": between(0, 2, "umdi"),
            "autosubscribe": "1",
            "trackforums": between(0, 1, "utf"),
            "timecreated": timestamp("utc", 3.0),
            "timemodified": timestamp("utm", 1.0),
            "trustbitmask": "0",
            "imagealt": nullable(words(V.WORDS, 2, "uia"), 90, "uian"),
            "lastnamephonetic": nullable(pick(V.ASCII_LAST, "ulp"), 85, "ulpn"),
            "firstnamephonetic": nullable(pick(V.ASCII_FIRST, "ufp"), 85, "ufpn"),
            "middlename": nullable(pick(V.FIRST_NAMES, "umn"), 80, "umnn"),
            "alternatename": nullable(pick(V.FIRST_NAMES, "ualt"), 90, "ualtn"),
            "moodlenetprofile": nullable(cat(lit("@user"), "seq", lit("@moodle.net")), 97, "umnp"),
        },
    )


def sessions(site: Site) -> Fill:
    """PHP session data, base64-encoded as Moodle's database session handler stores it."""
    n = scaled(SESSION_ROWS, site.scale)
    access = cat(lit('s:2:"ra";a:1:{s:2:"/1";a:1:{i:7;i:7;}}'), "seq MOD 7")
    raw = cat(
        lit('USER|O:8:"stdClass":5:{s:2:"id";i:'),
        "seq",
        lit(';s:8:"username";s:'),
        between(5, 20, "sl"),
        lit(':"'),
        pick(V.ASCII_FIRST, "sun"),
        lit('";s:9:"firstname";s:5:"'),
        pick(V.FIRST_NAMES, "sfn"),
        lit('";s:7:"preference";a:0:{}s:6:"access";a:3:{'),
        f"REPEAT({access},11)",
        lit('}}SESSION|O:8:"stdClass":3:{s:7:"sesskey";s:10:"'),
        hex_id("ssk", 10),
        lit('";s:4:"lang";s:2:"en";s:5:"cache";s:256:"'),
        random_bytes("sr", 4),
        lit('";}'),
    )
    return Fill(
        rows=n,
        columns={
            "state": "0",
            "sid": hex_id("sid", 32),
            "userid": f"IF({chance(10, 'sg')},0,{_user(site)})",
            "sessdata": f"REPLACE(TO_BASE64({raw}),'\\n','')",
            "timecreated": f"({T_END}-{h('stc')} MOD 28800)",
            "timemodified": f"({T_END}-{h('stm')} MOD 7200)",
            "firstip": ipv4("sfi"),
            "lastip": ipv4("sli"),
        },
    )


def backup_controllers(site: Site, blobs: bool) -> Fill:
    """Serialised controllers of 2-33 KB, about 70 % incompressible.

    Moodle stores ``base64_encode(serialize($controller))`` in a LONGTEXT; with ``blobs``
    the raw bytes (NUL, quote, backslash, CR, LF, tab and all others) go into a LONGBLOB.
    """
    n = scaled(BACKUP_ROWS, site.scale)
    size = f"(2048+{h('bsz')} MOD 31745)"
    header = cat(
        lit('O:17:"backup_controller":2:{s:11:"\0*\0backupid";s:32:"'),
        "MD5(CONCAT('bk',seq))",
        lit('";s:7:"\0*\0plan";O:11:"backup_plan":1:{s:5:"steps";a:0:{}}\'\\\n\r\t'),
    )
    # Enough SHA-512 blocks for the largest row, cut to 70 % of this row's size.
    randomness = f"LEFT({random_bytes('bc', math.ceil(33792 * 0.7 / 64))},CEIL({size}*0.7))"
    task = cat(lit('s:4:"task";O:'), "seq MOD 97", lit(':"backup_task";'))
    filler = f"REPEAT({task},CEIL({size}*0.3/30))"
    raw = cat(header, randomness, filler)
    controller = raw if blobs else f"REPLACE(TO_BASE64({raw}),'\\n','')"
    return Fill(
        rows=n,
        columns={
            "backupid": "MD5(CONCAT('bk',seq))",
            "operation": pick(["backup", "backup", "restore"], "bop"),
            "type": pick(["course", "course", "activity", "section"], "bty"),
            "itemid": between(1, 99999, "bit"),
            "format": lit("moodle2"),
            "interactive": between(0, 1, "bin"),
            "purpose": pick(["10", "20", "30", "40", "50", "60", "70"], "bpu"),
            "userid": _user(site),
            "status": pick(["1000", "700", "800", "900", "100"], "bst"),
            "execution": between(1, 2, "bex"),
            "executiontime": "0",
            "checksum": "MD5(CONCAT('ck',seq))",
            "timecreated": timestamp("btc", 1.0),
            "timemodified": timestamp("btm", 1.0),
            "progress": _fraction("bpr", 15, 14),
            "controller": controller,
        },
    )


def courses(site: Site, prefix: str) -> Fill:
    """The site course (id 1, format "site"), then ``courses - 1`` courses."""
    cols = (
        "id,category,sortorder,fullname,shortname,idnumber,summary,summaryformat,format,"
        "showgrades,newsitems,startdate,enddate,lang,calendartype,theme,timecreated,"
        "timemodified,cacherev"
    )
    site_course = [
        "1", "0", "1", lit("Example University Moodle 🎓"), lit("moodle"), "''",
        lit("<p>Welcome to <em>Moodle</em> — 'our' site.</p>"), "1", lit("site"), "1", "3",
        "0", "0", "''", "''", "''", str(T_END - 3 * YEAR), str(T_END - 3 * YEAR), str(T_END),
    ]  # fmt: skip
    head = f"INSERT INTO `{prefix}course` ({cols}) VALUES ({','.join(site_course)})"
    return Fill(
        rows=site.courses - 1,
        first=2,
        head=[head],
        head_rows=1,
        columns={
            "category": between(1, site.categories, "cca"),
            "sortorder": "10000+seq",
            "fullname": cat(pick(V.COURSE_TOPICS, "cft"), lit(" "), between(100, 499, "cfn")),
            "shortname": "CONCAT('C',seq,'-',LEFT(MD5(CONCAT('cs',seq)),4))",
            "idnumber": f"IF({chance(30, 'cid')},'',CONCAT('2023-',seq))",
            "summary": nullable(_rich_text("csu", 3), 10, "csun"),
            "summaryformat": "1",
            "format": pick(V.COURSE_FORMATS, "cfo"),
            "startdate": timestamp("csd", 2.0),
            "enddate": f"IF({chance(30, 'ced')},0,{T_END}+{h('ced2')} MOD {YEAR})",
            "lang": pick(["", "", "", "en", "de", "fr"], "cla"),
            "calendartype": "''",
            "theme": "''",
            "timecreated": timestamp("ctc", 3.0),
            "timemodified": timestamp("ctm", 1.0),
            "cacherev": timestamp("ccr", 0.5),
        },
    )


def config(prefix: str) -> Fill:
    """``version`` and ``release`` first, real core settings, then generated ones."""
    core = [("version", MOODLE_VERSION), ("release", MOODLE_RELEASE), *V.CONFIG]
    values = ",".join(f"({i},{lit(k)},{lit(v)})" for i, (k, v) in enumerate(core, start=1))
    name = cat(pick(V.SETTING_WORDS, "cw"), pick(V.SETTING_NOUNS, "cn"), lit("_"), "seq")
    return Fill(
        rows=CONFIG_ROWS - len(core),
        first=len(core) + 1,
        head=[f"INSERT INTO `{prefix}config` (id,name,value) VALUES {values}"],
        head_rows=len(core),
        columns={"name": name, "value": pick(V.SETTING_VALUES, "cv")},
    )


def config_plugins(prefix: str) -> Fill:
    """A ``version`` row per plugin, then generated settings."""
    versions = ",".join(
        f"({i},{lit(p)},'version',{lit(str(2023100900 + i))})"
        for i, p in enumerate(V.PLUGINS, start=1)
    )
    k = len(V.PLUGINS)
    return Fill(
        rows=CONFIG_PLUGIN_ROWS - k,
        first=k + 1,
        head=[f"INSERT INTO `{prefix}config_plugins` (id,plugin,name,value) VALUES {versions}"],
        head_rows=k,
        columns={
            "plugin": pick(V.PLUGINS, "cpp"),
            "name": cat(pick(V.SETTING_WORDS, "cpw"), pick(V.SETTING_NOUNS, "cpn"), "seq"),
            "value": pick(V.SETTING_VALUES, "cpv"),
        },
    )


def contexts(site: Site) -> Fill:
    """One context per system/category/course/module/user (see :class:`Site`)."""
    s = site
    blocks = (
        f"WHEN seq<{s.ctx_course0} THEN {{cat}} WHEN seq<{s.ctx_module0} THEN {{course}} "
        f"WHEN seq<{s.ctx_user0} THEN {{module}} ELSE {{user}} END"
    )
    level = "CASE WHEN seq=1 THEN 10 " + blocks.format(cat=40, course=50, module=70, user=30)
    instance = "CASE WHEN seq=1 THEN 0 " + blocks.format(
        cat=f"seq-{s.ctx_category0 - 1}",
        course=f"seq-{s.ctx_course0 - 1}",
        module=f"seq-{s.ctx_module0 - 1}",
        user=f"seq-{s.ctx_user0 - 1}",
    )
    category = f"{s.ctx_category0}+seq MOD {s.categories}"
    course = f"{s.ctx_course0}+seq MOD {s.courses}"
    parent = "CASE WHEN seq=1 THEN '' " + blocks.format(
        cat="''",
        course=cat(lit("/"), category),
        module=cat(lit("/"), category, lit("/"), course),
        user="''",
    )
    depth = "CASE WHEN seq=1 THEN 1 " + blocks.format(cat=2, course=3, module=4, user=2)
    return Fill(
        rows=s.contexts,
        columns={
            "contextlevel": level,
            "instanceid": instance,
            "path": f"IF(seq=1,'/1',{cat(lit('/1'), parent, lit('/'), 'seq')})",
            "depth": depth,
            "locked": "0",
        },
    )


def special_fills(site: Site, prefix: str, blobs: bool) -> dict[str, Fill]:
    """Hand-written fills, keyed by table name (without prefix)."""
    s = site
    discussions = scaled(FORUM_POST_ROWS // 5, s.scale)
    availability = cat(
        lit('{"op":"&","c":[{"type":"date","d":">=","t":'),
        timestamp("cmt"),
        lit('}],"showc":[true]}'),
    )
    states = ["todo", "complete", "gradedright", "gradedwrong", "gaveup", "needsgrading"]
    return {
        "logstore_standard_log": logstore(s),
        "question_attempt_step_data": step_data(s),
        "grade_grades": grade_grades(s),
        "files": files(s),
        "user": users(s, prefix),
        "sessions": sessions(s),
        "backup_controllers": backup_controllers(s, blobs),
        "course": courses(s, prefix),
        "config": config(prefix),
        "config_plugins": config_plugins(prefix),
        "context": contexts(s),
        "course_categories": Fill(
            rows=s.categories,
            columns={
                "name": cat(pick(V.DEPARTMENTS[:-1], "ccn"), lit(" "), "seq"),
                "parent": "0",
                "sortorder": "seq*10000",
                "coursecount": str(s.courses // s.categories),
                "depth": "1",
                "path": "CONCAT('/',seq)",
                "theme": "NULL",
            },
        ),
        "modules": Fill(
            rows=len(V.MODULES),
            columns={
                "name": f"ELT(seq,{','.join(lit(m) for m in V.MODULES)})",
                "search": "''",
                "visible": "IF(seq IN (4,20),0,1)",
            },
        ),
        "course_modules": Fill(
            rows=s.course_modules,
            columns={
                "course": f"1+(seq-1) DIV 15 MOD {s.courses}",
                "module": between(1, len(V.MODULES), "cmm"),
                "instance": "seq",
                "section": f"(1+(seq-1) DIV 15 MOD {s.courses})*8+seq MOD 8",
                "added": timestamp("cma"),
                "availability": nullable(availability, 80, "cman"),
            },
        ),
        "course_sections": Fill(
            rows=s.courses * 8,
            columns={
                "course": "1+(seq-1) DIV 8",
                "section": "(seq-1) MOD 8",
                "name": nullable(
                    cat(lit("Week "), "(seq-1) MOD 8", lit(" — "), pick(V.WORDS, "csn")),
                    50,
                    "csnn",
                ),
                "summary": nullable(_rich_text("css", 1), 60, "cssn"),
            },
        ),
        "grade_items": Fill(
            rows=s.grade_items,
            columns={
                "courseid": between(1, s.courses, "gic"),
                "itemname": nullable(cat(pick(V.MODULES, "gim"), lit(" "), "seq"), 10, "gimn"),
                "itemtype": pick(["mod", "mod", "mod", "course", "category", "manual"], "git"),
                "itemmodule": nullable(pick(V.MODULES, "gimo"), 20, "gimon"),
                "grademax": "100.00000",
                "grademin": "0.00000",
                "gradepass": _fraction("gip", 10, 5, 60),
            },
        ),
        "question_attempt_steps": Fill(
            rows=s.question_steps,
            columns={
                "questionattemptid": "1+(seq-1) DIV 3",
                "sequencenumber": "(seq-1) MOD 3",
                "state": pick(states, "qst"),
                "fraction": nullable(_fraction("qsf", 12, 7), 40, "qsfn"),
                "timecreated": timestamp("qstc", 1.0),
                "userid": _user(s),
            },
        ),
        "question_attempts": Fill(
            rows=s.question_attempts,
            columns={
                "questionusageid": "1+(seq-1) DIV 10",
                "slot": "1+(seq-1) MOD 10",
                "behaviour": pick(["deferredfeedback", "interactive", "manualgraded"], "qab"),
                "questionsummary": nullable(words(V.WORDS, 10, "qaq"), 5, "qaqn"),
                "rightanswer": nullable(words(V.WORDS, 3, "qar"), 5, "qarn"),
                "responsesummary": nullable(words(V.WORDS, 5, "qas"), 30, "qasn"),
            },
        ),
        "enrol": Fill(
            rows=s.enrols,
            columns={
                "enrol": "ELT(1+(seq-1) MOD 3,'manual','guest','self')",
                "courseid": f"1+(seq-1) DIV 3 MOD {s.courses}",
                "roleid": "5",
            },
        ),
        "user_enrolments": Fill(
            # (enrolid, userid) is unique: enrol = seq mod enrols, user = seq div enrols.
            rows=min(scaled(ENROLMENT_ROWS, s.scale), s.enrols * s.users),
            columns={
                "enrolid": f"1+(seq-1) MOD {s.enrols}",
                "userid": f"1+((seq-1) DIV {s.enrols}) MOD {s.users}",
                "timestart": timestamp("uets", 2.0),
                "timeend": f"IF({chance(80, 'uete')},0,{T_END}+{h('uete2')} MOD {YEAR})",
                "modifierid": "2",
                "timecreated": timestamp("uetc", 2.0),
                "timemodified": timestamp("uetm", 1.0),
            },
        ),
        "role_assignments": Fill(
            rows=scaled(ROLE_ASSIGNMENT_ROWS, s.scale),
            columns={
                "roleid": pick(["5"] * 6 + ["3", "4", "1"], "rar"),
                "contextid": between(s.ctx_course0, s.ctx_module0 - 1, "rac"),
                "userid": _user(s),
                "component": "''",
                "itemid": "0",
            },
        ),
        "forum_discussions": Fill(
            rows=discussions,
            columns={
                "course": between(1, s.courses, "fdc"),
                "name": cat(words(V.WORDS, 4, "fdn"), lit("?")),
                "firstpost": "seq*5-4",
                "userid": _user(s),
            },
        ),
        "forum_posts": Fill(
            rows=scaled(FORUM_POST_ROWS, s.scale),
            columns={
                "discussion": f"1+(seq-1) DIV 5 MOD {discussions}",
                "parent": "IF((seq-1) MOD 5=0,0,seq-1)",
                "userid": _user(s),
                "created": timestamp("fpc", 2.0),
                "modified": timestamp("fpm", 1.0),
                "subject": cat(lit("Re: "), words(V.WORDS, 4, "fps")),
                "message": _rich_text("fpmsg", 4),
                "messageformat": "1",
                "attachment": "''",
            },
        ),
    }
