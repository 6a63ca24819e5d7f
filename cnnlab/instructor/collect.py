"""``cnnlab collect``: lay out an LMS download for nbgrader, reporting what it could not place.

The download (a zip or a folder, capped as ``lms.base`` says) is read in one of the layouts of
``cnnlab.instructor.lms`` (Canvas, Moodle flat or in folders, Blackboard with attempts and
receipts, a plain folder), detected from the file names or forced with ``--lms``. Each file is
attributed to a student by the LMS's own id where it has one (Canvas user id; Moodle participant
within the download; Blackboard user name) and, when a class list was imported (``cnnlab roster
import``), matched to it. Of several attempts at one notebook the latest counts (attempt number
or time); the others are reported as dropped.

Each notebook lands in ``grading/submitted/<student>/<assignment>/<notebook>.ipynb`` with
nbgrader's ``timestamp.txt`` when the LMS gives a time (Blackboard) or a late marker (Canvas
``LATE``: 1 s after the due date, the least lateness consistent with it, when the gradebook has
a due date). A file whose name is not one of the assignment's notebooks is placed under the right
name when the assignment has one notebook (and flagged), otherwise reported. Contents are
checked: an empty file, malformed JSON, JSON that is not a notebook, nesting deeper than
``MAX_NESTING`` are reported and the student scores 0; an nbformat 3 notebook is converted to
version 4 (and flagged). Any error while reading one file is that file's reason: the class goes on.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import nbformat

from . import lms
from .course import Course, read_json, write_json
from .lms import blackboard
from .lms.base import Attribution, entries, is_junk

MAX_NESTING = 64  # lists and objects inside each other; a notebook needs about 6


@dataclass
class CollectResult:
    placed: dict[str, list[str]] = field(default_factory=dict)    # student -> notebooks placed
    flags: dict[str, list[str]] = field(default_factory=dict)     # student -> warnings
    unusable: dict[str, list[str]] = field(default_factory=dict)  # student -> why nothing usable
    unplaced: list[dict] = field(default_factory=list)            # {"file", "student", "reason"}
    dropped: list[dict] = field(default_factory=list)             # {"student", "file", "kept"}
    missing: list[str] = field(default_factory=list)              # on the roster, no file
    unknown: list[str] = field(default_factory=list)              # a file, not on the roster
    layout: str = "plain"
    lms_ids: dict[str, str] = field(default_factory=dict)         # student -> LMS key

    def flag(self, student: str, reason: str) -> None:
        self.flags.setdefault(student, []).append(reason)


def parse_name(name: str, assignment: str) -> tuple[str | None, str, str | None]:
    """(student, file stem, why not) for one file name, the layout read from the name alone
    (no class list: a Canvas student is the name slug)."""
    layout = lms.detect([name], assignment)
    att = lms.attribute(name, assignment, layout)
    stem = PurePosixPath(name).stem
    if isinstance(att, str):
        return None, stem, att
    file_stem = att.file_stem if att.file_stem is not None else stem
    if att.lms == "canvas" and att.attempt[0]:
        file_stem = f"{file_stem}-{att.attempt[0]}"
    return att.slug, file_stem, None


def _depth(obj) -> int:
    """How deeply lists and dicts nest in ``obj`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict | list):
            deepest = max(deepest, d)
            if deepest > MAX_NESTING:
                return deepest
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def load_notebook(data: bytes) -> tuple[nbformat.NotebookNode | None, str | None, str | None]:
    """(notebook v4, problem, note) from the raw bytes of a submitted file."""
    if not data.strip():
        return None, "empty file", None
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"malformed JSON ({type(e).__name__}: {e})", None
    except RecursionError:
        return None, (f"nested deeper than Python's JSON reader goes (the limit is "
                      f"{MAX_NESTING})"), None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return None, "not a notebook (JSON without an 'nbformat' field)", None
    depth = _depth(raw)
    if depth > MAX_NESTING:
        return None, f"nested more than {MAX_NESTING} levels deep (a notebook needs about 6)", None
    version = raw.get("nbformat")
    if version not in (3, 4):
        return None, f"unsupported nbformat version {version!r} (3 and 4 are read)", None
    try:
        with warnings.catch_warnings():  # nbformat warns while it repairs duplicate cell ids
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(raw), as_version=4)
            nbformat.validate(nb)
    except Exception as e:  # nbformat raises several types for a broken structure
        return None, f"not a valid notebook ({type(e).__name__}: {str(e)[:200]})", None
    note = f"converted from nbformat {version} to 4" if version == 3 else None
    return nb, None, note


@dataclass
class _File:
    """One notebook file of the download, attributed."""

    name: str
    att: Attribution
    load: object
    order: int


def _due_date(course: Course, assignment: str) -> datetime | None:
    from .late import due_date

    return due_date(course, assignment)


def _resolve(files: list[_File], course: Course, result: CollectResult) -> dict[int, str]:
    """Student id for each file (by ``order``): the roster's where it knows the LMS id or the
    name, else the name slug, kept apart by the LMS id when two students share a slug."""
    from .roster import Roster

    roster = Roster.load(course)
    out: dict[int, str] = {}
    unresolved: dict[str, set[str]] = {}
    for f in files:
        a = f.att
        sid = None
        if a.lms == "canvas":
            sid = roster.by_lms_id(a.key)
        elif a.lms == "moodle":
            sid = roster.by_name(a.display_name)
        elif a.lms == "blackboard":
            sid = a.key if a.key in roster.students else roster.by_email_user(a.key)
        else:
            sid = a.key
        if sid is not None:
            out[f.order] = sid
        else:
            unresolved.setdefault(a.slug, set()).add(a.key)
    for f in files:
        if f.order in out:
            continue
        a = f.att
        keys = unresolved[a.slug]
        owner = roster.students.get(a.slug)
        taken = owner is not None and owner.lms_user_id not in (None, a.key) and a.lms == "canvas"
        if len(keys) > 1 or taken:
            out[f.order] = f"{a.slug}-{a.key}"
            ids = sorted(keys | ({owner.lms_user_id} if taken else set()))
            result.flag(out[f.order], f"{a.display_name!r}: the name {a.slug!r} is shared by "
                                      f"{a.lms} ids {ids}: kept apart as {out[f.order]}")
        else:
            out[f.order] = a.slug
    return out


def _timestamp(att: Attribution, due: datetime | None) -> tuple[datetime | None, str | None]:
    """(submission time in UTC, note) for nbgrader's timestamp.txt."""
    if att.submitted_at is not None:
        return att.submitted_at.astimezone(UTC), None
    if att.late:
        if due is None:
            return None, ("Canvas marks it LATE but gives no time, and the gradebook has no due "
                          "date: set one (cnnlab due) and collect again to apply the penalty")
        return due + timedelta(seconds=1), ("Canvas marks it LATE without a time: timestamp "
                                            "set 1 s after the due date (the least lateness)")
    return None, None


def collect(course: Course, assignment: str, source: str | Path, log=print,
            layout: str | None = None, timezone: str = "UTC") -> CollectResult:
    """Place the submissions in ``source`` (zip or folder) for ``assignment``.

    Args:
        layout: one of ``lms.LAYOUTS`` (default: detected from the file names).
        timezone: the LMS server's time zone, for times written in names (Blackboard).
    """
    from zoneinfo import ZoneInfo

    course.check_assignment(assignment)
    try:
        ZoneInfo(timezone)
    except (ValueError, KeyError):
        raise ValueError(f"--timezone {timezone!r} is not a time zone name (e.g. UTC, "
                         "Europe/London, America/New_York)") from None
    course.ensure_grading_dir()
    source = Path(source)
    notebooks = course.notebooks(assignment)
    result = CollectResult()
    listing = [e for e in entries(source) if not is_junk(e.name)]
    names = [e.name for e in listing if e.name.lower().endswith(".ipynb") and not e.problem]
    result.layout = layout or lms.detect(names, assignment)
    strict = layout is not None
    receipts, hand_stamps = _side_files(listing, result)

    files: list[_File] = []
    for i, e in enumerate(listing):
        if e.name.lower().endswith(".txt") and (e.name in receipts or e.name in hand_stamps):
            continue
        try:
            att = lms.attribute(e.name, assignment, result.layout, timezone,
                                receipts["by_prefix"], strict)
        except Exception as ex:  # a name no layout expects must not stop the class
            att = f"cannot read the name ({type(ex).__name__}: {ex})"
        student = att.slug if isinstance(att, Attribution) else None
        if e.problem:
            result.unplaced.append({"file": e.name, "student": student, "reason": e.problem})
        elif not e.name.lower().endswith(".ipynb"):
            result.unplaced.append({"file": e.name, "student": student,
                                    "reason": "not a notebook (.ipynb expected)"})
        elif isinstance(att, str):
            result.unplaced.append({"file": e.name, "student": None, "reason": att})
        else:
            files.append(_File(e.name, att, e.load, i))

    who = _resolve(files, course, result)
    due = _due_date(course, assignment)
    chosen: dict[tuple[str, str], tuple[_File, nbformat.NotebookNode]] = {}
    for f in files:
        student = who[f.order]
        result.lms_ids[student] = f.att.key
        try:
            nb, problem, note = load_notebook(f.load())
        except Exception as ex:  # bad CRC, over the size cap, unreadable file, ...
            nb, problem, note = None, f"{type(ex).__name__}: {ex}", None
        if problem:
            result.unusable.setdefault(student, []).append(f"{f.name}: {problem}")
            continue
        target = f.att.file_stem
        if target not in notebooks and f.att.whole_stem in notebooks:  # lab-1.ipynb is lab-1
            target = f.att.whole_stem
        if target is None or target not in notebooks:
            if len(notebooks) == 1:
                if target is not None:
                    result.flag(student, f"{f.name}: wrongly named notebook, graded as "
                                         f"{notebooks[0]}.ipynb")
                target = notebooks[0]
            else:
                result.unplaced.append({"file": f.name, "student": student,
                                        "reason": f"wrongly named notebook: {target!r} is not "
                                                  f"one of {notebooks}"})
                continue
        if note:
            result.flag(student, f"{f.name}: {note}")
        old = chosen.get((student, target))
        if old is not None:
            later, earlier = ((f, old[0]) if (f.att.attempt, f.order) >= (old[0].att.attempt,
                                                                           old[0].order)
                              else (old[0], f))
            how = ("the later attempt" if later.att.attempt != earlier.att.attempt
                   else "the last in the download (no attempt order known)")
            result.dropped.append({"student": student, "file": earlier.name, "kept": later.name})
            result.flag(student, f"two files for {target}.ipynb: kept {later.name} ({how}: "
                                 f"{later.att.attempt_label}), dropped {earlier.name}")
            if later is not f:
                continue
        chosen[student, target] = (f, nb)

    _place(course, assignment, chosen, hand_stamps, due, result)
    _roster_check(course, result)
    _record(course, assignment, result)
    _remember_lms_ids(course, result)
    _audit(course, assignment, source, result)
    _log(result, log)
    return result


def _side_files(listing, result: CollectResult):
    """Blackboard receipts (who submitted when) and hand-placed ``timestamp.txt`` files."""
    receipts: dict = {"by_prefix": {}}
    stamps: dict[str, str] = {}
    for e in listing:
        base = PurePosixPath(e.name).name
        if base == "timestamp.txt":
            try:
                stamps[e.name] = e.load().decode("utf-8").strip()
            except Exception as ex:  # noqa: BLE001 - reported, not fatal
                result.unplaced.append({"file": e.name, "student": None,
                                        "reason": f"unreadable timestamp ({ex})"})
            continue
        m = blackboard.ATTEMPT_RE.match(base)
        if m and m["receipt"] and not e.problem:
            try:
                who = blackboard.read_receipt(e.load().decode("utf-8", "replace"))
            except Exception:  # noqa: BLE001 - a broken receipt only loses the name
                who = None
            receipts[e.name] = who
            if who:
                receipts["by_prefix"][f"{m['prefix']}_attempt_{m['ts']}"] = who
    return receipts, stamps


def _place(course, assignment, chosen, hand_stamps, due, result: CollectResult) -> None:
    from nbgrader.utils import parse_utc

    students = {s for s, _ in chosen} | set(result.unusable)
    for student in sorted(students):
        dest = course.submitted / student / assignment
        stamp = dest / "timestamp.txt"
        kept_stamp = stamp.read_text() if stamp.exists() else None
        if dest.exists():
            shutil.rmtree(dest)  # a new download replaces the student's previous submission
        files = sorted(t for s, t in chosen if s == student)
        if not files:
            continue
        dest.mkdir(parents=True)
        times, notes = [], []
        for t in files:
            f, nb = chosen[student, t]
            nbformat.write(nb, str(dest / f"{t}.ipynb"))
            ts, note = _timestamp(f.att, due)
            if ts is not None:
                times.append(ts)
            if note:
                notes.append(note)
            if f.att.late:
                result.flag(student, f"{f.name}: marked LATE by {f.att.lms.capitalize()}")
            folder = str(PurePosixPath(f.name).parent)
            for stamp_name, text in hand_stamps.items():
                if str(PurePosixPath(stamp_name).parent) == folder and folder != ".":
                    try:
                        times.append(parse_utc(text).replace(tzinfo=UTC))
                    except Exception as ex:  # noqa: BLE001 - a bad hand-written stamp
                        result.flag(student, f"{stamp_name}: not a time ({ex}), ignored")
        for n in dict.fromkeys(notes):
            result.flag(student, n)
        if times:
            (dest / "timestamp.txt").write_text(
                max(times).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
        elif kept_stamp:
            (dest / "timestamp.txt").write_text(kept_stamp)
            result.flag(student, "kept the timestamp.txt already in the submitted folder "
                                 "(the download gives no time)")
        result.placed[student] = files
        if student in result.unusable:  # another file of the student was fine
            for r in result.unusable.pop(student):
                result.flag(student, r)


def _roster_check(course: Course, result: CollectResult) -> None:
    from .roster import Roster

    roster = Roster.load(course)
    seen = set(result.placed) | set(result.unusable)
    result.missing = roster.missing(seen)
    result.unknown = roster.unknown(seen)
    for s in result.unknown:
        result.flag(s, "not on the class list (cnnlab roster import)")


def _remember_lms_ids(course: Course, result: CollectResult) -> None:
    """Record each Canvas student's user id in the gradebook (nbgrader's ``lms_user_id``), so a
    later download and the Canvas export find the same student."""
    if result.layout != "canvas":
        return
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course.course_id) as gb:
        for student, key in result.lms_ids.items():
            if not re.fullmatch(r"\d+", key):
                continue
            try:
                if gb.find_student(student).lms_user_id:
                    continue
            except MissingEntry:
                pass
            gb.update_or_create_student(student, lms_user_id=key)


def _audit(course: Course, assignment: str, source: Path, result: CollectResult) -> None:
    from . import audit

    entries = [audit.submission_entry(course, assignment, s, status="placed")
               for s in sorted(result.placed)]
    entries += [{"student": s, "files": {}, "status": "unusable", "reason": "; ".join(r)}
                for s, r in sorted(result.unusable.items())]
    entries += [{"student": d["student"], "files": {}, "status": "dropped",
                 "reason": f"dropped {d['file']}, kept {d['kept']}"} for d in result.dropped]
    audit.append(course, "collect", assignment, entries, source=source.name,
                 layout=result.layout)


def _log(result: CollectResult, log) -> None:
    log(f"layout: {result.layout}")
    for student in sorted(result.placed):
        log(f"placed {student}: {', '.join(result.placed[student])}")
    for student, reasons in sorted(result.unusable.items()):
        log(f"UNUSABLE {student}: {'; '.join(reasons)} (scores 0)")
    for student, reasons in sorted(result.flags.items()):
        log(f"flagged {student}: {'; '.join(reasons)}")
    for d in result.dropped:
        log(f"DROPPED {d['file']} ({d['student']}): kept {d['kept']}")
    for u in result.unplaced:
        log(f"NOT PLACED {u['file']}: {u['reason']}")
    if result.missing:
        log(f"MISSING ({len(result.missing)} on the class list, no submission): "
            f"{', '.join(result.missing)}")
    if result.unknown:
        log(f"UNKNOWN ({len(result.unknown)} not on the class list): {', '.join(result.unknown)}")


def _record(course: Course, assignment: str, result: CollectResult) -> None:
    """Merge this collect into ``grading/cnnlab/<assignment>/collect.json``: a student collected
    again loses their old flags."""
    path = course.state_dir(assignment) / "collect.json"
    old = read_json(path, {"flags": {}, "unusable": {}, "unplaced": []})
    touched = set(result.placed) | set(result.unusable)
    for key in ("flags", "unusable"):
        old[key] = {s: r for s, r in old.get(key, {}).items() if s not in touched}
    old["flags"].update(result.flags)
    old["unusable"].update(result.unusable)
    files = {u["file"] for u in result.unplaced}
    old["unplaced"] = [u for u in old.get("unplaced", [])
                       if u["file"] not in files] + result.unplaced
    old["dropped"] = [d for d in old.get("dropped", [])
                      if d["student"] not in touched] + result.dropped
    old["missing"], old["unknown"], old["layout"] = result.missing, result.unknown, result.layout
    write_json(path, old)


def collect_record(course: Course, assignment: str) -> dict:
    return read_json(course.state_dir(assignment) / "collect.json",
                     {"flags": {}, "unusable": {}, "unplaced": []})
