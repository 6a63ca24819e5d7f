"""The repository's own contract: pinned dependencies in one place, lint-clean code."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += [r for r in extra if not r.startswith("cnnlab[")]
    return reqs


@pytest.mark.parametrize("requirement", _requirements())
def test_every_dependency_is_pinned_exactly(requirement):
    """A course must build the same in three years: every requirement is `name==version`."""
    assert "==" in requirement and not any(op in requirement for op in (">", "<", "~", "!")), (
        f"{requirement!r} is not pinned with '=='; pin it in pyproject.toml"
    )


def test_torch_is_the_cpu_build_on_disk():
    """A looser torch range pulls a multi-GB CUDA build; 2.13.0 is the CPU wheel on this machine."""
    assert "torch==2.13.0" in _requirements()


def test_jupyter_book_stays_on_1x():
    """Jupyter Book 2.x is a different tool (MyST-JS); the course is built with 1.x."""
    (jb,) = [r for r in _requirements() if r.startswith("jupyter-book==")]
    assert jb.split("==")[1].startswith("1."), jb


def test_ruff_is_clean():
    """One linter, configured in pyproject.toml, over the whole repository."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: run `make venv`"
    result = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
