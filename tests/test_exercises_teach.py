"""The visible tests teach: each usual wrong answer fails a visible test cell with its own hint.

Every entry of ``WRONG`` below is a mistake students make, written as the solution cell a student
would hand in. The test puts it into the STUDENT notebook (exercises/, hidden tests stripped), with
every other solution cell filled in correctly, runs the notebook with nbgrader's Validator (what
the Validate button runs) and asserts that the named visible test cell fails with a message that
contains the intended hint, shown as one short `error` output (no traceback through checks.py).
Wrong answers for different cells share one Validator run where they cannot interfere.

The correct answers (the solution cells) pass every visible test cell, and each prints exactly one
line, ``✓ <what it checked> (<points> points)``, to stdout, with the cell's points.

docs/exercises.md lists the same table for readers: keep the two in step (a test checks that every
wrong answer here is named there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(
    p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()
)


@dataclass(frozen=True)
class Wrong:
    """A wrong answer: ``source`` in solution cell ``cell`` must fail visible test ``test``."""

    assignment: str
    cell: str
    name: str  # what the student got wrong, as docs/exercises.md names it
    source: str
    test: str
    hint: str  # a piece of the failure message (case-insensitive)


CONV2D_NAIVE = '''def conv2d_naive(x, w, b):
    x, w, b = np.asarray(x, dtype=float), np.asarray(w, dtype=float), np.asarray(b, dtype=float)
    N, C, H, W = x.shape
    K, Cw, F, _ = w.shape
    if Cw != C or b.shape != (K,) or F > H or F > W:
        raise ValueError(f"bad shapes x {x.shape}, w {w.shape}, b {b.shape}")
    out = np.zeros((N, K, H - F + 1, W - F + 1))
    for n in range(N):
        for k in range(K):
            for i in range(H - F + 1):
                for j in range(W - F + 1):
                    out[n, k, i, j] = np.sum(x[n, :, i:i + F, j:j + F] * w[k]) + b[k]
    return out
'''

CONV_OUTPUT_SIZE = '''def conv_output_size(n, f, stride=1, pad=0):
    if f > n + 2 * pad or (n + 2 * pad - f) % stride:
        raise ValueError(f"a {f}x{f} filter does not fit {n}x{n}, stride {stride}, pad {pad}")
    return (n + 2 * pad - f) // stride + 1
'''

ZERO_PAD = '''def zero_pad(x, pad):
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    N, C, H, W = x.shape
    out = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    out[:, :, pad:pad + H, pad:pad + W] = x
    return out
'''

CONV2D = '''def conv2d(x, w, b, stride=1, pad=0):
    N, C, H, W = x.shape
    K, Cw, F, _ = w.shape
    if Cw != C:
        raise ValueError(f"x has {C} channels, w has {Cw}")
    Ho, Wo = conv_output_size(H, F, stride, pad), conv_output_size(W, F, stride, pad)
    xp = zero_pad(x, pad)
    out = np.zeros((N, K, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            block = xp[:, :, i * stride:i * stride + F, j * stride:j * stride + F]
            out[:, :, i, j] = block.reshape(N, -1) @ w.reshape(K, -1).T + b
    return out
'''


def variant(source: str, *replacements: tuple[str, str]) -> str:
    """``source`` with each (old, new) replaced once; fails if an ``old`` is not there."""
    for old, new in replacements:
        assert old in source, f"{old!r} not in the source"
        source = source.replace(old, new, 1)
    return source


WRONG = [
    # -- 02_convolution ----------------------------------------------------------------------
    Wrong(
        "02_convolution",
        "conv_single_step",
        "returns int(...)",
        "def conv_single_step(x_slice, w, b):\n"
        "    if np.shape(x_slice) != np.shape(w):\n"
        "        raise ValueError(f'{np.shape(x_slice)} vs {np.shape(w)}')\n"
        "    return int(np.sum(x_slice * w) + b)\n",
        "test_conv_single_step",
        "integer dtype",
    ),
    Wrong(
        "02_convolution",
        "conv_single_step",
        "forgets the bias",
        "def conv_single_step(x_slice, w, b):\n"
        "    if np.shape(x_slice) != np.shape(w):\n"
        "        raise ValueError(f'{np.shape(x_slice)} vs {np.shape(w)}')\n"
        "    return float(np.sum(x_slice * w))\n",
        "test_conv_single_step",
        "bias is missing",
    ),
    Wrong(
        "02_convolution",
        "conv_single_step",
        "uses np.convolve",
        "def conv_single_step(x_slice, w, b):\n"
        "    if np.shape(x_slice) != np.shape(w):\n"
        "        raise ValueError(f'{np.shape(x_slice)} vs {np.shape(w)}')\n"
        "    return float(np.convolve(np.ravel(x_slice), np.ravel(w)[::-1], 'valid')[0] + b)\n",
        "test_conv_single_step",
        "from scratch",
    ),
    Wrong(
        "02_convolution",
        "conv_single_step",
        "flips the filter",
        "def conv_single_step(x_slice, w, b):\n"
        "    if np.shape(x_slice) != np.shape(w):\n"
        "        raise ValueError(f'{np.shape(x_slice)} vs {np.shape(w)}')\n"
        "    return float(np.sum(x_slice * w[:, ::-1, ::-1]) + b)\n",
        "test_conv_single_step",
        "flipped",
    ),
    Wrong(
        "02_convolution",
        "conv_single_step",
        "no ValueError for mismatched shapes (broadcasts)",
        "def conv_single_step(x_slice, w, b):\n    return float(np.sum(x_slice * w) + b)\n",
        "test_conv_single_step",
        "broadcasts silently",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "forgets the biases",
        variant(CONV2D_NAIVE, (" * w[k]) + b[k]", " * w[k])")),
        "test_conv2d_naive",
        "biases are missing",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "integer output array",
        variant(CONV2D_NAIVE, ("W - F + 1))\n", "W - F + 1), dtype=int)\n")),
        "test_conv2d_naive",
        "integer dtype",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "flips the filters",
        variant(CONV2D_NAIVE, (" * w[k])", " * w[k, :, ::-1, ::-1])")),
        "test_conv2d_naive",
        "flipped",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "mixes up H and W (non-square input)",
        variant(CONV2D_NAIVE, ("(N, K, H - F + 1, W - F + 1)", "(N, K, H - F + 1, H - F + 1)"),
                ("range(W - F + 1)", "range(H - F + 1)")),
        "test_conv2d_naive",
        "do not mix up H and W",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "computes the first image only",
        variant(CONV2D_NAIVE, ("for n in range(N):", "for n in range(1):")),
        "test_conv2d_naive",
        "every image n",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "forgets `return out`",
        variant(CONV2D_NAIVE, ("    return out\n", "")),
        "test_conv2d_naive",
        "forget to `return`",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "no ValueError for the wrong number of biases",
        variant(CONV2D_NAIVE, (" or b.shape != (K,)", "")),
        "test_conv2d_naive_errors",
        "one bias per filter",
    ),
    # -- 03_stride_padding ------------------------------------------------------------------
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "returns a float (/ instead of //)",
        variant(CONV_OUTPUT_SIZE, ("// stride + 1", "/ stride + 1")),
        "test_conv_output_size",
        "use // (integer division)",
    ),
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "ignores the padding",
        variant(CONV_OUTPUT_SIZE, ("return (n + 2 * pad - f)", "return (n - f)")),
        "test_conv_output_size",
        "padding by (F - 1) / 2 keeps the size",
    ),
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "no ValueError when the stride does not fit",
        variant(CONV_OUTPUT_SIZE, (" or (n + 2 * pad - f) % stride", "")),
        "test_conv_output_size_errors",
        "2.33 is not whole",
    ),
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "an error message without the sizes",
        variant(CONV_OUTPUT_SIZE, ('f"a {f}x{f} filter does not fit {n}x{n}, stride {stride}, pad {pad}"',
                                   '"the filter does not fit"')),
        "test_conv_output_size_errors",
        "expected its message to mention",
    ),
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "no ValueError for a filter larger than the input",
        variant(CONV_OUTPUT_SIZE, ("f > n + 2 * pad or ", ""), ("% stride:", "% stride and f <= n + 2 * pad:")),
        "test_conv_output_size_errors",
        "F > N + 2P",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "an integer array (np.zeros(..., dtype=int))",
        variant(ZERO_PAD, ("W + 2 * pad))", "W + 2 * pad), dtype=int)")),
        "test_zero_pad",
        "integer dtype",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "uses np.pad",
        "def zero_pad(x, pad):\n"
        "    if pad < 0:\n"
        "        raise ValueError(f'pad must be >= 0, got {pad}')\n"
        "    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))\n",
        "test_zero_pad",
        "from scratch",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "pads the rows only",
        variant(ZERO_PAD, ("W + 2 * pad))", "W))"), ("pad:pad + W] = x", ":] = x")),
        "test_zero_pad",
        "H + 2P",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "returns x itself for pad 0",
        variant(ZERO_PAD, ("    N, C, H, W", "    if pad == 0:\n        return x\n    N, C, H, W")),
        "test_zero_pad",
        "return a copy",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "no ValueError for a negative pad",
        variant(ZERO_PAD, ("    if pad < 0:\n        raise ValueError(f\"pad must be >= 0, got {pad}\")\n", "")),
        "test_zero_pad",
        "negative pad is an error",
    ),
    Wrong(
        "03_stride_padding",
        "conv2d",
        "forgets to pad",
        variant(CONV2D, ("xp = zero_pad(x, pad)", "xp = x")),
        "test_conv2d",
        "pad x with your zero_pad first",
    ),
    Wrong(
        "03_stride_padding",
        "conv2d",
        "forgets the biases",
        variant(CONV2D, (".T + b", ".T")),
        "test_conv2d",
        "biases are missing",
    ),
    Wrong(
        "03_stride_padding",
        "conv2d",
        "ignores the stride when sliding",
        variant(CONV2D, ("xp[:, :, i * stride:i * stride + F, j * stride:j * stride + F]",
                         "xp[:, :, i:i + F, j:j + F]")),
        "test_conv2d",
        "windows start at rows and columns 0, 2, 4",
    ),
    Wrong(
        "03_stride_padding",
        "conv2d",
        "no ValueError for mismatched channels",
        variant(
            CONV2D,
            ("    if Cw != C:\n        raise ValueError(f\"x has {C} channels, w has {Cw}\")\n", ""),
            (
                "block.reshape(N, -1) @ w.reshape(K, -1).T + b",
                "[np.sum(block * w[k], axis=(1, 2, 3)) + b[k] for k in range(K)]",
            ),
            ("out[:, :, i, j] =", "out[:, :, i, j] = np.transpose("),
            ("for k in range(K)]", "for k in range(K)])"),
        ),
        "test_conv2d_errors",
        "full depth of its input",
    ),
]

# test cell -> every solution cell it calls, where that is more than the cell just above it
DEPENDS: dict[str, set[str]] = {
    "test_conv2d": {"conv_output_size", "zero_pad", "conv2d"},
    "test_conv2d_errors": {"conv_output_size", "zero_pad", "conv2d"},
}


def grade_info(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def owners(nb) -> dict[str, str]:
    """test cell grade id -> the solution cell above it."""
    result, current = {}, None
    for cell in nb.cells:
        info = grade_info(cell)
        if info.get("solution") and cell.cell_type == "code":
            current = info["grade_id"]
        elif info.get("grade"):
            result[info["grade_id"]] = current
    return result


def rounds(wrongs: list[Wrong], owner: dict[str, str]) -> list[list[Wrong]]:
    """Group wrong answers into Validator runs where none can change another's test cell."""
    groups: list[list[Wrong]] = []
    for w in wrongs:
        for group in groups:
            cells = {g.cell for g in group}
            tests = {g.test for g in group}
            reads = set().union(*(DEPENDS.get(g.test, {owner[g.test]}) for g in group))
            mine = DEPENDS.get(w.test, {owner[w.test]})
            if w.cell not in cells | reads and w.test not in tests and not (mine & cells):
                group.append(w)
                break
        else:
            groups.append([w])
    return groups


