"""``cnnlab export``: the gradebook as files, for the course (CSV) or for the LMS's grade import.

``--format csv`` (default): ``grading/grades.csv`` (or ``grades-<assignment>.csv``): student,
assignment, score (after the late penalty), max_score, needs_manual_grade, status (graded,
failed, unusable, missing), flags, raw_score, late_penalty, seconds_late, stale; and
``grading/cells.csv`` (or ``cells-<assignment>.csv``): student, assignment, notebook, cell (grade
id), score, max_score, failed.

``--format canvas``: ``grading/canvas-grades[-A].csv``, Canvas's gradebook import layout
(``lms/canvas.py``). ``--format moodle``: ``grading/moodle-grades[-A].csv``, Moodle's grade import
CSV (``lms/moodle.py``). One column per assignment, penalties applied; a missing submission and a
stale grade are left blank (the LMS keeps what it has), and the command says how many.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .course import Course, read_json

FORMATS = ("csv", "canvas", "moodle")
GRADE_FIELDS = ["student", "assignment", "score", "max_score", "needs_manual_grade", "status",
                "flags", "raw_score", "late_penalty", "seconds_late", "stale"]
CELL_FIELDS = ["student", "assignment", "notebook", "cell", "score", "max_score", "failed"]


def gradebook_rows(course: Course, assignments: list[str] | None = None):
    """(per-student rows, per-cell rows) read from the course gradebook; ``score`` is after the
    late penalty nbgrader stores, ``stale`` says the grade was made against an older version."""
    from nbgrader.api import MissingEntry

    from .versions import stale_students

    students_rows, cell_rows = [], []
    with course.gradebook() as gb:
        ids = assignments or [a.name for a in gb.assignments]
        for a in ids:
            try:
                gb.find_assignment(a)
            except MissingEntry:
                raise ValueError(f"assignment {a!r} is not in the gradebook (known: "
                                 f"{[x.name for x in gb.assignments]})") from None
            state = read_json(course.grading / "cnnlab" / a / "autograde.json", {})
            stale = set(stale_students(course, a)) if (course.source / a).is_dir() else set()
            for student in sorted(s.id for s in gb.students):
                info = state.get(student, {})
                try:
                    sub = gb.find_submission(a, student)
                except MissingEntry:
                    max_score = gb.find_assignment(a).max_score
                    students_rows.append({"student": student, "assignment": a, "score": 0.0,
                                          "max_score": max_score, "needs_manual_grade": False,
                                          "status": "missing", "flags": "", "raw_score": 0.0,
                                          "late_penalty": 0.0, "seconds_late": 0.0,
                                          "stale": False})
                    continue
                penalty = float(sub.late_submission_penalty or 0.0)
                students_rows.append({
                    "student": student, "assignment": a, "score": sub.score - penalty,
                    "max_score": sub.max_score, "needs_manual_grade": sub.needs_manual_grade,
                    "status": info.get("status", "graded"),
                    "flags": " | ".join(info.get("flags", [])), "raw_score": sub.score,
                    "late_penalty": penalty, "seconds_late": float(sub.total_seconds_late or 0),
                    "stale": student in stale})
                for nb in sub.notebooks:
                    for g in sorted(nb.grades, key=lambda g: g.name):
                        if g.cell.cell_type != "code":
                            continue
                        cell_rows.append({
                            "student": student, "assignment": a, "notebook": nb.name,
                            "cell": g.name, "score": g.score, "max_score": g.max_score,
                            "failed": g.score is not None and g.score < g.max_score})
    return students_rows, cell_rows


def _write(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def export(course: Course, assignment: str | None = None, out_dir: Path | None = None,
           log=print, fmt: str = "csv") -> tuple[Path, ...]:
    """Write the export files of ``fmt`` (one of ``FORMATS``); return their paths."""
    from . import audit

    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: cnnlab exports {', '.join(FORMATS)}")
    if assignment:
        course.check_assignment(assignment)
    rows, cells = gradebook_rows(course, [assignment] if assignment else None)
    out_dir = Path(out_dir or course.grading)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"-{assignment}" if assignment else ""
    if fmt == "csv":
        paths = (out_dir / f"grades{suffix}.csv", out_dir / f"cells{suffix}.csv")
        for path, data, fields in ((paths[0], rows, GRADE_FIELDS), (paths[1], cells, CELL_FIELDS)):
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields)
                w.writeheader()
                w.writerows(data)
        log(f"wrote {paths[0]} ({len(rows)} rows) and {paths[1]} ({len(cells)} rows)")
    else:
        paths = (out_dir / f"{fmt}-grades{suffix}.csv",)
        _write(paths[0], lms_rows(course, rows, fmt, log))
        menu = ("Canvas: Grades > Import" if fmt == "canvas"
                else "Moodle: Grades > Import > CSV file")
        log(f"wrote {paths[0]}: import it in {menu}")
    audit.append(course, "export", assignment, [
        {"student": r["student"], "score": r["score"], "max_score": r["max_score"],
         "status": r["status"], "assignment": r["assignment"]} for r in rows],
        format=fmt, files={p.name: audit.file_hashes(p.parent, p.name).get(p.name)
                           for p in paths})
    return paths


def lms_rows(course: Course, rows: list[dict], fmt: str, log=print) -> list[list[str]]:
    """The rows of a Canvas or Moodle import file from ``gradebook_rows``' per-student rows."""
    from .lms import canvas, moodle
    from .roster import Roster, RosterStudent

    roster = Roster.load(course)
    assignments: dict[str, float] = {}
    scores: dict[tuple[str, str], float | None] = {}
    blank = {"missing": 0, "stale": 0}
    for r in rows:
        assignments.setdefault(r["assignment"], float(r["max_score"]))
        if r["status"] == "missing":
            blank["missing"] += 1
            continue
        if r["stale"]:
            blank["stale"] += 1
            continue
        scores[r["student"], r["assignment"]] = round(float(r["score"]), 4)
    ids = sorted({r["student"] for r in rows} | (roster.enrolled or set()))
    students = [roster.students.get(s) or RosterStudent(s) for s in ids]
    if blank["missing"] or blank["stale"]:
        log(f"left blank: {blank['missing']} missing submission(s), {blank['stale']} stale "
            "grade(s) (run `cnnlab autograde ASSIGNMENT --stale` to regrade those)")
    cols = sorted(assignments.items())
    if fmt == "canvas":
        return canvas.gradebook_rows(students, cols, scores)
    no_key = [s.id for s in students if not s.email]
    if no_key:
        log(f"Moodle: {len(no_key)} student(s) without an email address (map the Username "
            "column then, or import the class list first)")
    return moodle.grade_rows(students, cols, scores)
