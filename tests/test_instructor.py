"""The instructor cycle on the toy assignment (fast unit tests, then the whole cycle, marked slow).

The toy (``cnnlab.instructor.demo.toy_notebook``) is worth 5 points: test_square 1,
test_square_hidden 2 (one hidden assertion carrying ``HIDDEN_MARKER``), test_cube 2.
"""

from __future__ import annotations

import copy
import csv
import html
import json
import re
import sqlite3
import zipfile

import nbformat
import pytest
from leaks import hidden_lines

from cnnlab.cli import main
from cnnlab.instructor import autograde, collect, demo, release
from cnnlab.instructor.course import Course, find_course_root
from cnnlab.instructor.feedback import PLACEHOLDER, HideHiddenTests
from cnnlab.instructor.notebooks import nbg, strip_hidden_tests
from cnnlab.instructor.scan import scan_notebook


def _nbs():
    """(source notebook, a released-like notebook) without running nbgrader."""
    src = demo.toy_notebook()
    rel = copy.deepcopy(src)
    for c in rel.cells:
        c.source = strip_hidden_tests(c.source, "")
        if nbg(c).get("solution"):
            c.source = c.source.split("### BEGIN")[0] + "raise NotImplementedError()"
    return src, rel


# ---------------------------------------------------------------- collect: names and contents

@pytest.mark.parametrize("name, student, stem", [
    ("smithjane_1234_5678_toy.ipynb", "smithjane", "toy"),
    ("smithjane_late_1234_5678_toy-1.ipynb", "smithjane", "toy-1"),
    ("toy/ada_1_2_toy.ipynb", "ada", "toy"),
    ("ada.ipynb", "ada", "ada"),
    ("ada/toy.ipynb", "ada", "toy"),
    ("ada/toy/toy.ipynb", "ada", "toy"),
])
def test_parse_name(name, student, stem):
    assert collect.parse_name(name, "toy")[:2] == (student, stem)


@pytest.mark.parametrize("name", ["final version (2).ipynb", "a/b/c/d.ipynb", "bad name/x.ipynb"])
def test_parse_name_rejects(name):
    student, _, why = collect.parse_name(name, "toy")
    assert student is None and why


@pytest.mark.parametrize("data, problem", [
    (b"", "empty file"),
    (b"  \n", "empty file"),
    (b'{"cells": [', "malformed JSON"),
    (b"\xff\xfe", "malformed JSON"),
    (b"[1, 2]", "not a notebook"),
    (b'{"nbformat": 2, "cells": []}', "unsupported nbformat"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "cells": "x", "metadata": {}}', "not a valid"),
])
def test_load_notebook_problems(data, problem):
    nb, why, _ = collect.load_notebook(data)
    assert nb is None and why.startswith(problem)


def test_load_notebook_converts_v3():
    nb = demo.toy_notebook()
    v3 = nbformat.writes(nbformat.convert(copy.deepcopy(nb), 3), version=3).encode()
    got, problem, note = collect.load_notebook(v3)
    assert problem is None and "nbformat 3" in note
    assert got.nbformat == 4
    assert [nbg(c).get("grade_id") for c in got.cells] == [nbg(c).get("grade_id") for c in nb.cells]


# ------------------------------------------------------------------ scan, hidden tests, policy

def test_scan_notebook_finds_edits_deletions_duplicates_and_tampering():
    src, rel = _nbs()
    assert scan_notebook(rel, rel) == []
    nb = copy.deepcopy(rel)
    by = {nbg(c).get("grade_id"): c for c in nb.cells}
    by["test_cube"].source = "pass"
    by["cube"].source = "import numpy as xp\nxp.testing.assert_allclose = print\nimport cnnlab"
    nb.cells.remove(by["test_square_hidden"])
    nb.cells.append(copy.deepcopy(by["test_square"]))
    flags = " | ".join(scan_notebook(nb, rel))
    for expected in ("edited test cell test_cube", "deleted test cell test_square_hidden",
                     "duplicated cell test_square", "replaces xp.testing.assert_allclose",
                     "reference package"):
        assert expected in flags, flags


