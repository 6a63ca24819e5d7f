"""The trusted runner's parts, without a kernel: the by-value codec (and what it refuses), the
static from-scratch rules, the cell plan, and a student process served over a real channel."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from cnnlab.grading import FromScratchError, check_from_scratch
from cnnlab.grading.scratch import DEFAULT_FORBIDDEN
from cnnlab.instructor.runner import protocol as P
from cnnlab.instructor.runner.channel import Channel
from cnnlab.instructor.runner.grade import plan_cells
from cnnlab.instructor.runner.proxy import ChangedArgument, Remote, SandboxFailure, Session
from cnnlab.instructor.runner.scratch import Analysis

# -------------------------------------------------------------------------------- the codec


def roundtrip(value):
    frame, _ = P.encode({}, {"v": value})
    message, blobs = P.split_frame(frame)
    return P.value_of(message, "v", blobs)


def test_plain_values_cross_by_value():
    value = {"a": (1, 2.5, None, True), 3: [b"\x00\x01", "s", float("nan"), -float("inf")],
             (1, 2): complex(1, -2)}
    got = roundtrip(value)
    assert got.keys() == value.keys() and got["a"] == value["a"] and got[(1, 2)] == 1 - 2j
    assert got[3][:2] == [b"\x00\x01", "s"] and np.isnan(got[3][2]) and got[3][3] == -np.inf
    arr = np.arange(12.0).reshape(3, 4)
    back = roundtrip([arr, np.int64(7), np.float32(0.5)])
    assert back[0].shape == (3, 4) and (back[0] == arr).all()
    assert type(back[1]) is np.int64 and type(back[2]) is np.float32


def test_objects_do_not_cross_without_export():
    for bad in (object(), np.array([object()]), lambda: 1, open):
        with pytest.raises(TypeError):
            P.encode({}, {"v": bad})


def frame_of(message: dict, blobs=()):
    body = json.dumps(message).encode()
    out = struct.pack(">I", len(body)) + body
    for b in blobs:
        out += struct.pack(">Q", len(b)) + b
    return out


@pytest.mark.parametrize("message, blobs, why", [
    ({"v": {"a": 0}}, [b"\x93NUMPY junk"], "not a .npy"),
    ({"v": {"x": 1}}, [], "tag"),
    ({"v": {"h": [1, "object", "f", []]}}, [], "tag"),  # a handle where none is accepted
    ({"v": {"b": 5}}, [], "no blob"),
    ({"v": {"d": [[[1], 2]]}}, [], "unhashable"),
])
def test_hostile_frames_are_refused(message, blobs, why):
    m, b = P.split_frame(frame_of(message, blobs))
    with pytest.raises(P.ProtocolError, match=why):
        P.value_of(m, "v", b)


def test_object_arrays_and_deep_nesting_are_refused():
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    m, b = P.split_frame(frame_of({"v": {"a": 0}}, [buf.getvalue()]))
    with pytest.raises(P.ProtocolError):
        P.value_of(m, "v", b)
    deep = [[]]
    for _ in range(P.MAX_DEPTH + 5):
        deep = [deep]
    m, b = P.split_frame(frame_of({"v": deep}))
    with pytest.raises(P.ProtocolError, match="nested"):
        P.value_of(m, "v", b)
    with pytest.raises(P.ProtocolError):
        P.split_frame(struct.pack(">I", 100) + b"{}")


def test_messages_round_trip_through_json():
    settings = P.Settings(timeout=5, importable=("numpy", "torch"), deadline=60)
    job = P.Job("ada", "02", {"02": b"{}"}, {"02": b"src"}, {"02": b"rel"}, settings)
    assert P.Job.from_json(json.loads(json.dumps(job.to_json()))) == job
    res = P.Result("ada", "02", [P.Verdict("02", "t", 3.0, 0.0, "CheckFailed: x")], ["f"],
                   {"02": b"nb"}, 1.5, {"02/t": 0.1}, unsafe=True)
    assert P.Result.from_json(json.loads(json.dumps(res.to_json()))) == res
    assert not res.verdicts[0].passed


def test_exception_types_are_allow_listed():
    class Mine(ValueError):
        pass

    assert P.exception_type_name(Mine()) == "ValueError"
    assert P.exception_type_name(KeyboardInterrupt()) == "Exception"
    assert isinstance(P.RemoteError("SystemExit", "x").exception(), Exception)


# ---------------------------------------------------------------------- from scratch, statically

CONTEXT = ["import numpy as np\nfrom cnnlab.grading import check_close"]


@pytest.mark.parametrize("source, found", [
    ("def f(x):\n    return np.sum(x * x) + np.dot(x, x)", None),
    ("def f(x):\n    return np.convolve(x, x)", "numpy.convolve"),
    ("from numpy import correlate as c\ndef f(x):\n    return c(x, x)", "numpy.correlate"),
    ("h = np.lib.stride_tricks.sliding_window_view\ndef g(x):\n    return h(x, 2)\n"
     "def f(x):\n    return g(x)", "sliding_window_view"),
    ("def f(x):\n    return np.lib._stride_tricks_impl.as_strided(x)", "as_strided"),
    ("def f(x):\n    return getattr(np, 'conv' + 'olve')(x, x)", "getattr"),
    ("def f(x):\n    return np.__dict__['convolve'](x, x)", "__dict__"),
    ("def f(x, m=np.lib):\n    return m.stride_tricks.as_strided(x)", "as a value"),
    ("np.sum = np.convolve\ndef f(x):\n    return np.sum(x)", "replaces at the top level"),
    ("def f(x):\n    import scipy.signal\n    return scipy.signal.convolve2d(x, x)", "scipy"),
    ("def f(x):\n    return np.ndarray((2, 2), buffer=x, strides=(8, 8))", "strided view"),
    ("from numpy import *\ndef f(x):\n    return convolve(x, x)", "numpy.convolve"),
    ("exec('np.sum = np.convolve')\ndef f(x):\n    return np.sum(x)", "exec"),
    ("class K:\n    def __call__(self, x):\n        return np.correlate(x, x)\nf = K()",
     "correlate"),
    ("import cnnlab.nn\ndef f(x):\n    return cnnlab.nn.conv2d(x)", "cnnlab.nn.conv2d"),
    # the hostile corpus's bypasses of the first trusted grader (t02ndarraypos, t02dummyarray,
    # t02typehints, t02formatter, t02globalinstall)
    ("def f(x):\n    return np.ndarray((2, 2), x.dtype, x, 0, (8, 8))", "strided view"),
    ("def f(x):\n    return np.asarray(np.lib._stride_tricks_impl.DummyArray({}, base=x))",
     "private name"),
    ("import typing\ndef s(v: 'np.convolve'):\n    pass\n"
     "def f(x):\n    return typing.get_type_hints(s)['v'](x, x)", "by string"),
    ("import string\ndef f(x):\n    return string.Formatter().get_field('0.convolve', (np,), "
     "{})[0](x, x)", "by string"),
    ("def f(x):\n    return x\ndef _g(x):\n    return np.convolve(x, x)\n"
     "def _install():\n    global f\n    f = _g\n_install()", "numpy.convolve"),
    ("import typing\ndef f(x: typing.Any) -> float:\n    return float(np.sum(x))", None),
])
def test_static_from_scratch_rules(source, found):
    got = Analysis([source], CONTEXT, ("numpy", "cnnlab.grading")).violations(["f"],
                                                                               DEFAULT_FORBIDDEN)
    if found is None:
        assert got == []
    else:
        assert got and any(found in g for g in got), got


def test_unrelated_top_level_replacement_does_not_count():
    a = Analysis(["np.allclose = lambda *a: True\ndef f(x):\n    return np.sum(x)"], CONTEXT)
    assert a.violations(["f"], DEFAULT_FORBIDDEN) == []


# ---------------------------------------------------------------------------- the cell plan


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    for kind, gid, source, meta in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(make(source, metadata={"nbgrader": {"grade_id": gid, **meta}}
                             if gid else {}))
    return nb


def test_plan_takes_tests_from_the_source_and_answers_from_the_submission():
    lock = {"locked": True, "solution": False, "grade": False}
    source = _nb(("code", "setup", "import numpy as np", lock),
                 ("code", "f", "def f(x):\n    return x", {"solution": True, "grade": False}),
                 ("code", "t", "assert f(1) == 1", {"grade": True, "solution": False,
                                                    "points": 1, "locked": True}),
                 ("code", "run", "model = f(2)", lock))
    submitted = _nb(("code", "setup", "import os  # edited", lock),
                    ("code", "f", "def f(x):\n    return x + 0", {"solution": True}),
                    ("code", None, "helper = 1", {}),
                    ("code", "t", "pass", {"grade": True}))
    steps, names = plan_cells(source, submitted)
    assert [(s.kind, s.name) for s in steps] == [
        ("both", "setup"), ("student", "f"), ("student", "added cell"), ("test", "t"),
        ("sandbox", "run")]
    assert steps[0].cell.source == "import numpy as np" and steps[3].cell.source.startswith(
        "assert")
    assert steps[1].cell.source.endswith("x + 0")
    assert names == {"f", "model"}


# ------------------------------------------------------------- a student process, served


class _Plain:
    """The sandbox's interface over a plain child process (this test's stand-in: what runs
    inside is the real student side; the isolation is the sandbox tests' business)."""

    def __init__(self):
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        code = (f"import os, sys, runpy; os.dup2({to_child}, 3); os.dup2({from_child}, 4); "
                "sys.argv = ['student']; runpy.run_module('cnnlab.instructor.runner.student', "
                "run_name='__main__')")
        self.proc = subprocess.Popen([sys.executable, "-c", code],
                                     pass_fds=(to_child, from_child))
        os.close(to_child)
        os.close(from_child)
        self.channel = Channel(to_parent, from_parent)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


