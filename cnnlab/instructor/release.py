"""``cnnlab release``: generate the student version of assignments with nbgrader.

nbgrader's ``generate_assignment`` strips the solutions and hidden tests from
``solutions/<id>/<id>.ipynb``, writes ``exercises/<id>/`` and records every graded cell in the
gradebook (autograding needs that record).

Re-releasing is guarded: when students have already submitted and the source changed since the
last release, ``force=True`` (``--force``) is required, and the grades made against the older
version are marked stale (``versions.py``) until regraded. A release that fails leaves
``exercises/<id>/`` as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .course import Course


class ReleaseError(ValueError):
    """nbgrader could not generate the student version (its log is in the message)."""


def release(course: Course, assignments: list[str] | None = None, log=print,
            force: bool = False) -> list[str]:
    """Generate the student version of ``assignments`` (default: every assignment).

    Returns the ids released. Raises ``ReleaseError`` with nbgrader's log when nbgrader fails,
    ``ValueError`` when re-releasing a changed assignment that has submissions without ``force``.
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from . import audit, versions

    ids = assignments or course.assignments()
    if not ids:
        raise ValueError(f"nothing to release: {course.source} holds no assignment folder")
    for a in ids:
        course.check_assignment(a)
    course.ensure_grading_dir()
    for a in ids:
        _check_rerelease(course, a, force, log)
    cfg = course.nbgrader_config()
    api = NbGraderAPI(CourseDirectory(config=cfg), config=cfg)
    for a in ids:
        with _kept_on_failure(course.release / a):
            result = api.generate_assignment(a, force=True, create=True)
            if not result["success"]:
                raise ReleaseError(f"nbgrader generate_assignment {a} failed; "
                                   f"{course.release / a} is left as it was:\n"
                                   f"{result['log']}\n{result.get('error', '')}")
        version = versions.source_version(course, a)
        versions.record_release(course, a, version)
        audit.append(course, "release", a, [])
        log(f"released {a} -> {course.release / a}")
    return ids


def _submitted(course: Course, assignment: str) -> list[str]:
    if not course.submitted.is_dir():
        return []
    return sorted(d.name for d in course.submitted.iterdir() if (d / assignment).is_dir())


def _check_rerelease(course: Course, assignment: str, force: bool, log) -> None:
    from .versions import released_version, source_version

    subs = _submitted(course, assignment)
    last = released_version(course, assignment)
    if not subs or last is None or last == source_version(course, assignment):
        return
    if not force:
        raise ValueError(
            f"{assignment} changed since it was last released and {len(subs)} student(s) have "
            f"submitted it: releasing again changes the tests their grades were made with. "
            f"Run `cnnlab release {assignment} --force` to release anyway; their grades are then "
            f"marked stale until `cnnlab autograde {assignment} --stale`")
    log(f"WARNING: re-releasing {assignment} with {len(subs)} submission(s): their grades are "
        f"stale until `cnnlab autograde {assignment} --stale`")


class _kept_on_failure:
    """Keep a copy of ``folder``; put it back if the block raises or leaves it missing."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self):
        self.backup = None
        if self.folder.exists():
            self.tmp = Path(tempfile.mkdtemp(prefix="cnnlab-release-"))
            self.backup = self.tmp / self.folder.name
            shutil.copytree(self.folder, self.backup, symlinks=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self.backup is not None:
            if self.folder.exists():
                shutil.rmtree(self.folder)
            shutil.copytree(self.backup, self.folder, symlinks=True)
        if self.backup is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False
