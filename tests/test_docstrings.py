"""The ``>>>`` examples in the docstrings of cnnlab.nn, cnnlab.shapes and cnnlab.gradcheck run and
print what they say (readers copy them into notebooks)."""

import doctest
import importlib

import pytest

MODULES = [
    "cnnlab.shapes", "cnnlab.gradcheck", "cnnlab.nn.pad", "cnnlab.nn.conv", "cnnlab.nn.im2col",
    "cnnlab.nn.pool", "cnnlab.nn.activations", "cnnlab.nn.linear", "cnnlab.nn.loss",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": importlib.import_module("numpy")},
                             optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no >>> example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
