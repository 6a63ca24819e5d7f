"""Due dates and late penalties, through nbgrader's own late-submission plugin.

The due date lives in the gradebook (nbgrader's ``Assignment.duedate``, set by ``cnnlab due``);
a submission's time comes from its ``timestamp.txt`` (written by ``cnnlab collect``, read by
nbgrader's autograder). The penalty is whatever the plugin configured in ``nbgrader_config.py``
says, exactly as ``nbgrader autograde`` would assign it::

    c.AssignLatePenalties.plugin_class = "nbgrader.plugins.LateSubmissionPlugin"
    c.LateSubmissionPlugin.penalty_method = "zero"          # or "none" (nbgrader's default)

    c.AssignLatePenalties.plugin_class = "cnnlab.instructor.late.PerDayPenalty"
    c.PerDayPenalty.fraction_per_day = 0.1                  # 10 % of the score per started day

``apply_penalties`` stores each notebook's ``late_submission_penalty`` in the gradebook (as
nbgrader's ``AssignLatePenalties`` does); export, report and feedback show score - penalty.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

from .course import Course


class PerDayPenalty(LateSubmissionPlugin):
    """A fraction of the notebook's score per started day late (capped at the score)."""

    fraction_per_day = Float(
        0.1, help="fraction of the score taken per started day late (0.1: 10 % a day)"
    ).tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        if not 0 <= self.fraction_per_day <= 1:
            raise ValueError(f"PerDayPenalty.fraction_per_day = {self.fraction_per_day}: "
                             "must be between 0 and 1")
        days = math.ceil(total_seconds_late / 86400)
        return min(score, score * self.fraction_per_day * days)


def plugin(course: Course) -> LateSubmissionPlugin:
    """The late-submission plugin the course configures (nbgrader's default: no penalty)."""
    from nbgrader.preprocessors import AssignLatePenalties

    cfg = course.nbgrader_config()
    return AssignLatePenalties(config=cfg).plugin_class(config=cfg)


def parse_time(text: str, timezone: str = "UTC") -> datetime:
    """A due date as the instructor writes it (``2025-10-01 23:59``, ``2025-10-01T23:59:00+01:00``,
    ``2025-10-01 23:59 Europe/London``): aware, in UTC. A time without a zone is in ``timezone``."""
    from zoneinfo import ZoneInfo

    import dateutil.parser

    zone = timezone
    head, _, tail = text.strip().rpartition(" ")
    if head and ("/" in tail or tail in ("UTC", "GMT")):
        text, zone = head, tail
    try:
        ts = dateutil.parser.parse(text)
        tz = ZoneInfo(zone)
    except (ValueError, OverflowError, KeyError) as e:
        raise ValueError(f"cannot read the time {text!r} ({e}): write e.g. '2025-10-01 23:59' "
                         "or '2025-10-01 23:59 Europe/London'") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)
    return ts.astimezone(UTC)


def due_date(course: Course, assignment: str) -> datetime | None:
    """The assignment's due date (aware, UTC), or None."""
    from nbgrader.api import Gradebook, MissingEntry

    if not course.has_gradebook:
        return None
    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            due = gb.find_assignment(assignment).duedate
        except MissingEntry:
            return None
    return due.replace(tzinfo=UTC) if due else None


def set_due_date(course: Course, assignment: str, when: datetime | None, log=print) -> None:
    """Store the due date (None: remove it) and re-apply the penalties of every submission."""
    from nbgrader.api import Gradebook

    course.check_assignment(assignment)
    course.ensure_grading_dir()
    with Gradebook(course.db_url, course.course_id) as gb:
        a = gb.update_or_create_assignment(assignment)
        a.duedate = when.astimezone(UTC).replace(tzinfo=None) if when else None
        gb.db.commit()
    log(f"due date of {assignment}: {when.isoformat() if when else 'none'}")
    apply_penalties(course, assignment, log=log)


def apply_penalties(course: Course, assignment: str, students: list[str] | None = None,
                    log=print) -> dict[str, float]:
    """Assign each late notebook its penalty with the configured plugin (clamped to [0, score],
    as nbgrader does); return {student: total penalty} of the late ones."""
    from nbgrader.api import Gradebook

    p = plugin(course)
    out = {}
    with Gradebook(course.db_url, course.course_id) as gb:
        for sub in gb.assignment_submissions(assignment):
            if students is not None and sub.student.id not in students:
                continue
            late = sub.total_seconds_late or 0
            total = 0.0
            for nb in sub.notebooks:
                nb.late_submission_penalty = None
                if late > 0:
                    pen = p.late_submission_penalty(sub.student.id, nb.score, late)
                    if pen is not None:
                        nb.late_submission_penalty = min(max(pen, 0.0), nb.score)
                        total += nb.late_submission_penalty
            if late > 0:
                out[sub.student.id] = total
        gb.db.commit()
    if out:
        log(f"late: {len(out)} submission(s) of {assignment}, penalty by "
            f"{type(p).__name__}" + (f" ({p.penalty_method})" if type(p) is LateSubmissionPlugin
                                    else ""))
    return out
