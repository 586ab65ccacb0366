"""The sample site's size at a scale, and the :class:`Fill` a table's rows come from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from moodump.demo.sample import vocab as V
from moodump.demo.sample.sql import (
    between,
    cat,
    h,
    lit,
    pick,
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