class RecordingValidator:
    """nbgrader's Validator, keeping the executed notebook so tests can read every output."""

    def __init__(self):
        from nbgrader.validator import Validator

        class _Validator(Validator):
            def _preprocess(inner, nb):  # noqa: N805
                inner.executed = super()._preprocess(nb)
                return inner.executed

        self.validator = _Validator()

    def run(self, path: Path):
        results = self.validator.validate(str(path))
        return results, self.validator.executed


def student_with(assignment: str, answers: dict[str, str]):
    """The student notebook with every solution cell answered: from ``answers``, else correctly."""
    student = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    correct = {
        grade_info(c)["grade_id"]: c.source for c in solution.cells if grade_info(c).get("solution")
    }
    for cell in student.cells:
        gid = grade_info(cell).get("grade_id")
        if grade_info(cell).get("solution"):
            cell.source = answers.get(gid, correct[gid])
    unknown = set(answers) - set(correct)
    assert not unknown, f"no solution cells {unknown} in {assignment}"
    return student


@pytest.fixture
def graded_env(monkeypatch):
    # the environment nbgrader_config.py gives graded kernels
    for key, value in {"PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}.items():
        monkeypatch.setenv(key, value)


def validate(tmp_path: Path, assignment: str, nb):
    folder = tmp_path / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    nbformat.write(nb, path)
    return RecordingValidator().run(path)


def outputs_by_id(nb) -> dict[str, list]:
    return {grade_info(c)["grade_id"]: c.get("outputs", []) for c in nb.cells if grade_info(c).get("grade")}


def error_of(outputs) -> dict | None:
    errors = [o for o in outputs if o.output_type == "error"]
    return errors[0] if errors else None


WRONG_BY_ASSIGNMENT = {a: [w for w in WRONG if w.assignment == a] for a in ASSIGNMENTS}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS if WRONG_BY_ASSIGNMENT[a]])
def test_wrong_answers_fail_visible_tests_with_their_hint(assignment, tmp_path, graded_env):
    solution = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    owner = owners(solution)
    problems = []
    for i, group in enumerate(rounds(WRONG_BY_ASSIGNMENT[assignment], owner)):
        nb = student_with(assignment, {w.cell: w.source for w in group})
        results, executed = validate(tmp_path / f"round{i}", assignment, nb)
        if "failed" not in results:
            problems.append(f"round {i} ({', '.join(w.name for w in group)}): nothing failed")
            continue
        outputs = outputs_by_id(executed)
        for w in group:
            err = error_of(outputs[w.test])
            if err is None:
                problems.append(f"{w.name!r} passed {w.test}")
                continue
            text = f"{err.ename}: {err.evalue}"
            if w.hint.lower() not in text.lower():
                problems.append(f"{w.name!r}: {w.test} failed without {w.hint!r}: {text}")
            if len(err.traceback) != 1:
                problems.append(f"{w.name!r}: {len(err.traceback)} traceback entries, expected 1")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_correct_answers_pass_with_one_line_each(assignment, tmp_path, graded_env):
    nb = student_with(assignment, {})
    results, executed = validate(tmp_path, assignment, nb)
    assert results == {}, json.dumps(results, indent=1)[:3000]
    for cell in executed.cells:
        info = grade_info(cell)
        if not info.get("grade"):
            continue
        outs = cell.get("outputs", [])
        lines = "".join(o.get("text", "") for o in outs).splitlines()
        assert [o.output_type for o in outs] == ["stream"] and outs[0].name == "stdout", (
            info["grade_id"], outs
        )
        assert len(lines) == 1 and lines[0].startswith("\u2713 "), (info["grade_id"], lines)
        points = float(re.search(r"\((\S+) points?\)$", lines[0]).group(1))
        assert points == float(info["points"]), (info["grade_id"], lines[0], info["points"])


def test_every_graded_cell_ends_with_its_pass_line():
    """Static: the last statement of every test cell is ``passed(..., points=<its points>)``."""
    import ast

    for assignment in ASSIGNMENTS:
        nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        for cell in nb.cells:
            info = grade_info(cell)
            if not info.get("grade"):
                continue
            last = ast.parse(cell.source).body[-1]
            call = getattr(last, "value", None)
            assert isinstance(call, ast.Call) and getattr(call.func, "id", "") == "passed", (
                f"{assignment}/{info['grade_id']}: the cell must end with passed(...)"
            )
            points = {k.arg: ast.literal_eval(k.value) for k in call.keywords}.get("points")
            assert points == info["points"], f"{assignment}/{info['grade_id']}: points={points}"


def test_docs_table_names_every_wrong_answer():
    text = (ROOT / "docs" / "exercises.md").read_text()
    missing = [f"{w.assignment}: {w.name}" for w in WRONG if f"| {w.name} |" not in text]
    assert not missing, "docs/exercises.md lacks the wrong answers:\n" + "\n".join(missing)