@pytest.fixture
def session():
    sb = _Plain()
    frame, _ = P.encode({"max_output": 1000}, {})
    sb.channel.send(frame)
    assert P.split_frame(sb.channel.recv(30, 1000))[0] == {"hello": 1}
    s = Session(sb, P.Settings(timeout=20), Analysis([STUDENT], CONTEXT))
    s.deadline = __import__("time").monotonic() + 60
    yield s
    s.close()


STUDENT = """
import numpy as np

def numerical_gradient(f, x, dout, h=1e-5):
    grad = np.zeros_like(x, dtype=float)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        minus = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad

def scale_in_place(x):
    x *= 2

def double(x):
    return 2 * x

class Box:
    def __init__(self):
        self.items = [1, 2, 3]
    def __len__(self):
        return len(self.items)
    def __iter__(self):
        return iter(self.items)

def cheat(x):
    return np.convolve(x, x)

def boom():
    import os
    os._exit(3)
"""


def test_calls_callbacks_and_copy_back(session):
    assert session.run_cell(STUDENT, "answer", False) is None
    ns = session.names(["numerical_gradient", "scale_in_place", "Box", "missing"])
    assert "missing" not in ns and all(type(v) is Remote for v in ns.values())
    # a test's own function reads the array it closed over, which the student perturbs in place
    x = np.arange(6.0).reshape(2, 3)
    before = x.copy()
    dout = np.ones((2, 3))
    grad = ns["numerical_gradient"](lambda _: x ** 2, x, dout)
    assert np.allclose(grad, 2 * before) and (x == before).all()
    # without a callback, an in-place change of the test's array is an error, never copied back
    # (it could rewrite what the test computes as "expected" afterwards)
    y = np.ones(3)
    with pytest.raises(ChangedArgument, match="in place"):
        ns["scale_in_place"](y)
    assert (y == 1).all()
    box = ns["Box"]()
    assert len(box) == 3 and list(box) == [1, 2, 3] and box.items == [1, 2, 3]
    box.items = [4]
    assert len(box) == 1
    assert not hasattr(box, "__array_interface__")  # no dunder reaches into the sandbox
    with pytest.raises(TypeError):
        ns["numerical_gradient"](object(), x, dout)


