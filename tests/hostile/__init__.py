"""The hostile corpus of the trusted grader: one ``Case`` per trick, each its own student.

>>> from hostile import CASES, honest_bases  # tests/ on sys.path, as pytest puts it
>>> sorted({c.assignment for c in CASES})  # doctest: +SKIP
['02_convolution', '03_stride_padding', '06_conv_backward', '08_architectures']

Modules, by what the trick attacks: ``checkers`` (the check functions), ``kernel`` (the kernel and
nbgrader's reading of outputs), ``escape`` (the operating system: shells, /proc, signals, forged
results, detached and leftover processes, disk, fork bomb), ``scratch`` (the from-scratch rule),
``values`` (what an answer returns or raises), ``handles`` (callbacks and modules the tests pass
around), ``notebook`` (the notebook file's cells and metadata). ``bases`` holds the honest
notebooks the cases start from; ``case`` the ``Case`` type and how a notebook is built.
"""

from __future__ import annotations

from . import checkers, escape, handles, kernel, notebook, scratch, values
from .bases import base_notebook, base_student
from .case import Case, Places, build

CASES: list[Case] = [
    *checkers.cases(), *kernel.cases(), *escape.cases(), *scratch.cases(), *values.cases(),
    *handles.cases(), *notebook.cases(),
]

_ids = [c.student for c in CASES]
assert len(_ids) == len(set(_ids)), f"two cases share a student id: {sorted(_ids)}"


def honest_bases(cases: list[Case]) -> set[tuple[str, str]]:
    """(assignment, base) of every honest student the cases start from or are compared with,
    plus each assignment's stub and solution."""
    out = set()
    for c in cases:
        out |= {(c.assignment, c.base), (c.assignment, c.deserves),
                (c.assignment, "stub"), (c.assignment, "solution")}
    return out


__all__ = ["CASES", "Case", "Places", "base_notebook", "base_student", "build", "honest_bases"]
