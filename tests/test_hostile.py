"""Hostile and broken submissions, each through the real pipeline: collect -> autograde ->
export/report. One batch (one zip, one ``autograde --jobs 2`` run) holds every case plus two
honest students, whose grades must come out exactly as when they are graded alone.

Toy assignment (``cnnlab.instructor.demo.toy_notebook``): ``square`` (test_square 1 point,
test_square_hidden 2) and ``cube`` (test_cube 2, compared with ``np.allclose``), 5 points.
"""

from __future__ import annotations

import copy
import csv
import os
import zipfile

import nbformat
import pytest

from cnnlab.instructor import autograde, collect, demo, export, release, report
from cnnlab.instructor.course import Course
from cnnlab.instructor.notebooks import nbg

pytestmark = pytest.mark.slow

SQUARE_OK = "def square(x):\n    return x * x"
CUBE_OK = "def cube(x):\n    return x ** 3"


def _base(course):
    src = nbformat.read(str(course.source / "toy" / "toy.ipynb"), 4)
    rel = nbformat.read(str(course.release / "toy" / "toy.ipynb"), 4)
    return demo.sample_submission(src, rel, "correct")


def _cell(nb, grade_id):
    return next(c for c in nb.cells if nbg(c).get("grade_id") == grade_id)


def _with(nb, **sources):
    nb = copy.deepcopy(nb)
    for gid, src in sources.items():
        _cell(nb, gid).source = src
    return nb


SECRET_ENV = "CNNLAB_TEST_INSTRUCTOR_SECRET"


def hostile_notebooks(course, secret_paths):
    """student -> (file name in the zip, bytes, expected score out of 5)."""
    ok = _base(course)
    gradebook, other = secret_paths
    solution = course.source / "toy" / "toy.ipynb"
    out = {}

    def add(student, nb, score, fname=None):
        data = nbformat.writes(nb).encode() if not isinstance(nb, bytes) else nb
        out[student] = (fname or demo.canvas_name(student, "toy", 2000 + len(out)), data, score)

    add("ada", ok, 5)
    add("grace", _with(ok, cube="def cube(x):\n    raise NotImplementedError()"), 3)
    # an infinite loop in square's cell: square undefined (0 + 0), cube fine (2)
    add("loop", _with(ok, square="while True:\n    pass\n" + SQUARE_OK), 2)
    # the kernel dies inside cube, in test_cube: square's 3 points stay
    add("dies", _with(ok, cube="def cube(x):\n    import os\n    os._exit(1)"), 3)
    # a memory bomb in cube (the kernel's address space is limited)
    # (it grows 128 MB at a time: without the limit it would take the machine's memory)
    add("membomb", _with(ok, cube="def cube(x):\n    hog = []\n    while True:\n"
                                  "        hog.append(bytearray(2 ** 27))"), 3)
    add("sysexit", _with(ok, square="def square(x):\n    import sys\n    sys.exit(0)"), 2)
    add("syntax", _with(ok, square="def square(x)\n    return x * x"), 2)
    deleted = copy.deepcopy(ok)
    deleted.cells = [c for c in deleted.cells if nbg(c).get("grade_id") != "test_square_hidden"]
    add("deleted", deleted, 5)
    add("edited", _with(ok, cube="def cube(x):\n    return x", test_cube="pass"), 3)
    dup = copy.deepcopy(ok)
    i = dup.cells.index(_cell(dup, "test_square"))
    dup.cells.insert(i, copy.deepcopy(dup.cells[i]))
    dup.cells[i].id = "pasted-copy"  # Jupyter gives a pasted cell a new id, not a new grade id
    add("duplicated", dup, 5)
    # monkeypatching the checker in the answer cell: restored before the test runs
    add("patchcell", _with(ok, cube="np.allclose = lambda *a, **k: True\n"
                                    "np.testing.assert_allclose = lambda *a, **k: None\n"
                                    "def cube(x):\n    return x"), 3)
    # ... or while the test runs (inside the student's function): the test scores 0
    add("patchcall", _with(ok, cube="def cube(x):\n    setattr(np, 'allclose', "
                                    "lambda *a, **k: True)\n    return x"), 3)
    # the reference package used in an answer: flagged
    add("reference", _with(ok, square="import cnnlab\n" + SQUARE_OK), 5)
    # reading and writing outside its folder: blocked and flagged, answers fine
    add("snoop", _with(ok, square=(
        "stolen = []\n"
        f"for p in [{str(gradebook)!r}, {str(other)!r}, {str(solution)!r},\n"
        "          '../../../../db/gradebook.db']:\n"
        "    try:\n        stolen.append(open(p, 'rb').read())\n"
        "    except Exception:\n        pass\n"
        f"for p in [{str(gradebook)!r}, {str(other)!r}]:\n"
        "    try:\n        open(p, 'w').write('pwned')\n"
        "    except Exception:\n        pass\n"
        "import os\n"
        f"assert {SECRET_ENV!r} not in os.environ, 'the environment was not scrubbed'\n"
        "assert not stolen, stolen\n" + SQUARE_OK)), 5)
    add("printer", _with(ok, square="for i in range(10 ** 6):\n    print('y' * 99)\n"
                                    + SQUARE_OK), 5)
    add("malformed", b'{"cells": [', 0)
    add("empty", b"", 0)
    add("misnamed", ok, 5, fname=demo.canvas_name("misnamed", "my_homework_final", 2999))
    v3 = nbformat.convert(copy.deepcopy(ok), 3)
    add("oldformat", nbformat.writes(v3, version=3).encode(), 5)
    return out


