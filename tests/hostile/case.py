"""One hostile submission (a ``Case``) and how it is built from an honest base notebook.

A case starts from a named honest base of its assignment (``bases.py``: the release stub, answers
that return zeros of the right shape, the instructor's solution, ...), changes some cells, and says
what it deserves: the score the same batch gives the honest base student ``like`` (default: its
own base), minus the points of the test cells listed in ``fails``; ``at_most`` relaxes that to "no
more than" for tricks that may legitimately cost more (a hung or killed sandbox fails the
remaining tests).

Cell code is a ``string.Template``: ``$name`` is replaced by the batch's paths (see ``Places``), so
a case can aim at the real gradebook, the instructor's solutions, a classmate's files.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Callable
from dataclasses import dataclass, field

import nbformat
from nbformat.v4 import new_code_cell

from cnnlab.instructor.notebooks import nbg


@dataclass(frozen=True)
class Places:
    """Where things are in the batch's scratch course (what a hostile cell aims at)."""

    mark: str          # a token unique to this run; every process a case starts carries it
    root: str          # the scratch course directory
    gradebook: str     # grading/gradebook.db
    source_nb: str     # the instructor's notebook of the case's assignment (hidden tests)
    victim: str        # an honest classmate's student id
    victim_nb: str     # the classmate's submitted notebook
    victim_graded: str  # the classmate's autograded notebook (exists once graded)
    secret_env: str    # the NAME of a variable only the instructor's shell holds
    sleep: int         # seconds a detached process waits before it strikes

    def fill(self, code: str) -> str:
        return string.Template(code).substitute(vars(self))


@dataclass(frozen=True)
class Case:
    """One trick, one student."""

    student: str
    assignment: str
    base: str
    note: str
    append: dict[str, str] = field(default_factory=dict)   # grade_id -> code after the base's
    replace: dict[str, str] = field(default_factory=dict)  # grade_id -> the cell's new source
    insert: dict[str, str] = field(default_factory=dict)   # grade_id -> a new code cell after it
    edit: Callable[[nbformat.NotebookNode, Places], None] | None = None  # notebook-level
    flag: str | None = None   # a substring of the grader's flags when it should notice
    like: str | None = None   # the honest base whose score it deserves (default: base)
    fails: tuple[str, ...] = ()  # test cells its honest content fails on top of ``like``'s
    at_most: bool = False     # deserves no more than that (a killed sandbox may cost more)

    @property
    def deserves(self) -> str:
        return self.like or self.base


def cell(nb, grade_id: str):
    try:
        return next(c for c in nb.cells if nbg(c).get("grade_id") == grade_id)
    except StopIteration:
        raise ValueError(f"no cell with grade_id {grade_id!r} in the notebook") from None


def build(case: Case, base_nb: nbformat.NotebookNode, places: Places) -> nbformat.NotebookNode:
    """The case's notebook: ``base_nb`` (not modified) with the case's changes."""
    nb = copy.deepcopy(base_nb)
    for gid, code in case.replace.items():
        cell(nb, gid).source = places.fill(code)
    for gid, code in case.append.items():
        c = cell(nb, gid)
        c.source = c.source + "\n\n" + places.fill(code)
    for gid, code in case.insert.items():
        i = nb.cells.index(cell(nb, gid))
        nb.cells.insert(i + 1, new_code_cell(places.fill(code)))
    if case.edit is not None:
        case.edit(nb, places)
    return nb
