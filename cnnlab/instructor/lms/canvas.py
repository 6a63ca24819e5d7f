"""Canvas: the names of "Download Submissions" and the gradebook CSV that Grades > Import takes.

Download names: ``<name>_<user id>_<submission id>_<file>`` with ``<name>_LATE_...`` (any case) for
a late submission, e.g. ``smithjane_LATE_12345_67890_02_convolution-2.ipynb``. ``<name>`` is
Canvas's "lastfirst" slug, so two students can share it: the numeric user id is the key. When a
student uploads a file whose name their Canvas files already hold, Canvas appends ``-1``, ``-2``,
...: the largest number is the latest attempt.

Gradebook CSV (the layout Canvas itself exports and re-imports, Instructure's
``GradebookImporter``): a header ``Student, ID, SIS User ID, SIS Login ID, Section``, one column
per assignment, then a row whose first cell is ``Points Possible``, then one row per student.
Canvas finds the student by ``ID`` (its user id), else ``SIS User ID``, else ``SIS Login ID``; an
assignment column whose name Canvas does not know yet becomes a new assignment with that many
points.
"""

from __future__ import annotations

import re

from .base import Attribution, slugify

NAME = "canvas"
DOWNLOAD_RE = re.compile(
    r"^(?P<slug>[^_/]+?)(?P<late>_late)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$", re.IGNORECASE)
RESUBMIT_RE = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)$")
ID_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_ROW = "    Points Possible"


def parse(parts: list[str]) -> Attribution | None:
    """The attribution of a file at ``parts`` (path components), or None if not a Canvas name."""
    if len(parts) != 1:
        return None
    m = DOWNLOAD_RE.match(parts[0])
    if not m:
        return None
    stem = m["file"].rsplit(".", 1)[0] if "." in m["file"] else m["file"]
    n, whole = 0, stem
    r = RESUBMIT_RE.match(stem)
    if r:
        stem, n = r["stem"], int(r["n"])
    return Attribution(
        lms=NAME, key=m["uid"], slug=slugify(m["slug"]) or f"user{m['uid']}",
        display_name=m["slug"], file_stem=stem, attempt=(n,),
        attempt_label=f"resubmission -{n}" if n else "first upload", late=bool(m["late"]),
        whole_stem=whole)


def gradebook_rows(students, assignments, scores) -> list[list[str]]:
    """Rows of a Canvas gradebook import file.

    Args:
        students: ``RosterStudent`` records (id, names, ``lms_user_id`` = Canvas user id, section).
        assignments: ``[(column name, points possible)]``.
        scores: ``{(student id, column name): score or None}`` (None: left blank, Canvas keeps
            what it has).
    """
    header = ID_COLUMNS + [a for a, _ in assignments]
    rows = [header, [POINTS_ROW, "", "", "", ""] + [f"{p:g}" for _, p in assignments]]
    for s in students:
        canvas_id = s.lms_user_id or ""
        rows.append([s.sortable_name, canvas_id, "", "" if canvas_id else s.id, s.section or ""]
                    + ["" if scores.get((s.id, a)) is None else f"{scores[s.id, a]:g}"
                       for a, _ in assignments])
    return rows
