"""``cnnlab collect``: lay out an LMS download for nbgrader, reporting what it could not place.

Accepted names (in a zip or a folder; ``__MACOSX/``, dot files and checkpoints are skipped):

* Canvas: ``<student>_<user id>_<submission id>_<file>.ipynb``, also ``<student>_late_...``;
  Canvas's resubmission suffix (``<file>-1.ipynb``) is ignored;
* one notebook per student: ``<student>.ipynb``;
* one folder per student: ``<student>/<file>.ipynb`` or ``<student>/<assignment>/<file>.ipynb``.

Each notebook lands in ``grading/submitted/<student>/<assignment>/<notebook>.ipynb``. A file
whose name is not one of the assignment's notebooks is placed under the right name when the
assignment has one notebook (and flagged), otherwise reported. Contents are checked: an empty
file, malformed JSON, JSON that is not a notebook are reported and the student scores 0; an
nbformat 3 notebook is converted to version 4 (and flagged).
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

from .course import Course, read_json, write_json

STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CANVAS_RE = re.compile(
    r"^(?P<student>[A-Za-z0-9.-]+?)(?:_late)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$",
    re.IGNORECASE)
MAX_BYTES = 50 * 2**20


@dataclass
class CollectResult:
    placed: dict[str, list[str]] = field(default_factory=dict)    # student -> notebooks placed
    flags: dict[str, list[str]] = field(default_factory=dict)     # student -> warnings
    unusable: dict[str, list[str]] = field(default_factory=dict)  # student -> why nothing usable
    unplaced: list[dict] = field(default_factory=list)            # {"file", "reason"}

    def flag(self, student: str, reason: str) -> None:
        self.flags.setdefault(student, []).append(reason)


def _entries(source: Path):
    """(relative posix name, bytes loader) for each file of a zip or folder."""
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, (lambda i=info: _read_zip(source, i))
    elif source.is_dir():
        for p in sorted(source.rglob("*")):
            if p.is_file():
                yield p.relative_to(source).as_posix(), p.read_bytes
    else:
        raise ValueError(f"{source} is neither a zip file nor a folder of submissions")


def _read_zip(source: Path, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > MAX_BYTES:
        raise OSError(f"{info.file_size} bytes, over the {MAX_BYTES} byte limit")
    with zipfile.ZipFile(source) as z:
        return z.read(info)


def _skip(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" or p == ".ipynb_checkpoints" for p in parts)


def parse_name(name: str, assignment: str) -> tuple[str | None, str, str | None]:
    """(student, file stem, why not) for one entry of the download."""
    path = PurePosixPath(name)
    parts = list(path.parts)
    # a zip often wraps everything in one top folder named after the assignment or the download
    if len(parts) > 1 and parts[0] in (assignment, "submissions"):
        parts = parts[1:]
    stem = PurePosixPath(parts[-1]).stem
    if len(parts) == 1:
        m = CANVAS_RE.match(parts[0])
        if m:
            return m["student"].lower(), PurePosixPath(m["file"]).stem, None
        if STUDENT_RE.match(stem):
            return stem, stem, None
        return None, stem, f"cannot tell the student from the file name {parts[-1]!r}"
    if len(parts) == 2 or (len(parts) == 3 and parts[1] == assignment):
        student = parts[0]
        if STUDENT_RE.match(student):
            return student, stem, None
        return None, stem, f"folder name {student!r} is not a valid student id"
    return None, stem, f"unexpected folder depth in {name!r} (expected <student>/<notebook>.ipynb)"


def load_notebook(data: bytes) -> tuple[nbformat.NotebookNode | None, str | None, str | None]:
    """(notebook v4, problem, note) from the raw bytes of a submitted file."""
    if not data.strip():
        return None, "empty file", None
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"malformed JSON ({type(e).__name__}: {e})", None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return None, "not a notebook (JSON without an 'nbformat' field)", None
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


def collect(course: Course, assignment: str, source: str | Path, log=print) -> CollectResult:
    """Place the submissions in ``source`` (zip or folder) for ``assignment``."""
    course.check_assignment(assignment)
    course.ensure_grading_dir()
    source = Path(source)
    notebooks = course.notebooks(assignment)
    result = CollectResult()
    chosen: dict[tuple[str, str], tuple[str, nbformat.NotebookNode]] = {}

    for name, load in _entries(source):
        if _skip(name):
            continue
        student, stem, why = parse_name(name, assignment)
        if not name.lower().endswith(".ipynb"):
            result.unplaced.append({"file": name, "student": student,
                                    "reason": "not a notebook (.ipynb expected)"})
            continue
        if student is None:
            result.unplaced.append({"file": name, "student": None, "reason": why})
            continue
        try:
            data = load()
        except OSError as e:
            result.unusable.setdefault(student, []).append(f"{name}: {e}")
            continue
        nb, problem, note = load_notebook(data)
        if problem:
            result.unusable.setdefault(student, []).append(f"{name}: {problem}")
            continue
        target = re.sub(r"-\d+$", "", stem)  # Canvas resubmission suffix
        if target not in notebooks:
            if len(notebooks) == 1:
                result.flag(student, f"{name}: wrongly named notebook, graded as "
                                     f"{notebooks[0]}.ipynb")
                target = notebooks[0]
            else:
                result.unplaced.append({"file": name, "student": student,
                                        "reason": f"wrongly named notebook: {stem!r} is not one "
                                                  f"of {notebooks}"})
                continue
        if note:
            result.flag(student, f"{name}: {note}")
        if (student, target) in chosen:
            result.flag(student, f"two files for {target}.ipynb: kept {name}, "
                                 f"dropped {chosen[student, target][0]}")
        chosen[student, target] = (name, nb)

    students = {s for s, _ in chosen} | set(result.unusable)
    for student in sorted(students):
        dest = course.submitted / student / assignment
        if dest.exists():
            shutil.rmtree(dest)  # a new download replaces the student's previous submission
        files = sorted(t for s, t in chosen if s == student)
        if files:
            dest.mkdir(parents=True)
            for t in files:
                nbformat.write(chosen[student, t][1], str(dest / f"{t}.ipynb"))
            result.placed[student] = files
            if student in result.unusable:  # another file of the student was fine
                for r in result.unusable.pop(student):
                    result.flag(student, r)
    _record(course, assignment, result)
    for student in sorted(result.placed):
        log(f"placed {student}: {', '.join(result.placed[student])}")
    for student, reasons in sorted(result.unusable.items()):
        log(f"UNUSABLE {student}: {'; '.join(reasons)} (scores 0)")
    for student, reasons in sorted(result.flags.items()):
        log(f"flagged {student}: {'; '.join(reasons)}")
    for u in result.unplaced:
        log(f"NOT PLACED {u['file']}: {u['reason']}")
    return result


def _record(course: Course, assignment: str, result: CollectResult) -> None:
    """Merge this collect into ``grading/cnnlab/<assignment>/collect.json``: a student collected
    again loses their old flags."""
    path = course.state_dir(assignment) / "collect.json"
    old = read_json(path, {"flags": {}, "unusable": {}, "unplaced": []})
    touched = set(result.placed) | set(result.unusable)
    for key in ("flags", "unusable"):
        old[key] = {s: r for s, r in old[key].items() if s not in touched}
    old["flags"].update(result.flags)
    old["unusable"].update(result.unusable)
    files = {u["file"] for u in result.unplaced}
    old["unplaced"] = [u for u in old["unplaced"] if u["file"] not in files] + result.unplaced
    write_json(path, old)


def collect_record(course: Course, assignment: str) -> dict:
    return read_json(course.state_dir(assignment) / "collect.json",
                     {"flags": {}, "unusable": {}, "unplaced": []})
