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


def test_torch_is_the_cpu_build():
    """A looser torch range pulls a multi-GB CUDA build: pyproject pins 2.13.0, and what is
    installed is that version built without CUDA (the ``+cpu`` wheel)."""
    import torch

    assert "torch==2.13.0" in _requirements()
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    local = torch.__version__.partition("+")[2]
    assert local in ("", "cpu"), f"torch {torch.__version__} is not the CPU build"
    assert torch.version.cuda is None, f"torch was built for CUDA {torch.version.cuda}"
    assert not torch.backends.cuda.is_built()


def test_jupyter_book_stays_on_1x():
    """Jupyter Book 2.x is a different tool (MyST-JS); the course is built with 1.x."""
    (jb,) = [r for r in _requirements() if r.startswith("jupyter-book==")]
    assert jb.split("==")[1].startswith("1."), jb


def _ruff() -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: run `make venv`"
    return ruff


def test_ruff_checks_every_python_file_of_the_package(repo_root):
    """No exclude pattern may hide part of cnnlab/ from the linter (a bare "grading" matches every
    folder of that name, cnnlab/grading/ included)."""
    listed = subprocess.run([_ruff(), "check", "--show-files", "."], cwd=repo_root,
                            capture_output=True, text=True, check=True).stdout
    checked = {Path(line.strip()).resolve() for line in listed.splitlines() if line.strip()}
    package = {p.resolve() for p in (repo_root / "cnnlab").rglob("*.py")}
    missed = sorted(str(p.relative_to(repo_root)) for p in package - checked)
    assert not missed, f"ruff does not check {missed}: fix extend-exclude in pyproject.toml"


def test_ruff_is_clean():
    """One linter, configured in pyproject.toml, over the whole repository."""
    result = subprocess.run([_ruff(), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_github_workflow_runs_the_whole_test_command(repo_root):
    """CI on GitHub runs what .ci/run runs (`make test`), not a hand-picked subset of the tests."""
    import yaml

    assert (repo_root / ".ci" / "run").read_text().strip().endswith("make test")
    workflows = sorted((repo_root / ".github" / "workflows").glob("*.yml"))
    for path in workflows:
        steps = [s for job in yaml.safe_load(path.read_text())["jobs"].values()
                 for s in job.get("steps", [])]
        runs = [s.get("run", "").strip() for s in steps]
        if any("pytest" in r or "make book" in r for r in runs):
            assert any(r in ("bash .ci/run", "make test") for r in runs), (
                f"{path.name} runs tests but not the whole test command: {runs}"
            )
            assert not any("pytest" in r for r in runs), f"{path.name} picks tests by hand"
    assert any("bash .ci/run" in path.read_text() for path in workflows), "no workflow runs .ci/run"


def test_the_docs_speak_of_the_repository_alone(repo_root):
    """README, CONTRIBUTING and docs/ point at files inside the repository, never at a folder beside
    it (a reader of a clone has nothing there)."""
    pages = [repo_root / "README.md", repo_root / "CONTRIBUTING.md",
             *sorted((repo_root / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        for outside in ("../shared", "/work/", "STYLE.md"):
            assert outside not in text, f"{page.name} mentions {outside!r}"
