"""The layouts of LMS downloads ``cnnlab collect`` reads, one module each: ``canvas``, ``moodle``,
``blackboard`` and ``plain`` (a folder laid out by hand). ``detect`` picks the layout most file
names follow; ``attribute`` reads one name in a given layout."""

from __future__ import annotations

from pathlib import PurePosixPath

from . import blackboard, canvas, moodle, plain
from .base import Attribution

LAYOUTS = ("canvas", "moodle", "blackboard", "plain")
_SPECIFIC = {"canvas": canvas, "moodle": moodle, "blackboard": blackboard}


def _parts(name: str, assignment: str) -> list[list[str]]:
    """Path components to try: as they are, and without one wrapping folder (an LMS zip is
    often unpacked into, or wraps everything in, a folder named after the download)."""
    parts = list(PurePosixPath(name).parts)
    out = [parts]
    if len(parts) > 1:
        out.append(parts[1:])
    return out


def _specific(layout: str, name: str, assignment: str, timezone: str,
              receipts) -> Attribution | None:
    mod = _SPECIFIC[layout]
    for parts in _parts(name, assignment):
        att = (mod.parse(parts, timezone, receipts) if mod is blackboard else mod.parse(parts))
        if att is not None:
            return att
    return None


def detect(names: list[str], assignment: str) -> str:
    """The layout that reads most of ``names`` (Canvas, Moodle, Blackboard); ``plain`` when none
    reads any."""
    counts = {lay: sum(_specific(lay, n, assignment, "UTC", None) is not None for n in names)
              for lay in _SPECIFIC}
    best = max(_SPECIFIC, key=lambda lay: counts[lay])  # ties: the order of LAYOUTS
    return best if counts[best] else "plain"


def attribute(name: str, assignment: str, layout: str, timezone: str = "UTC",
              receipts: dict | None = None, strict: bool = False) -> Attribution | str:
    """The attribution of one file of the download, or why it has none.

    ``layout`` first; unless ``strict`` (``--lms`` given), the other layouts are tried too."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown LMS layout {layout!r}: cnnlab reads {', '.join(LAYOUTS)}")
    order = [layout] + ([] if strict else [x for x in LAYOUTS if x != layout])
    why = None
    for lay in order:
        if lay == "plain":
            parts = list(PurePosixPath(name).parts)
            if len(parts) > 1 and parts[0] in (assignment, "submissions"):
                parts = parts[1:]
            got = plain.parse(parts, assignment)
            if isinstance(got, Attribution):
                return got
            why = why or got
        else:
            att = _specific(lay, name, assignment, timezone, receipts)
            if att is not None:
                return att
            if strict:
                why = f"not a {lay.capitalize()} download name"
    return why or f"cannot tell the student from {name!r}"
