"""Fixtures shared by the test files: the repository's root, the digits, one thread for tiny
models, a toy course and sample submissions to it. Heavy imports happen inside the fixtures, so
a test file that needs none of them does not pay for PyTorch or nbgrader."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder (where pyproject.toml is)."""
    return ROOT


@pytest.fixture(scope="session")
def digits():
    """``cnnlab.data.load_digits()``: the fixed train/val/test split of the 8x8 digits, tensors."""
    from cnnlab.data import load_digits

    return load_digits()


@pytest.fixture(scope="module")
def one_thread():
    """One PyTorch thread and one BLAS thread for the module: tiny models train fastest on one,
    and on a busy 2-core machine two threads spin against each other (an epoch 10-50x slower).
    Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def make_toy_course(tmp_path_factory):
    """``make_toy_course(name, released=False)``: a fresh toy course (``cnnlab.instructor.demo``:
    ``square`` 3 points, ``cube`` 2) in a new temporary folder, as a loaded ``Course``."""
    from cnnlab.instructor import demo, release
    from cnnlab.instructor.course import Course

    def make(name: str = "course", released: bool = False):
        course = Course.load(demo.toy_course(tmp_path_factory.mktemp(name)))
        if released:
            release.release(course, log=lambda *a: None)
        return course

    return make


@pytest.fixture(scope="session")
def sample_submission():
    """``sample_submission(course, kind)``: a student's toy notebook for a released course,
    ``kind`` one of ``demo``'s "correct", "partial", "blank"."""
    import nbformat

    from cnnlab.instructor import demo

    def make(course, kind: str = "correct"):
        src = nbformat.read(str(course.source / "toy" / "toy.ipynb"), 4)
        rel = nbformat.read(str(course.release / "toy" / "toy.ipynb"), 4)
        return demo.sample_submission(src, rel, kind)

    return make
# The environment nbgrader_config.py gives graded kernels: nbgrader scores a test cell 0 when it
# writes to stderr, so no warnings, no progress bars, no GUI backend.
GRADED_KERNEL_ENV = {"PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}


@pytest.fixture
def graded_env(monkeypatch):
    """Run kernels started by the test (nbgrader's Validator) as graded kernels run."""
    for key, value in GRADED_KERNEL_ENV.items():
        monkeypatch.setenv(key, value)