def test_from_scratch_is_judged_on_the_source(session):
    session.run_cell(STUDENT, "answer", False)
    ns = session.names(["cheat", "double"])
    with pytest.raises(FromScratchError, match="numpy.convolve"):
        check_from_scratch(ns["cheat"], np.ones(3), name="cheat")
    check_from_scratch(ns["double"], np.ones(3))


def test_student_errors_cross_as_builtin_types_and_death_is_final(session):
    session.run_cell(STUDENT + "\nclass MyError(ValueError): pass\n"
                     "def bad():\n    raise MyError('no')\n", "answer", False)
    ns = session.names(["bad", "boom"])
    with pytest.raises(ValueError, match="no"):
        ns["bad"]()
    with pytest.raises(SandboxFailure, match="ended"):
        ns["boom"]()
    with pytest.raises(SandboxFailure):
        ns["bad"]()


# ---------------------------------------------------------------------- what feedback shows

@pytest.mark.parametrize("link", [
    "JavaScript:alert(1)", "java&#115;cript:alert(1)", "java&amp;#115;cript:alert(1)",
    "java\\script:alert(1)", "data:text/html,<b>x</b>", "VBScript:x",
])
def test_student_markdown_links_cannot_run_code(link):
    import mistune

    from cnnlab.instructor.runner.grade import _safe_markdown

    page = mistune.html(_safe_markdown(f"[notes]({link}) <img src=x onerror=alert(1)>"))
    assert 'href="#"' in page and "<img" not in page, page
    kept = mistune.html(_safe_markdown("[book](https://example.org/ch2) [rel](02-conv.md)"))
    assert 'href="https://example.org/ch2"' in kept and 'href="02-conv.md"' in kept


def test_changed_grading_metadata_is_flagged():
    from nbformat.v4 import new_code_cell, new_notebook

    from cnnlab.instructor.scan import scan_notebook

    def nb(points):
        test = new_code_cell("assert f() == 1", metadata={"nbgrader": {
            "grade_id": "t", "grade": True, "solution": False, "locked": True,
            "points": points}})
        return new_notebook(cells=[test])

    assert scan_notebook(nb(1), nb(1)) == []
    flags = scan_notebook(nb(100), nb(1))
    assert any("metadata was changed" in f and "points 1 -> 100" in f for f in flags), flags


def test_workers_share_the_cores_out(monkeypatch):
    from cnnlab.instructor.autograde import THREAD_ENV, _init_worker, worker_threads

    assert [worker_threads(j, cpus=2) for j in (1, 2, 3)] == [2, 1, 1]
    assert worker_threads(4, cpus=16) == 4
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # what the instructor set is kept
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        _init_worker(1)
        if torch is not None:
            assert torch.get_num_threads() == 1
    finally:
        if torch is not None:
            torch.set_num_threads(before)
    assert os.environ["OMP_NUM_THREADS"] == os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "3"
