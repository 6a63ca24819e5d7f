"""The nbgrader cycle, done by nbgrader itself, on every assignment in solutions/.

- exercises/ equals a fresh `nbgrader generate_assignment` from solutions/ (nobody hand-edits it);
- every solution notebook passes nbgrader's Validator (its Python API: the CLI exits 0 on failures);
- one real `nbgrader autograde` per assignment, with a real gradebook, grades four students at once:
  the solution with a test cell deleted (full marks: autograde puts the cell back), the untouched
  student notebook with a test cell emptied (zero, and the run does not crash), a
  notebook with only its first part solved (exactly that part's points), for "from scratch"
  exercises a student who calls the reference (loses that exercise's points, told why), and a
  student whose wrong code patches cnnlab, np.allclose and torch so the comparisons would agree.

The course is copied to a temporary folder (nbgrader_config.py, solutions/), so the repository's
grading/ folder is never touched. New assignments are picked up from solutions/ automatically; add
a "cheat" for each new from-scratch exercise to CHEATS below.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ASSIGNMENTS = sorted(
    p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()
)

# assignment -> (solution cell to replace, the student's shortcut, test cells it must fail as not
# from scratch[, test cells it fails besides: the sandbox cannot import the reference at all])
CHEATS = {
    "02_convolution": (
        "conv2d_naive",
        "import cnnlab.nn\n\ndef conv2d_naive(x, w, b):\n    return cnnlab.nn.conv2d(x, w, b)\n",
        {"test_conv2d_naive"},
        {"test_conv2d_naive_errors"},
    ),
    "03_stride_padding": (
        "conv2d",
        "from cnnlab.nn import conv2d as reference_conv\n\n"
        "def conv2d(x, w, b, stride=1, pad=0):\n"
        "    return reference_conv(x, w, b, stride=stride, pad=pad)\n",
        {"test_conv2d"},
        {"test_conv2d_errors"},
    ),
    "04_one_by_one": (
        "conv1x1",
        "import torch\nimport torch.nn.functional as F\n\n"
        "def conv1x1(x, w, b):\n"
        "    t = torch.from_numpy\n"
        "    return F.conv2d(t(x), t(w), t(b)).numpy()\n",
        {"test_conv1x1"},
    ),
    "05_pooling": (
        "avg_pool",
        "import cnnlab.nn\n\n"
        "def avg_pool_forward(x, size=2, stride=2):\n"
        "    return cnnlab.nn.avg_pool2d(x, size=size, stride=stride)\n\n"
        "def avg_pool_backward(dout, x, size=2, stride=2):\n"
        "    return cnnlab.nn.avg_pool2d_backward(dout, x, size=size, stride=stride)\n",
        {"test_avg_pool_forward", "test_avg_pool_backward"},
    ),
    "06_conv_backward": (
        "conv_backward",
        "from cnnlab import nn as reference_layers\n\n"
        "def conv_backward(dout, x, w, stride=1, pad=0):\n"
        "    return reference_layers.conv2d_backward(dout, x, w, stride=stride, pad=pad)\n",
        {"test_conv_backward_db", "test_conv_backward_dw", "test_conv_backward_dx"},
    ),
    "07_im2col": (
        "conv_im2col",
        "import cnnlab.nn\n\n"
        "def conv_im2col(x, w, b, stride=1, pad=0):\n"
        "    return cnnlab.nn.conv2d(x, w, b, stride=stride, pad=pad)\n",
        {"test_conv_im2col"},
    ),
    "08_architectures": (
        "basic_block",
        "from cnnlab.models import BasicBlock as ReferenceBlock\n\n"
        "class BasicBlock(ReferenceBlock):\n"
        "    pass\n",
        {"test_basic_block_shapes", "test_basic_block_behaviour"},
    ),
}


# assignment -> (solution cell to replace, code that is right only where the visible tests look and
# then rigs the kernel so that "compare with the reference" would agree, test cells it must fail)
TAMPERERS = {
    "02_convolution": (
        "conv2d_naive",
        "import numpy as np\n"
        "import torch\n"
        "import cnnlab.nn\n\n"
        "def conv2d_naive(x, w, b):\n"
        "    x, w, b = (np.asarray(a, dtype=float) for a in (x, w, b))\n"
        "    K, C, F, _ = w.shape\n"
        "    N, _, H, W = x.shape\n"
        "    if C != x.shape[1] or b.shape != (K,) or F > min(H, W):\n"
        "        raise ValueError(f'bad shapes {x.shape} {w.shape} {b.shape}')\n"
        "    out = np.zeros((N, K, H - F + 1, W - F + 1))\n"
        "    for k in range(K):\n"
        "        for i in range(H - F + 1):\n"
        "            for j in range(W - F + 1):\n"
        "                out[0, k, i, j] = np.sum(x[0, :, i:i + F, j:j + F] * w[k]) + b[k]\n"
        "    return out  # only the first image is computed\n\n"
        "cnnlab.nn.conv2d = conv2d_naive\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "torch.nn.functional.conv2d = lambda x, w, b=None, **k: torch.from_numpy(\n"
        "    conv2d_naive(x.numpy(), w.numpy(), b.numpy()))\n",
        {"test_conv2d_naive"},
    ),
}


def nbgrader(course: Path, *args: str) -> str:
    """Run the nbgrader CLI in ``course``; fail with its output unless it exits 0."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} exited {proc.returncode}:\n{output}"
    return output


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A copy of the course with exercises/ freshly generated from solutions/ by nbgrader."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(
        ROOT / "solutions",
        root / "solutions",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    nbgrader(root, "generate_assignment", "*", "--force")
    return root


