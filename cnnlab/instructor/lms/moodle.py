"""Moodle: the names of an assignment's "Download all submissions" and the grade import CSV.

Download names, one zip entry per file: ``<full name>_<participant>_assignsubmission_file_<file>``
(flat), or with "Download submissions in folders" one folder per student, ``<full
name>_<participant>_assignsubmission_file_/<file>``. ``<participant>`` is the assignment's
participant number (not the user id: it differs between assignments), ``<full name>`` keeps accents
and spaces. Moodle keeps only the latest attempt in the download and no submission time.

Grade import (Grades > Import > CSV file): a header row, one row per student; the instructor maps
one column to the user ("Email address" or "Username") and each other column to a grade item.
"""

from __future__ import annotations

import re

from .base import Attribution, slugify

NAME = "moodle"
FLAT_RE = re.compile(
    r"^(?P<name>.+?)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.+)$")
FOLDER_RE = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_$")
ID_COLUMNS = ["Username", "Email address", "First name", "Last name"]


def parse(parts: list[str]) -> Attribution | None:
    if len(parts) == 1:
        m = FLAT_RE.match(parts[0])
        file = m["file"] if m else None
    elif len(parts) >= 2:
        m = FOLDER_RE.match(parts[0])
        file = parts[-1] if m else None
    else:
        m = None
    if not m:
        return None
    stem = file.rsplit(".", 1)[0] if "." in file else file
    return Attribution(lms=NAME, key=m["pid"], slug=slugify(m["name"]) or f"participant{m['pid']}",
                       display_name=m["name"], file_stem=stem, attempt_label="latest attempt")


def grade_rows(students, assignments, scores) -> list[list[str]]:
    """Rows of a Moodle grade import CSV: ``Username, Email address, First name, Last name``, then
    one column per assignment (``scores`` as for Canvas; None is left blank)."""
    rows = [ID_COLUMNS + [a for a, _ in assignments]]
    for s in students:
        rows.append([s.id, s.email or "", s.first_name or "", s.last_name or ""]
                    + ["" if scores.get((s.id, a)) is None else f"{scores[s.id, a]:g}"
                       for a, _ in assignments])
    return rows