@pytest.fixture(scope="module")
def batch(make_toy_course, sample_submission):
    course = make_toy_course("hostile", released=True)
    root = course.root
    gradebook = course.db_path
    other = course.submitted / "ada" / "toy" / "toy.ipynb"
    cases = hostile_notebooks(course, (gradebook, other))
    zpath = root / "download.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for fname, data, _ in cases.values():
            z.writestr(fname, data)
        z.writestr("README.txt", "not a submission")
        z.writestr("final version (2).ipynb", nbformat.writes(sample_submission(course)))
    res = collect.collect(course, "toy", zpath, log=lambda *a: None)
    ada_before = other.read_bytes()
    os.environ[SECRET_ENV] = "the instructor's token"
    try:
        state = autograde.autograde(course, "toy", jobs=2, log=print,
                                    limits=autograde.Limits(timeout=10, mem_mb=2048))
    finally:
        del os.environ[SECRET_ENV]
    grades_csv, _ = export.export(course, "toy", log=lambda *a: None)
    page = report.report(course, "toy", log=lambda *a: None)
    return {"course": course, "cases": cases, "collect": res, "state": state,
            "ada_before": ada_before, "other": other, "csv": grades_csv, "report": page}


def test_every_student_scores_what_they_deserve(batch):
    got = {s: batch["state"][s]["score"] for s in batch["cases"]}
    want = {s: float(case[2]) for s, case in batch["cases"].items()}
    assert got == want


def test_honest_students_untouched_and_files_safe(batch, tmp_path):
    # alone, in a fresh course, ada and grace get the same grades as in the hostile batch
    root = demo.toy_course(tmp_path / "alone")
    course = Course.load(root)
    release.release(course, log=lambda *a: None)
    d = tmp_path / "subs"
    for s in ("ada", "grace"):
        (d / s).mkdir(parents=True)
        (d / s / "toy.ipynb").write_bytes(batch["cases"][s][1])
    collect.collect(course, "toy", d, log=lambda *a: None)
    alone = autograde.autograde(course, "toy", jobs=1, log=lambda *a: None,
                                limits=autograde.Limits(timeout=10))
    for s in ("ada", "grace"):
        assert alone[s]["score"] == batch["state"][s]["score"]
        assert not batch["state"][s]["flags"], batch["state"][s]["flags"]
    assert batch["other"].read_bytes() == batch["ada_before"]
    c = batch["course"]
    from nbgrader.api import Gradebook

    with Gradebook(c.db_url) as gb:  # the gradebook is intact and holds everyone
        names = {s.id for s in gb.students}
        assert set(batch["cases"]) <= names
        assert gb.find_submission("toy", "ada").score == 5


@pytest.mark.parametrize("student, reason", [
    ("loop", "timeout"),
    ("dies", "process ended"),
    ("membomb", "memoryerror"),
    ("sysexit", "systemexit"),
    ("syntax", "syntax error"),
    ("deleted", "deleted test cell test_square_hidden"),
    ("edited", "edited test cell test_cube"),
    ("duplicated", "duplicated cell test_square"),
    ("patchcell", "replaces np.allclose"),
    ("patchcall", "checker tampering"),
    ("reference", "reference package"),
    ("snoop", "reading"),
    ("snoop", "writing"),
    ("printer", "truncated"),
    ("malformed", "malformed json"),
    ("empty", "empty file"),
    ("misnamed", "wrongly named"),
    ("oldformat", "nbformat 3"),
])
def test_flagged_with_reason(batch, student, reason):
    flags = " | ".join(batch["state"][student]["flags"]).lower()
    assert reason in flags, flags


def test_export_and_report_show_every_case(batch):
    with open(batch["csv"]) as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert {s: float(r["score"]) for s, r in rows.items()} == {
        s: float(case[2]) for s, case in batch["cases"].items()}
    page = batch["report"].read_text()
    flagged = page.split('id="flagged"')[1]
    for student in batch["cases"]:
        is_flagged = f"<td>{student}</td>" in flagged
        assert is_flagged == (student not in ("ada", "grace")), student
        assert bool(rows[student]["flags"]) == is_flagged, student
    assert "final version (2).ipynb" in flagged  # the unplaced files table


def test_unplaceable_files_reported(batch):
    files = {u["file"]: u["reason"] for u in batch["collect"].unplaced}
    assert "README.txt" in files and "not a notebook" in files["README.txt"]
    assert "final version (2).ipynb" in files
