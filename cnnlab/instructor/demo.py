"""Sample submissions generated from an assignment's instructor notebook, and a toy assignment.

``sample_submission(source_nb, release_nb, kind)`` writes what a student would hand in:

* ``correct``: the released notebook with every solution cell replaced by the instructor's code;
* ``partial``: the first half of the solution cells answered, the rest left as released;
* ``blank``: the released notebook untouched.

Because it works from any nbgrader source notebook, the demo runs on the real course assignments as
well as on ``toy_assignment``, a three-question notebook the tests use for speed.
"""

from __future__ import annotations

import copy
import zipfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .notebooks import is_solution_cell, keep_solutions, nbg

KINDS = ("correct", "partial", "blank")

# Marker in the toy's hidden test: the feedback test proves this string never reaches a student.
HIDDEN_MARKER = "HIDDEN-TEST-MARKER-7f3a"


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=0):
    m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
         "solution": solution, "task": False}
    if grade:
        m["points"] = points
    return {"nbgrader": m}


# the course's layout (see the repository's nbgrader_config.py): plain nbgrader agrees with cnnlab
TOY_CONFIG = """import os

c = get_config()  # noqa: F821
_here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = _here
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = os.path.join("grading", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("grading", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("grading", "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_here, "grading", "gradebook.db")
os.makedirs(os.path.join(_here, "grading"), exist_ok=True)
"""


def toy_notebook() -> nbformat.NotebookNode:
    """A tiny nbgrader source notebook: two answers, three test cells (one with hidden tests)
    worth 1 + 2 + 2 = 5 points, graded in about a second."""
    cells = [
        new_markdown_cell("# Toy assignment\nImplement `square`, $x \\mapsto x^2$, and "
                          "`cube`, $x \\mapsto x^3$.",
                          metadata=_meta("intro", locked=True)),
        new_code_cell("import numpy as np", metadata=_meta("imports", locked=True)),
        new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n"
                      "    ### END SOLUTION", metadata=_meta("square", solution=True)),
        new_code_cell('"""square(3) is 9."""\nassert square(3) == 9, f"square(3) = {square(3)}"',
                      metadata=_meta("test_square", grade=True, locked=True, points=1)),
        new_code_cell('"""square of negatives and (hidden) more values."""\n'
                      "assert square(-2) == 4\n### BEGIN HIDDEN TESTS\n"
                      f"assert square(5) == 25  # {HIDDEN_MARKER}\n### END HIDDEN TESTS",
                      metadata=_meta("test_square_hidden", grade=True, locked=True, points=2)),
        new_code_cell("def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n"
                      "    ### END SOLUTION", metadata=_meta("cube", solution=True)),
        new_code_cell('"""cube on an array, compared with np.allclose."""\n'
                      "x = np.arange(4.0)\nassert np.allclose(cube(x), [0.0, 1.0, 8.0, 27.0]), "
                      "cube(x)", metadata=_meta("test_cube", grade=True, locked=True, points=2)),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def toy_course(root: Path, assignment: str = "toy") -> Path:
    """A minimal course directory (config + one source notebook) at ``root``."""
    root = Path(root)
    (root / "solutions" / assignment).mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(TOY_CONFIG)
    nbformat.write(toy_notebook(), str(root / "solutions" / assignment / f"{assignment}.ipynb"))
    return root


def sample_submission(source_nb, release_nb, kind: str) -> nbformat.NotebookNode:
    """A student's notebook of the given ``kind`` (one of ``KINDS``)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    answers = {nbg(c)["grade_id"]: keep_solutions(c.source)
               for c in source_nb.cells if is_solution_cell(c)}
    ids = list(answers)
    keep = set(ids if kind == "correct" else ids[: len(ids) // 2] if kind == "partial" else [])
    nb = copy.deepcopy(release_nb)
    for c in nb.cells:
        if is_solution_cell(c) and nbg(c).get("grade_id") in keep:
            c.source = answers[nbg(c)["grade_id"]]
    return nb


def canvas_name(student: str, notebook: str, uid: int) -> str:
    """Canvas's download naming: ``<student>_<user id>_<submission id>_<original file name>``."""
    return f"{student}_{uid}_{uid * 7 + 3}_{notebook}.ipynb"


def write_sample_zip(course, assignment: str, out: Path,
                     students: dict[str, str] | None = None) -> Path:
    """A Canvas-style zip of sample submissions for ``assignment`` (released first).

    ``students`` maps student id -> kind; default: one of each kind."""
    students = students or {"ada": "correct", "grace": "partial", "alan": "blank"}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as z:
        for i, (student, kind) in enumerate(sorted(students.items())):
            for name in course.notebooks(assignment):
                src = nbformat.read(str(course.source / assignment / f"{name}.ipynb"), 4)
                rel = nbformat.read(str(course.release / assignment / f"{name}.ipynb"), 4)
                nb = sample_submission(src, rel, kind)
                z.writestr(canvas_name(student, name, 1000 + i), nbformat.writes(nb))
    return out


def run_demo(assignment: str | None = None, workdir: Path | None = None, jobs: int = 2,
             course_root: Path | None = None, log=print) -> Path:
    """The whole cycle in a scratch copy of the course: release, a Canvas-style zip of sample
    submissions (correct, partial, blank, and one broken file), collect, autograde, feedback,
    export, report. Nothing is written to the real course's gradebook. Returns the scratch dir."""
    import shutil
    import tempfile

    from .autograde import autograde
    from .collect import collect
    from .course import Course, find_course_root
    from .export import export
    from .feedback import feedback
    from .release import release
    from .report import report

    workdir = Path(workdir or tempfile.mkdtemp(prefix="cnnlab-demo-"))
    if assignment is None:
        assignment = "toy"
        toy_course(workdir, assignment)
    else:
        real = Course.load(course_root or find_course_root())
        real.check_assignment(assignment)
        (workdir / "solutions").mkdir(parents=True, exist_ok=True)
        shutil.copy(real.root / "nbgrader_config.py", workdir / "nbgrader_config.py")
        dest = workdir / "solutions" / assignment
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(real.source / assignment, dest)
    course = Course.load(workdir)
    log(f"== demo course in {workdir}")
    release(course, [assignment], log=log)
    zpath = write_sample_zip(course, assignment, workdir / "lms-download.zip")
    with zipfile.ZipFile(zpath, "a") as z:
        z.writestr(canvas_name("broken", course.notebooks(assignment)[0], 1999), '{"cells": [')
    log(f"== sample submissions: {zpath}")
    collect(course, assignment, zpath, log=log)
    autograde(course, assignment, jobs=jobs, log=log)
    feedback(course, assignment, log=log)
    export(course, assignment, log=log)
    report(course, assignment, log=log)
    return workdir
