"""Reference results the notebook cannot tamper with.

Student code runs in the same kernel as the graded cells, so a notebook can reassign
``cnnlab.nn.conv2d`` (to make "compare with the reference" trivially pass) or ``np.allclose``.
The checks in :mod:`cnnlab.grading.checks` never use NumPy's comparison helpers; this module adds:

- :func:`reference`: a private copy of a ``cnnlab`` module, imported afresh from its files, so
  reassigning attributes of the notebook's ``cnnlab`` changes nothing in it;
- :func:`assert_untampered`: fails when a library namespace holds a function written in the
  notebook (a lambda, a ``def``, a ``functools.partial``) where the library's own function belongs;
- :func:`torch_functional`: ``torch.nn.functional``, after checking it and ``torch`` are untouched.

The limit, stated plainly: code in the same kernel can always rewrite the grader itself. These
guards stop the plausible shortcuts (and accidents); a notebook that patches ``cnnlab.grading`` is a
matter for the instructor, and `cnnlab` reports it as tampering when it notices.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import types

from cnnlab.grading.checks import CheckFailed

__all__ = ["TamperError", "reference", "assert_untampered", "torch_functional"]

_GRADING = "cnnlab.grading"
_fresh: dict[str, types.ModuleType] = {}
_INSTALLED = tuple(
    os.path.join(p, "")
    for p in {
        sys.prefix,
        sys.base_prefix,
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    }
)


class TamperError(CheckFailed):
    """A library function was replaced by code from the notebook."""


def _is_cnnlab(name: str) -> bool:
    return (name == "cnnlab" or name.startswith("cnnlab.")) and not (
        name == _GRADING or name.startswith(_GRADING + ".")
    )


def reference(name: str = "cnnlab.nn") -> types.ModuleType:
    """A private copy of the ``cnnlab`` module ``name``, imported afresh from its source files.

    The notebook's own ``cnnlab`` modules stay in ``sys.modules``, as they were; the copy (cached
    for the kernel's lifetime) shares only third-party modules (NumPy), which are checked with
    :func:`assert_untampered`.

    >>> import cnnlab.nn
    >>> ref = reference("cnnlab.nn")
    >>> ref.conv2d is not cnnlab.nn.conv2d
    True
    """
    if not _is_cnnlab(name):
        raise ValueError(f"reference() copies cnnlab modules (not {name!r}, not cnnlab.grading)")
    assert_untampered("numpy", "numpy.linalg", "numpy.lib.stride_tricks")
    if name not in _fresh:
        saved = {k: m for k, m in sys.modules.items() if _is_cnnlab(k)}
        for k in saved:
            del sys.modules[k]
        try:
            module = importlib.import_module(name)
            loaded = {k: m for k, m in sys.modules.items() if _is_cnnlab(k)}
        finally:
            for k in [k for k in sys.modules if _is_cnnlab(k)]:
                del sys.modules[k]
            sys.modules.update(saved)
        for k, m in loaded.items():
            _fresh.setdefault(k, m)
        _fresh[name] = module
    return _fresh[name]


def _written_in_notebook(value) -> str | None:
    """Where ``value`` was defined if outside installed code (a notebook cell); else None."""
    if isinstance(value, functools.partial):
        return "a functools.partial made in the notebook"
    if isinstance(value, types.MethodType):
        value = value.__func__
    if isinstance(value, types.FunctionType):
        filename = value.__code__.co_filename
        if not filename.startswith(_INSTALLED):
            return filename
        return None
    if isinstance(value, (type, types.ModuleType, types.BuiltinFunctionType)):
        module = getattr(value, "__module__", None) if isinstance(value, type) else None
        return "__main__" if module == "__main__" else None
    cls = type(value)
    if cls.__module__ == "__main__" and callable(value):
        return f"an instance of {cls.__name__} from the notebook"
    return None


def assert_untampered(*modules: str) -> None:
    """Fail if a public function of any of these (already imported) modules is notebook code.

    >>> assert_untampered("numpy", "numpy.testing")
    """
    problems = []
    for modname in modules:
        module = sys.modules.get(modname)
        if module is None:
            continue
        for attr, value in list(vars(module).items()):
            if attr.startswith("__"):
                continue
            where = _written_in_notebook(value)
            if where:
                problems.append(f"{modname}.{attr} (now defined in {where})")
    if problems:
        raise TamperError(
            "the notebook replaced library functions the grader relies on: "
            + ", ".join(problems[:5])
            + ". Remove those assignments, restart the kernel and run all cells."
        )


def torch_functional() -> types.ModuleType:
    """``torch.nn.functional`` for reference results, once it and ``torch`` are checked."""
    import torch.nn.functional as F

    assert_untampered("torch", "torch.nn.functional", "numpy")
    return F
