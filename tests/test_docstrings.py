"""Every ``>>>`` example in cnnlab's docstrings runs and prints what it says (readers copy them into
notebooks; graded cells copy cnnlab.grading's). The modules are found by reading the sources, so a
new module's examples cannot be forgotten."""

import doctest
import importlib
from pathlib import Path

import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnnlab"


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text():
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_examples_are_found():
    """The discovery above sees the modules we know have examples (guards against a broken glob)."""
    for name in ["cnnlab.nn.conv", "cnnlab.nn.fast", "cnnlab.shapes", "cnnlab.grading",
                 "cnnlab.grading.checks", "cnnlab.models.lenet", "cnnlab.train"]:
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no >>> example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
