"""A plain folder (or zip) laid out by hand, nbgrader's own submitted layout included:
``<student>.ipynb`` (the assignment's notebook, whatever it is called),
``<student>/<notebook>.ipynb`` or ``<student>/<assignment>/<notebook>.ipynb``; a
``timestamp.txt`` next to the notebook is kept."""

from __future__ import annotations

from .base import STUDENT_RE, Attribution

NAME = "plain"


def parse(parts: list[str], assignment: str) -> Attribution | str:
    """The attribution, or why the name does not fit the layout."""
    stem = parts[-1].rsplit(".", 1)[0]
    if len(parts) == 1:
        if STUDENT_RE.match(stem):
            return Attribution(lms=NAME, key=stem, slug=stem, display_name=stem, file_stem=None)
        return f"cannot tell the student from the file name {parts[-1]!r}"
    if len(parts) == 2 or (len(parts) == 3 and parts[1] == assignment):
        if STUDENT_RE.match(parts[0]):
            return Attribution(lms=NAME, key=parts[0], slug=parts[0], display_name=parts[0],
                               file_stem=stem)
        return f"folder name {parts[0]!r} is not a valid student id"
    return (f"unexpected folder depth in {'/'.join(parts)!r} (expected <student>.ipynb or "
            "<student>/<notebook>.ipynb)")
