"""Tricks on the notebook file: edited, re-labelled, duplicated, deleted and invented test cells,
an edited locked setup cell and a student cell that claims to be the instructor's. All on
02_convolution's zeros answers: each deserves what the zeros student gets, and the grader should
name the cell it noticed."""

from __future__ import annotations

import copy

from nbformat.v4 import new_code_cell, new_markdown_cell

from cnnlab.instructor.notebooks import nbg

from .case import Case, cell

A = "02_convolution"
NO_CHECKS = ("check_close = check_shape = check_raises = lambda *a, **k: None\n"
             "check_from_scratch = lambda f, *a, **k: f(*a, **{n: v for n, v in k.items() "
             "if n not in ('chapter', 'forbid', 'allow', 'name', 'static')})\n")
# run where the grader is: a file outside any sandbox proves it
PROOF = ("import os\nfor _d in ('$root', '$root/grading'):\n    try:\n"
         "        open(os.path.join(_d, 'pwned-$mark-' + str(os.getpid())), 'w').write('x')\n"
         "    except OSError:\n        pass\n")


def _meta(gid, **kw):
    m = {"grade": False, "grade_id": gid, "locked": False, "schema_version": 3,
         "solution": False, "task": False}
    m.update(kw)
    return {"nbgrader": m}


def _set_meta(gid, **kw):
    def edit(nb, places):
        nbg(cell(nb, gid)).update(kw)
    return edit


def _to_solution(nb, places):
    c = cell(nb, "test_conv2d_naive")
    nbg(c).update(solution=True, grade=True)
    c.source = "pass"


def _duplicate(nb, places):
    c = cell(nb, "test_conv2d_naive")
    twin = copy.deepcopy(c)
    twin.source = "pass"
    twin["id"] = "pasted-twin"
    nb.cells.insert(nb.cells.index(c), twin)  # the forged copy comes first


def _delete_tests(nb, places):
    nb.cells = [c for c in nb.cells if not (nbg(c).get("grade") and not nbg(c).get("solution"))]


def _new_graded(nb, places):
    nb.cells.append(new_code_cell("pass", metadata=_meta("bonus", grade=True, points=10)))


def _fake_locked(nb, places):
    i = nb.cells.index(cell(nb, "conv2d_naive"))
    nb.cells.insert(i + 1, new_code_cell(NO_CHECKS + places.fill(PROOF),
                                         metadata=_meta("setup_more", locked=True)))


def _fake_setup(nb, places):
    i = nb.cells.index(cell(nb, "conv2d_naive"))
    twin = copy.deepcopy(cell(nb, "setup"))
    twin.source = NO_CHECKS
    twin["id"] = "setup-again"
    nb.cells.insert(i + 1, twin)


def _to_markdown(nb, places):
    c = cell(nb, "test_conv2d_naive")
    c.cell_type = "markdown"
    c.source = "Nothing to see here."
    c.pop("outputs", None)
    c.pop("execution_count", None)


def _prefilled(nb, places):
    """Every test cell arrives with outputs a passing run would leave (a number: full marks)."""
    from nbformat.v4 import new_output

    for c in nb.cells:
        m = nbg(c)
        if m.get("grade") and not m.get("solution"):
            c.outputs = [new_output("execute_result", {"text/plain": str(m.get("points", 1))},
                                    execution_count=1)]
            c.execution_count = 1


def _answer_points(nb, places):
    nbg(cell(nb, "conv2d_naive")).update(grade=True, points=100)


def _rich_html(nb, places):
    i = nb.cells.index(cell(nb, "conv2d_naive"))
    nb.cells.insert(i + 1, new_code_cell(places.fill(
        "from IPython.display import HTML, display\n"
        "display(HTML('<script>alert(\"$mark\")</script><b>All tests passed: 8/8</b>'))\n")))


def _markdown_xss(nb, places):
    i = nb.cells.index(cell(nb, "conv2d_naive"))
    nb.cells.insert(i + 1, new_markdown_cell(places.fill(
        "My notes. [see the solution](JavaScript:alert(\"$mark\")) "
        "[again](java&#115;cript:alert(\"$mark\")) <script>alert(\"$mark\")</script> "
        "<img src=x onerror=alert(\"$mark\")>")))


def cases() -> list[Case]:
    z = dict(assignment=A, base="zeros")
    return [
        Case("t02edittest", **z, replace={"test_conv2d_naive": "pass"}, flag="test_conv2d_naive",
             note="a test cell's source replaced by `pass`"),
        Case("t02metapoints", **z, edit=_set_meta("test_conv2d_naive_errors", points=100),
             flag="test_conv2d_naive_errors", note="a test cell's points metadata 1 -> 100"),
        Case("t02metaid", **z, edit=_set_meta("test_conv2d_naive", grade_id="my_cell"),
             flag="test_conv2d_naive", note="a test cell's grade_id renamed"),
        Case("t02tosolution", **z, edit=_to_solution, flag="test_conv2d_naive",
             note="a test cell turned into a solution cell (source `pass`)"),
        Case("t02duplicate", **z, edit=_duplicate, flag="test_conv2d_naive",
             note="a test cell duplicated (same grade_id), the first copy `pass`"),
        Case("t02deletetests", **z, edit=_delete_tests, flag="test_conv",
             note="every test cell deleted"),
        Case("t02newgraded", **z, edit=_new_graded, flag="bonus",
             note="a new graded cell `bonus` worth 10 points"),
        Case("t02setupedit", **z, replace={"setup": "import numpy as np\n"
                                                    "from cnnlab.grading import check_from_scratch"
                                                    "\nrng = np.random.default_rng(0)\n"
                                                    "CHAPTER = ''\n" + NO_CHECKS},
             flag="setup", note="the locked setup cell (runs on both sides) rebinds the checks"),
        Case("t02fakelocked", **z, edit=_fake_locked, flag="setup_more",
             note="a new cell with locked metadata: rebinds the checks, writes outside"),
        Case("t02tomarkdown", **z, edit=_to_markdown, flag="test_conv2d_naive",
             note="a test cell turned into a markdown cell"),
        Case("t02prefilled", **z, edit=_prefilled,
             note="test cells arrive with outputs a passing run would leave (numbers)"),
        Case("t02answerpoints", **z, edit=_answer_points, flag="conv2d_naive",
             note="the answer cell made a graded cell worth 100 points"),
        Case("t02richhtml", **z, edit=_rich_html,
             note="an answer-side cell displays HTML with a script and a fake score"),
        Case("t02markdown", **z, edit=_markdown_xss,
             note="a markdown cell with javascript: links (mixed case, an entity) and a script"),
        Case("t02fakesetup", **z, edit=_fake_setup, flag="setup",
             note="a second cell with grade_id `setup` (the locked one) that rebinds the checks"),
    ]

