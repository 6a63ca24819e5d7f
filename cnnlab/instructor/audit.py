"""The audit log: an append-only record of who did what to which grades, and from which file.

``grading/audit.jsonl`` holds one JSON object per line, one line per command run (collect,
release, autograde, feedback, export): ``time`` (UTC), ``user``, ``host``, ``event``,
``assignment``, ``version`` (SHA-256 of the source notebooks, ``versions.py``) and ``entries``,
one per student touched: ``student``, ``files`` (name -> SHA-256 of the submitted notebook) and,
where the command gives one, ``score`` / ``max_score`` / ``status``. Lines are only ever appended
(``O_APPEND``, one ``write`` per line); ``cnnlab log [STUDENT]`` prints them.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from .course import Course


def log_path(course: Course) -> Path:
    return course.grading / "audit.jsonl"


def file_hashes(folder: Path, pattern: str = "*.ipynb") -> dict[str, str]:
    """{file name: SHA-256} of the files in ``folder`` matching ``pattern``."""
    if not folder.is_dir():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob(pattern)) if p.is_file()}


def append(course: Course, event: str, assignment: str | None, entries: list[dict],
           **extra) -> dict:
    """Append one record; return it."""
    from .versions import source_version

    version = None
    if assignment and (course.source / assignment).is_dir():
        version = source_version(course, assignment)
    record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
              "user": getpass.getuser(), "host": socket.gethostname(), "event": event,
              "assignment": assignment, "version": version, **extra, "entries": entries}
    course.grading.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(log_path(course), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def submission_entry(course: Course, assignment: str, student: str, **fields) -> dict:
    """An entry with the hashes of the student's submitted notebooks."""
    return {"student": student,
            "files": file_hashes(course.submitted / student / assignment), **fields}


def read(course: Course, student: str | None = None) -> list[dict]:
    """Every record (oldest first); with ``student``, only the records that touch them, each
    with only that student's entries."""
    path = log_path(course)
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = {"time": "?", "event": "unreadable", "entries": [],
                   "note": f"line {n} of {path.name} is not JSON"}
        if student is not None:
            mine = [e for e in rec.get("entries", []) if e.get("student") == student]
            if not mine:
                continue
            rec = {**rec, "entries": mine}
        out.append(rec)
    return out


def format_record(rec: dict) -> list[str]:
    """Human-readable lines for one record (``cnnlab log``)."""
    head = (f"{rec.get('time')}  {rec.get('event')}  {rec.get('assignment') or '-'}  "
            f"by {rec.get('user')}@{rec.get('host')}"
            + (f"  version {rec['version'][:12]}" if rec.get("version") else ""))
    extra = {k: v for k, v in rec.items() if k not in (
        "time", "event", "assignment", "user", "host", "version", "entries")}
    lines = [head + "".join(f"  {k}={v}" for k, v in sorted(extra.items()))]
    for e in rec.get("entries", []):
        bits = [e.get("student", "?")]
        if "score" in e:
            bits.append(f"{e['score']:g}/{e.get('max_score', 0):g}")
        if e.get("late_penalty"):
            bits.append(f"late penalty {e['late_penalty']:g}")
        for k in ("status", "reason", "path"):
            if e.get(k):
                bits.append(f"{k}: {e[k]}")
        bits += [f"{name} sha256:{h[:12]}" for name, h in sorted(e.get("files", {}).items())]
        lines.append("    " + "  ".join(bits))
    return lines
