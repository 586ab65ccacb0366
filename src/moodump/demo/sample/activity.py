"""Fills of the big activity tables: the standard log, quiz step data, grades, files."""

from __future__ import annotations

from moodump.demo.sample import vocab as V
from moodump.demo.sample.site import (
    FILE_ROWS,
    GRADE_ROWS,
    LOGSTORE_ROWS,
    STEP_DATA_ROWS,
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
    ipv4,
    lit,
    nullable,
    pick,
    pick_field,
    pick_sql,
    timestamp,
    words,
)


# Rows at scale 1 of the tables that shape the dump (perf-baseline.md, "Dataset").
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