def normalised(path: Path) -> dict:
    """A notebook as JSON, without what may vary between two generations of the same source."""
    nb = json.loads(path.read_text())
    nb.get("metadata", {}).get("language_info", {}).pop("version", None)
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def test_every_assignment_has_its_exercise():
    released = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    assert released == ASSIGNMENTS, "run `make release` and commit exercises/"


@pytest.mark.slow  # one `nbgrader generate_assignment` of the course: ~5 s alone, 15+ s loaded
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_equal_a_fresh_generation(course, assignment):
    committed = ROOT / "exercises" / assignment
    fresh = course / "exercises" / assignment
    files = sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file())
    assert sorted(
        p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file()
    ) == (files), "exercises/ is out of date: run `make release` and commit exercises/"
    for name in files:
        if name.endswith(".ipynb"):
            assert normalised(committed / name) == normalised(fresh / name), (
                f"exercises/{assignment}/{name} differs from a fresh generation: never edit it by "
                "hand; run `make release` after changing solutions/"
            )
        else:
            assert (committed / name).read_bytes() == (fresh / name).read_bytes()


def test_student_copies_have_no_solutions_and_no_hidden_tests():
    for assignment in ASSIGNMENTS:
        text = (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text()
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{assignment}: '{marker}' left in the student copy"
        assert "raise NotImplementedError()" in text


# -- helpers on notebooks ----------------------------------------------------------------------


def grade_info(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def segments(nb) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The solution cells in order, and for each the test cells that follow it, with points."""
    order: list[str] = []
    tests: dict[str, dict[str, float]] = {}
    current = None
    for cell in nb.cells:
        info = grade_info(cell)
        if info.get("solution") and cell.cell_type == "code":
            current = info["grade_id"]
            order.append(current)
            tests.setdefault(current, {})
        if info.get("grade"):
            tests.setdefault(current, {})[info["grade_id"]] = float(info["points"])
    return order, tests


def with_cell(nb, grade_id: str, source: str):
    """A copy of ``nb`` whose cell ``grade_id`` has the given source."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    matches = [c for c in nb.cells if grade_info(c).get("grade_id") == grade_id]
    assert len(matches) == 1, f"no single cell with grade_id {grade_id!r}"
    matches[0].source = source
    return nb


def without_cell(nb, grade_id: str):
    """A copy of ``nb`` without its cell ``grade_id``."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells = [c for c in nb.cells if grade_info(c).get("grade_id") != grade_id]
    return nb


def submit(course: Path, student: str, assignment: str, nb) -> None:
    folder = course / "grading" / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


def cell_errors(course: Path, student: str, assignment: str) -> dict[str, str]:
    """grade_id -> the error text of each graded cell that failed in the autograded notebook."""
    path = course / "grading" / "autograded" / student / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    errors = {}
    for cell in nb.cells:
        if grade_info(cell).get("grade"):
            texts = [
                f"{o.get('ename')}: {o.get('evalue')}"
                if o.output_type == "error"
                else f"stderr: {o.get('text', '')}"
                for o in cell.get("outputs", [])
                if o.output_type == "error" or o.get("name") == "stderr"
            ]
            if texts:
                errors[grade_info(cell)["grade_id"]] = " | ".join(texts)[:600]
    return errors


def scores(course: Path, assignment: str) -> dict[str, dict[str, float]]:
    """student -> {grade_id: score} from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    result = {}
    with Gradebook(f"sqlite:///{course / 'grading' / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(assignment):
            nb = gb.find_submission_notebook(assignment, assignment, submission.student_id)
            result[submission.student_id] = {g.name: float(g.score) for g in nb.grades}
    return result


# -- the real cycle ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograde_scores_every_kind_of_student(course, assignment):
    solution = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    order, tests = segments(solution)
    points = {gid: p for part in tests.values() for gid, p in part.items()}
    assert order and points, f"{assignment} has no solution cells or no graded test cells"
    first = order[0]
    first_source = next(c.source for c in solution.cells if grade_info(c).get("grade_id") == first)

    # the solution, minus its last test cell: autograde must put the cell back (add_missing_cells)
    last_test = [c for c in solution.cells if grade_info(c).get("grade")][-1]
    submit(
        course, "solution", assignment, without_cell(solution, grade_info(last_test)["grade_id"])
    )
    # the untouched notebook, except that its first test cell is emptied: autograde restores it
    first_test = next(c for c in release.cells if grade_info(c).get("grade"))
    submit(
        course, "blank", assignment, with_cell(release, grade_info(first_test)["grade_id"], "pass")
    )
    submit(course, "first_part", assignment, with_cell(release, first, first_source))
    if assignment in CHEATS:
        cell, shortcut, *_ = CHEATS[assignment]
        submit(course, "cheat", assignment, with_cell(solution, cell, shortcut))

    if assignment in TAMPERERS:
        cell, rigged, _ = TAMPERERS[assignment]
        submit(course, "tamperer", assignment, with_cell(solution, cell, rigged))

    from cnnlab.cli import main

    assert main(["--course", str(course), "autograde", assignment, "--jobs", "2"]) == 0
    got = scores(course, assignment)
    total = sum(points.values())

    def report(student):
        errors = cell_errors(course, student, assignment)
        return f"{student}: scores {got[student]}, failed cells {errors}"

    assert sum(got["solution"].values()) == total, report("solution")
    assert sum(got["blank"].values()) == 0, report("blank")
    want = {gid: (p if gid in tests[first] else 0.0) for gid, p in points.items()}
    assert got["first_part"] == want, report("first_part")
    if assignment in CHEATS:
        _, _, lost, *unavailable = CHEATS[assignment]
        failed = lost.union(*unavailable)
        want = {gid: (0.0 if gid in failed else p) for gid, p in points.items()}
        assert got["cheat"] == want, report("cheat")
        errors = cell_errors(course, "cheat", assignment)
        assert all("from scratch" in errors[gid] for gid in lost), errors
    if assignment in TAMPERERS:
        _, _, lost = TAMPERERS[assignment]
        want = {gid: (0.0 if gid in lost else p) for gid, p in points.items()}
        assert got["tamperer"] == want, report("tamperer")


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_passes_the_validator(assignment, tmp_path, monkeypatch):
    from nbgrader.validator import Validator

    # the environment nbgrader_config.py gives graded kernels
    for key, value in {
        "PYTHONWARNINGS": "ignore",
        "TQDM_DISABLE": "1",
        "MPLBACKEND": "Agg",
    }.items():
        monkeypatch.setenv(key, value)
    shutil.copytree(ROOT / "solutions" / assignment, tmp_path / assignment)
    result = Validator().validate(str(tmp_path / assignment / f"{assignment}.ipynb"))
    assert result == {}, json.dumps(result, indent=1)[:3000]
