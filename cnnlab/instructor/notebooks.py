"""Small helpers on nbgrader notebooks: which cells are graded, solution regions, test cells."""

from __future__ import annotations

import re

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test_cell(cell) -> bool:
    """A graded cell that is not a solution: an autograder test (code) cell."""
    m = nbg(cell)
    return bool(m.get("grade")) and not m.get("solution") and cell.get("cell_type") == "code"


def is_solution_cell(cell) -> bool:
    return bool(nbg(cell).get("solution"))


def strip_hidden_tests(source: str, placeholder: str = "# (hidden tests: not shown)") -> str:
    """``source`` with every hidden-test region replaced by one placeholder line."""
    out, inside = [], False
    for line in source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
            indent = re.match(r"\s*", line).group(0)
            out.append(indent + placeholder)
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def keep_solutions(source: str) -> str:
    """The instructor's code with the solution markers removed (what a perfect student writes)."""
    lines = source.split("\n")
    return "\n".join(x for x in lines if BEGIN_SOLUTION not in x and END_SOLUTION not in x)