def test_scan_ignores_code_the_course_provides():
    """A plain (ungraded) cell of the released notebook that imports cnnlab is not the
    student's doing; the same import typed into an answer is."""
    _, rel = _nbs()
    rel.cells.insert(2, nbformat.v4.new_code_cell("from cnnlab import train"))
    assert scan_notebook(rel, rel) == []
    nb = copy.deepcopy(rel)
    nb.cells.append(nbformat.v4.new_code_cell("from cnnlab import train"))
    assert scan_notebook(nb, rel) == []  # identical to the provided cell
    next(c for c in nb.cells if nbg(c).get("grade_id") == "square").source = "import cnnlab.nn"
    assert any("reference package" in f for f in scan_notebook(nb, rel))


def test_scan_reports_syntax_error():
    _, rel = _nbs()
    nb = copy.deepcopy(rel)
    next(c for c in nb.cells if nbg(c).get("grade_id") == "square").source = "def f(:\n  pass"
    assert any("syntax error" in f for f in scan_notebook(nb, rel))


def test_hide_hidden_tests_removes_source_and_traceback():
    src, _ = _nbs()
    cell = copy.deepcopy(next(c for c in src.cells
                              if nbg(c).get("grade_id") == "test_square_hidden"))
    cell.outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="",
        traceback=[f"----> 4 assert square(5) == 25  # {demo.HIDDEN_MARKER}"])]
    out, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    text = json.dumps(out)
    assert demo.HIDDEN_MARKER not in text
    assert PLACEHOLDER in out.source and "assert square(-2) == 4" in out.source


def test_sample_submission_kinds():
    src, rel = _nbs()
    answered = {k: sum("NotImplementedError" not in c.source for c in
                       demo.sample_submission(src, rel, k).cells if nbg(c).get("solution"))
                for k in demo.KINDS}
    assert answered == {"correct": 2, "partial": 1, "blank": 0}
    with pytest.raises(ValueError, match="kind 'perfect'"):
        demo.sample_submission(src, rel, "perfect")


def test_cli_unknown_assignment(tmp_path, capsys):
    demo.toy_course(tmp_path)
    assert main(["--course", str(tmp_path), "collect", "nope", str(tmp_path)]) == 2
    assert "unknown assignment 'nope'" in capsys.readouterr().err


def test_autograde_rejects_zero_jobs(tmp_path):
    course = Course.load(demo.toy_course(tmp_path))
    with pytest.raises(ValueError, match="--jobs 0"):
        autograde.autograde(course, "toy", jobs=0)


# ------------------------------------------------------------------------- the whole cycle

@pytest.fixture(scope="module")
def cycle(make_toy_course):
    """release -> collect (Canvas zip) -> autograde --jobs 2 -> feedback -> export -> report,
    through the console script's entry point."""
    course = make_toy_course("cycle")
    root = course.root
    c = ["--course", str(root)]
    assert main(c + ["release", "toy"]) == 0
    zpath = demo.write_sample_zip(course, "toy", root / "download.zip")
    assert main(c + ["collect", "toy", str(zpath)]) == 0
    assert main(c + ["autograde", "toy", "--jobs", "2", "--timeout", "20"]) == 0
    first = json.loads((course.state_dir("toy") / "autograde.json").read_text())
    assert main(c + ["feedback", "toy"]) == 0
    assert main(c + ["export", "toy"]) == 0
    assert main(c + ["report", "toy"]) == 0
    return course, first


