"""``cnnlab release``: generate the student version of assignments with nbgrader.

nbgrader's ``generate_assignment`` strips the solutions and hidden tests from
``solutions/<id>/<id>.ipynb``, writes ``exercises/<id>/`` and records every graded cell in the
gradebook (autograding needs that record).
"""

from __future__ import annotations

from .course import Course


def release(course: Course, assignments: list[str] | None = None, log=print) -> list[str]:
    """Generate the student version of ``assignments`` (default: every assignment).

    Returns the ids released. Raises ``RuntimeError`` with nbgrader's log when nbgrader fails.
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    ids = assignments or course.assignments()
    if not ids:
        raise ValueError(f"nothing to release: {course.source} holds no assignment folder")
    for a in ids:
        course.check_assignment(a)
    course.ensure_grading_dir()
    cfg = course.nbgrader_config()
    api = NbGraderAPI(CourseDirectory(config=cfg), config=cfg)
    for a in ids:
        result = api.generate_assignment(a, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment {a} failed:\n{result['log']}"
                               f"\n{result.get('error', '')}")
        log(f"released {a} -> {course.release / a}")
    return ids
