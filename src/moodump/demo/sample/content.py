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

from moodump.demo.sample import vocab as V
from moodump.demo.sample.activity import files, grade_grades, logstore, step_data
from moodump.demo.sample.site import (
    BACKUP_ROWS,
    CONFIG_PLUGIN_ROWS,
    CONFIG_ROWS,
    ENROLMENT_ROWS,
    FORUM_POST_ROWS,
    MOODLE_RELEASE,
    MOODLE_VERSION,
    ROLE_ASSIGNMENT_ROWS,
    SESSION_ROWS,
    Fill,
    Site,
    _fraction,
    _rich_text,
    _user,
    scaled,
)
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
    random_bytes,
    timestamp,
    words,
)


# Rows at scale 1 of the tables that shape the dump (perf-baseline.md, "Dataset").
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
