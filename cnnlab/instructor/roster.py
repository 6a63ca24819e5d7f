"""``cnnlab roster import FILE``: the class list, stored in the gradebook as nbgrader students.

Reads the CSV an LMS exports (column names are matched loosely, in any order):

* Canvas gradebook export: ``Student`` ("Last, First"), ``ID`` (Canvas user id, kept as the
  student's ``lms_user_id``), ``SIS User ID``, ``SIS Login ID``, ``Section``; the ``Points
  Possible`` row and Canvas's "Student, Test" are skipped. Student id: the SIS login, else the
  SIS user id, else ``canvas<ID>``.
* Moodle participants or grades export: ``First name``, ``Last name``, ``Username`` or ``ID
  number``, ``Email address``. Student id: the user name, else the part of the email before @.
* a plain list: ``id``, ``name``, ``email``, ``section``.

Names, emails and LMS ids go into nbgrader's ``Student`` rows (``nbgrader formgrader`` shows
them); the list of enrolled ids and their sections (nbgrader has no field for a section) into
``grading/cnnlab/roster.json``. Collect and the report compare submissions with that list.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .course import Course, read_json, write_json
from .lms.base import STUDENT_RE, fold, slugify


@dataclass
class RosterStudent:
    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    lms_user_id: str | None = None
    section: str | None = None

    @property
    def full_name(self) -> str:
        return " ".join(x for x in (self.first_name, self.last_name) if x) or self.id

    @property
    def sortable_name(self) -> str:
        """``Last, First`` as Canvas shows students (the id when no name is known)."""
        if self.last_name and self.first_name:
            return f"{self.last_name}, {self.first_name}"
        return self.last_name or self.first_name or self.id


@dataclass
class Roster:
    """The gradebook's students, and which of them the imported class list enrols
    (``enrolled`` is None when no list was imported: nobody is then missing or unknown)."""

    students: dict[str, RosterStudent] = field(default_factory=dict)
    enrolled: set[str] | None = None

    @classmethod
    def load(cls, course: Course) -> Roster:
        from nbgrader.api import Gradebook

        state = read_json(_path(course), None)
        sections = (state or {}).get("sections", {})
        out = {}
        if course.has_gradebook:
            with Gradebook(course.db_url, course.course_id) as gb:
                for s in gb.students:
                    out[s.id] = RosterStudent(s.id, s.first_name, s.last_name, s.email,
                                              s.lms_user_id, sections.get(s.id))
        return cls(out, set(state["students"]) if state else None)

    def by_lms_id(self, lms_id: str) -> str | None:
        for s in self.students.values():
            if s.lms_user_id == lms_id:
                return s.id
        return None

    def by_name(self, name: str) -> str | None:
        """The one student whose full name matches (accents and case ignored), else None."""
        hits = [s.id for s in self.students.values()
                if fold(name) in (fold(s.full_name), fold(s.sortable_name))]
        return hits[0] if len(hits) == 1 else None

    def by_email_user(self, user: str) -> str | None:
        hits = [s.id for s in self.students.values()
                if s.email and s.email.split("@")[0].lower() == user.lower()]
        return hits[0] if len(hits) == 1 else None

    def missing(self, submitted: set[str]) -> list[str]:
        return sorted(self.enrolled - submitted) if self.enrolled is not None else []

    def unknown(self, submitted: set[str]) -> list[str]:
        return sorted(submitted - self.enrolled) if self.enrolled is not None else []


def _path(course: Course) -> Path:
    d = course.grading / "cnnlab"
    d.mkdir(parents=True, exist_ok=True)
    return d / "roster.json"


def _col(row: dict, *names: str) -> str:
    keys = {k.strip().lower(): k for k in row if k}
    for n in names:
        k = keys.get(n.lower())
        if k is not None and (row[k] or "").strip():
            return row[k].strip()
    return ""


def _split_name(name: str) -> tuple[str | None, str | None]:
    if "," in name:
        last, first = (x.strip() for x in name.split(",", 1))
        return first or None, last or None
    bits = name.split()
    return (" ".join(bits[:-1]) or None, bits[-1]) if len(bits) > 1 else (None, name or None)


def parse_roster(text: str) -> tuple[str, list[RosterStudent]]:
    """(format, students) from the text of a class list CSV."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise ValueError("the class list is empty (expected a header row and one row per student)")
    header = {h.strip().lower() for h in rows[0] if h}
    if {"sis login id", "sis user id"} & header and "student" in header:
        fmt = "canvas"
    elif "email address" in header or ("first name" in header and "last name" in header):
        fmt = "moodle"
    elif "id" in header or "username" in header:
        fmt = "plain"
    else:
        raise ValueError(f"cannot read the class list: columns {sorted(header)}; expected a "
                         "Canvas export (Student, ID, SIS Login ID, ...), a Moodle export (First "
                         "name, Last name, Email address, ...) or id, name, email, section")
    out: list[RosterStudent] = []
    for i, row in enumerate(rows, 2):
        first = (_col(row, "student", "name", "first name") or "").strip()
        if first.lower() in ("points possible", "student, test") or not any(
                (v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        if fmt == "canvas":
            canvas_id = _col(row, "id")
            sid = _col(row, "sis login id", "sis user id") or (f"canvas{canvas_id}"
                                                                  if canvas_id else "")
            fn, ln = _split_name(_col(row, "student"))
            email = _col(row, "email", "email address") or None
            lms = canvas_id or None
        elif fmt == "moodle":
            email = _col(row, "email address", "email") or None
            sid = _col(row, "username", "id number") or (email.split("@")[0] if email else "")
            fn, ln = _col(row, "first name") or None, _col(row, "last name") or None
            lms = None
        else:
            email = _col(row, "email", "email address") or None
            sid = _col(row, "id", "username", "login")
            fn, ln = _split_name(_col(row, "name"))
            lms = _col(row, "lms id", "lms_user_id") or None
        if not sid and (fn or ln):
            sid = slugify(f"{fn or ''}{ln or ''}")
        if not STUDENT_RE.match(sid or ""):
            raise ValueError(f"class list row {i}: student id {sid!r} is not usable (letters, "
                             "digits, '.', '_', '-'; starting with a letter or digit)")
        out.append(RosterStudent(sid, fn, ln, email, lms, _col(row, "section") or None))
    ids = [s.id for s in out]
    dupes = sorted({x for x in ids if ids.count(x) > 1})
    if dupes:
        raise ValueError(f"the class list names these student ids twice: {dupes}")
    return fmt, out


def import_roster(course: Course, path: str | Path, log=print) -> list[RosterStudent]:
    """Store the class list at ``path`` as the course's students; return them."""
    from nbgrader.api import Gradebook

    path = Path(path)
    fmt, students = parse_roster(path.read_text(encoding="utf-8-sig"))
    course.ensure_grading_dir()
    with Gradebook(course.db_url, course.course_id) as gb:
        for s in students:
            kw = {k: v for k, v in (("first_name", s.first_name), ("last_name", s.last_name),
                                    ("email", s.email), ("lms_user_id", s.lms_user_id)) if v}
            gb.update_or_create_student(s.id, **kw)
    write_json(_path(course), {"file": path.name, "format": fmt,
                               "imported": datetime.now(UTC).isoformat(timespec="seconds"),
                               "students": [s.id for s in students],
                               "sections": {s.id: s.section for s in students if s.section}})
    log(f"roster: {len(students)} students from {path.name} ({fmt} layout) stored in the gradebook")
    return students