def _page_text(path):
    """The text of an HTML page without tags (code is split into highlighting spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def _db_rows(course):
    con = sqlite3.connect(course.db_path)
    try:
        return sorted(con.execute(
            "select s.student_id, g.cell_id, g.auto_score from grade g "
            "join submitted_notebook n on g.notebook_id = n.id "
            "join submitted_assignment s on n.assignment_id = s.id").fetchall())
    finally:
        con.close()


@pytest.mark.slow
def test_cycle_scores(cycle):
    course, first = cycle
    assert {s: v["score"] for s, v in first.items()} == {"ada": 5.0, "grace": 3.0, "alan": 0.0}


@pytest.mark.slow
def test_rerun_is_idempotent_and_sequential_agrees(cycle):
    course, first = cycle
    before = _db_rows(course)
    again = autograde.autograde(course, "toy", jobs=1, log=lambda *a: None,
                                limits=autograde.Limits(timeout=20), force=True)
    assert {s: v["score"] for s, v in again.items()} == {s: v["score"] for s, v in first.items()}
    assert _db_rows(course) == before  # same rows, no duplicates


@pytest.mark.slow
def test_feedback_hides_hidden_tests(cycle):
    course, _ = cycle
    pages = sorted(course.feedback.glob("*/toy/toy.html"))
    assert [p.parent.parent.name for p in pages] == ["ada", "alan", "grace"]
    # the grader builds the autograded notebooks without hidden test source ...
    assert demo.HIDDEN_MARKER not in (course.autograded / "alan" / "toy" / "toy.ipynb").read_text()
    for p in pages:  # ... and so no feedback page has it
        text = _page_text(p)
        assert demo.HIDDEN_MARKER not in text
        assert "hidden tests (not shown)" in text
        assert "assert square(-2) == 4" in text  # the visible test is shown


@pytest.mark.slow
def test_export_csv(cycle):
    course, _ = cycle
    with open(course.grading / "grades-toy.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert {s: float(r["score"]) for s, r in rows.items()} == {"ada": 5, "grace": 3, "alan": 0}
    with open(course.grading / "cells-toy.csv") as f:
        cells = [r for r in csv.DictReader(f)]
    failed = {(r["student"], r["cell"]) for r in cells if r["failed"] == "True"}
    assert failed == {("alan", "test_square"), ("alan", "test_square_hidden"),
                      ("alan", "test_cube"), ("grace", "test_cube")}


@pytest.mark.slow
def test_report_page(cycle):
    course, _ = cycle
    html = (course.grading / "report-toy.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert "Failure rate of each test cell" in html and "Flagged submissions (0)" in html


@pytest.mark.slow
def test_stuck_submission_is_killed_at_its_deadline(tmp_path):
    """A submission that ignores interrupts outlives the per-cell timeout; the submission's
    deadline stops it, scores it 0 with the reason, and the others are graded."""
    root = demo.toy_course(tmp_path)
    course = Course.load(root)
    release.release(course, log=lambda *a: None)
    src = nbformat.read(str(course.source / "toy" / "toy.ipynb"), 4)
    rel = nbformat.read(str(course.release / "toy" / "toy.ipynb"), 4)
    ok = demo.sample_submission(src, rel, "correct")
    stuck = copy.deepcopy(ok)
    next(c for c in stuck.cells if nbg(c).get("grade_id") == "square").source = (
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass")
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        z.writestr("ada.ipynb", nbformat.writes(ok))
        z.writestr("stuck.ipynb", nbformat.writes(stuck))
        z.writestr("zoe.ipynb", nbformat.writes(ok))
    collect.collect(course, "toy", tmp_path / "d.zip", log=lambda *a: None)
    state = autograde.autograde(course, "toy", jobs=2, log=lambda *a: None,
                                limits=autograde.Limits(timeout=60, deadline=25))
    assert state["stuck"]["status"] == "failed" and state["stuck"]["score"] == 0
    assert any("grading stopped after 25 s" in f for f in state["stuck"]["flags"])
    assert state["ada"]["score"] == state["zoe"]["score"] == 5


# ------------------------------------------------------------------ a real course assignment

REAL = "01_fc_vs_conv"


@pytest.mark.slow
@pytest.mark.skipif(not (Course.load(find_course_root(__file__)).source / REAL).is_dir(),
                    reason=f"solutions/{REAL} not written yet")
def test_real_assignment_cycle(tmp_path):
    """The demo on the course's first assignment: the correct submission gets every point in the
    sandbox, the blank one none, nobody is flagged but the broken file, and no line of a hidden
    test reaches the feedback."""
    root = demo.run_demo(REAL, tmp_path / "demo", jobs=2, log=lambda *a: None,
                         course_root=find_course_root(__file__))
    course = Course.load(root)
    state = json.loads((course.state_dir(REAL) / "autograde.json").read_text())
    assert state["ada"]["score"] == state["ada"]["max_score"] > 0
    assert state["alan"]["score"] == 0
    assert 0 <= state["grace"]["score"] <= state["ada"]["score"]
    assert {s for s, v in state.items() if v["flags"]} == {"broken"}
    src = nbformat.read(str(course.source / REAL / f"{REAL}.ipynb"), 4)
    rel = nbformat.read(str(course.release / REAL / f"{REAL}.ipynb"), 4)
    hidden = hidden_lines(src, rel)
    assert hidden, "the assignment has hidden tests"
    pages = list(course.feedback.glob(f"*/{REAL}/*.html"))
    assert len(pages) == 4  # the broken file gets a page saying why it was not graded
    assert "malformed JSON" in _page_text(course.feedback / "broken" / REAL / f"{REAL}.html")
    for page in pages:
        text = _page_text(page)
        leaked = [h for h in hidden if h in text]
        assert not leaked, (page, leaked[:3])
