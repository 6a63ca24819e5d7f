"""``cnnlab export``: the gradebook as CSV, one row per student and one per student per cell.

``grading/grades.csv`` (or ``grading/grades-<assignment>.csv``): student, assignment, score,
max_score, needs_manual_grade, status (graded, failed, unusable, missing), flags.
``grading/cells.csv`` (or ``cells-<assignment>.csv``): student, assignment, notebook, cell
(grade id), score, max_score, failed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .course import Course, read_json


def gradebook_rows(course: Course, assignments: list[str] | None = None):
    """(per-student rows, per-cell rows) read from the course gradebook."""
    from nbgrader.api import MissingEntry

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
            for student in sorted(s.id for s in gb.students):
                info = state.get(student, {})
                try:
                    sub = gb.find_submission(a, student)
                except MissingEntry:
                    max_score = gb.find_assignment(a).max_score
                    students_rows.append({"student": student, "assignment": a, "score": 0.0,
                                          "max_score": max_score, "needs_manual_grade": False,
                                          "status": "missing", "flags": ""})
                    continue
                students_rows.append({
                    "student": student, "assignment": a, "score": sub.score,
                    "max_score": sub.max_score, "needs_manual_grade": sub.needs_manual_grade,
                    "status": info.get("status", "graded"),
                    "flags": " | ".join(info.get("flags", []))})
                for nb in sub.notebooks:
                    for g in sorted(nb.grades, key=lambda g: g.name):
                        if g.cell.cell_type != "code":
                            continue
                        cell_rows.append({
                            "student": student, "assignment": a, "notebook": nb.name,
                            "cell": g.name, "score": g.score, "max_score": g.max_score,
                            "failed": g.score is not None and g.score < g.max_score})
    return students_rows, cell_rows


def export(course: Course, assignment: str | None = None, out_dir: Path | None = None,
           log=print) -> tuple[Path, Path]:
    """Write the two CSV files; return their paths."""
    if assignment:
        course.check_assignment(assignment)
    rows, cells = gradebook_rows(course, [assignment] if assignment else None)
    out_dir = Path(out_dir or course.grading)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"-{assignment}" if assignment else ""
    paths = (out_dir / f"grades{suffix}.csv", out_dir / f"cells{suffix}.csv")
    for path, data, fields in (
        (paths[0], rows, ["student", "assignment", "score", "max_score", "needs_manual_grade",
                          "status", "flags"]),
        (paths[1], cells, ["student", "assignment", "notebook", "cell", "score", "max_score",
                           "failed"]),
    ):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(data)
    log(f"wrote {paths[0]} ({len(rows)} rows) and {paths[1]} ({len(cells)} rows)")
    return paths
