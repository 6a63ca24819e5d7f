"""``cnnlab similarity`` ranks a copied pair (variables renamed, helpers reordered) and a copy of
cnnlab's reference code above independent solutions; provided code never counts."""

from __future__ import annotations

import copy
import inspect
import re
import shutil

import nbformat
import pytest

from cnnlab.instructor import demo, release, similarity
from cnnlab.instructor.course import Course
from cnnlab.instructor.notebooks import nbg
from cnnlab.nn import conv

ORIGINAL = '''
def _pad_rows(grid, width):
    padded = []
    for row in grid:
        padded.append([0] * width + list(row) + [0] * width)
    blank = [0] * (len(grid[0]) + 2 * width)
    return [blank] * width + padded + [blank] * width


def _window_total(grid, top, left, size):
    total = 0
    for i in range(size):
        for j in range(size):
            total += grid[top + i][left + j] * grid[top + i][left + j]
    return total


def square(x):
    table = _pad_rows([[x]], 1)
    return _window_total(table, 1, 1, 1)
'''

# the same code, names changed, helpers in the other order
COPIED = '''
def _sum_patch(mat, r0, c0, k):
    acc = 0
    for a in range(k):
        for b in range(k):
            acc += mat[r0 + a][c0 + b] * mat[r0 + a][c0 + b]
    return acc


def _border(mat, pad):
    out_rows = []
    for line in mat:
        out_rows.append([0] * pad + list(line) + [0] * pad)
    empty = [0] * (len(mat[0]) + 2 * pad)
    return [empty] * pad + out_rows + [empty] * pad


def square(v):
    m = _border([[v]], 1)
    return _sum_patch(m, 1, 1, 1)
'''

INDEPENDENT = [
    "def square(x):\n    return x * x\n",
    "import math\n\ndef square(value):\n    if value == 0:\n        return 0\n"
    "    sign = 1 if value > 0 else -1\n"
    "    return math.exp(2 * math.log(abs(value))) * sign * sign\n",
    "def square(n):\n    result = 0\n    count = abs(n)\n    while count > 0:\n"
    "        result = result + abs(n)\n        count = count - 1\n    return result\n",
]


def _reference_copy() -> str:
    src = inspect.getsource(conv.conv2d_naive)
    for old, new in (("x", "images"), ("w", "filters"), ("b", "bias"), ("out", "res")):
        src = re.sub(rf"\b{old}\b", new, src)
    return src + "\n\ndef square(x):\n    return x ** 2\n"


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    root = demo.toy_course(tmp_path_factory.mktemp("sim"))
    course = Course.load(root)
    release.release(course, log=lambda *a: None)
    rel = nbformat.read(str(course.release / "toy" / "toy.ipynb"), 4)
    answers = {"orig": ORIGINAL, "copier": COPIED, "refcopy": _reference_copy(),
               **{f"indep{i}": code for i, code in enumerate(INDEPENDENT)}}
    for student, code in answers.items():
        nb = copy.deepcopy(rel)
        for c in nb.cells:
            if nbg(c).get("grade_id") == "square":
                c.source = code
        d = course.submitted / student / "toy"
        d.mkdir(parents=True)
        nbformat.write(nb, str(d / "toy.ipynb"))
    shutil.rmtree(course.submitted / "indep2" / "toy")  # a student who left only the provided code
    d = course.submitted / "indep2" / "toy"
    d.mkdir()
    nbformat.write(rel, str(d / "toy.ipynb"))
    page, matches = similarity.similarity(course, "toy", threshold=0.5, log=lambda *a: None)
    return course, page, matches


def test_copied_pair_ranks_first(ranked):
    _, _, matches = ranked
    pairs = [m for m in matches if not m.b.startswith(("reference:", "book:"))]
    assert {pairs[0].a, pairs[0].b} == {"copier", "orig"}
    assert pairs[0].similarity > 0.8
    others = [m.similarity for m in pairs[1:]]
    assert all(s < pairs[0].similarity / 2 for s in others), pairs


def test_reference_copy_ranks_above_independent_solutions(ranked):
    _, _, matches = ranked
    ref = {m.a: m for m in matches if m.b.startswith("reference:")}
    assert ref["refcopy"].b == "reference: cnnlab/nn/conv.py"
    assert ref["refcopy"].similarity > 0.5
    for s in ("indep0", "indep1", "orig", "copier"):
        assert s not in ref or ref[s].similarity < ref["refcopy"].similarity / 2


def test_provided_code_never_counts(ranked):
    _, _, matches = ranked
    assert all("indep2" not in (m.a, m.b) for m in matches)  # nothing but the release


def test_page_shows_pairs_side_by_side_above_the_threshold(ranked):
    _, page, matches = ranked
    text = page.read_text()
    assert text.count('<div class="pair">') == sum(m.similarity >= 0.5 for m in matches) >= 2
    assert "<mark>" in text and "copier" in text and "decides nothing" in text


def test_threshold_is_a_share():
    with pytest.raises(ValueError, match="between 0 and 1"):
        similarity.similarity(None, "toy", threshold=50)
