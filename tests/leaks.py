"""What feedback must never show: the lines of an assignment's hidden tests.

>>> from leaks import hidden_lines  # tests/ on sys.path, as pytest puts it
"""

from __future__ import annotations


def hidden_lines(source_nb, release_nb) -> list[str]:
    """The lines (stripped, over 15 characters) between ``### BEGIN HIDDEN TESTS`` and ``### END
    HIDDEN TESTS`` in the instructor's notebook that the released notebook does not show anyway
    (``exception=ValueError,`` also in a visible test is no secret)."""
    shown = {line.strip() for c in release_nb.cells for line in c.source.split("\n")}
    out = []
    for c in source_nb.cells:
        inside = False
        for line in c.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 15 and line.strip() not in shown:
                out.append(line.strip())
    return out
