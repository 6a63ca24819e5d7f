"""Which version of an assignment each grade was graded against.

An assignment's version is the SHA-256 of its source notebooks (``solutions/<id>/*.ipynb``, by
name). ``cnnlab release`` records the version it released; autograde records, per student, the
version it graded against. A grade whose version is not the one released last is *stale*: export
and report mark it until ``cnnlab autograde ASSIGNMENT --stale`` grades those students again.
Kept in ``grading/cnnlab/<assignment>/versions.json``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from .course import Course, read_json, write_json


def source_version(course: Course, assignment: str) -> str:
    """SHA-256 (hex) of the assignment's source notebooks, names included."""
    h = hashlib.sha256()
    for name in course.notebooks(assignment):
        h.update(name.encode() + b"\0")
        h.update((course.source / assignment / f"{name}.ipynb").read_bytes())
    return h.hexdigest()


def _path(course: Course, assignment: str):
    return course.state_dir(assignment) / "versions.json"


def _state(course: Course, assignment: str) -> dict:
    return read_json(_path(course, assignment), {"released": [], "graded": {}})


def released_version(course: Course, assignment: str) -> str | None:
    rel = _state(course, assignment)["released"]
    return rel[-1]["version"] if rel else None


def record_release(course: Course, assignment: str, version: str) -> None:
    st = _state(course, assignment)
    st["released"].append({"version": version,
                           "time": datetime.now(UTC).isoformat(timespec="seconds")})
    write_json(_path(course, assignment), st)


def record_graded(course: Course, assignment: str, students: list[str]) -> None:
    """These students were just graded against the released version."""
    st = _state(course, assignment)
    v = st["released"][-1]["version"] if st["released"] else source_version(course, assignment)
    for s in students:
        st["graded"][s] = v
    write_json(_path(course, assignment), st)


def stale_students(course: Course, assignment: str) -> list[str]:
    """Students graded against a version other than the one released last."""
    st = _state(course, assignment)
    if not st["released"]:
        return []
    current = st["released"][-1]["version"]
    return sorted(s for s, v in st["graded"].items() if v != current)
