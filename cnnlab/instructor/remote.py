"""One submission's grading as a job that travels: the files it needs go in as bytes, plain data
comes out, so it runs on any machine that has the course environment (a Dask worker).

``grade_remote(job)`` lays out a scratch course on the machine that runs it (the course's
``nbgrader_config.py``, the assignment's source and release folders, a gradebook holding only the
assignment's definition, the submission) and grades it there with the same sandboxed nbgrader
runner as the local pool (``worker.grade_one``); it returns the grades and the autograded
notebooks. Nothing on that machine is shared with other jobs, and the job never sees the course
gradebook: only the parent writes it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .autograde import Limits


@dataclass(frozen=True)
class AssignmentBundle:
    """What every student's job of one assignment shares.

    Args:
        name: the assignment id.
        release_id: a digest of the assignment's source and release files (``release_id``).
        config: the course's ``nbgrader_config.py``.
        source, release: relative path -> bytes of the assignment's folders.
        gradebook: an sqlite gradebook with the assignment's definition and no submissions.
        limits: the per-submission limits, ``timeout`` already resolved.
    """

    name: str
    release_id: str
    config: bytes
    source: dict[str, bytes]
    release: dict[str, bytes]
    gradebook: bytes
    limits: Limits


@dataclass(frozen=True)
class RemoteJob:
    student: str
    files: dict[str, bytes]  # the submission folder: relative path -> bytes
    digest: str              # tree_digest(files)
    assignment: AssignmentBundle


@dataclass(frozen=True)
class RemoteResult:
    student: str
    result: dict                  # worker.grade_one's record, without paths of the worker
    autograded: dict[str, bytes]  # the autograded notebooks and timestamp.txt


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every plain file under ``folder`` (no links): relative path -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def write_tree(files: dict[str, bytes], folder: Path) -> None:
    for rel, data in files.items():
        target = (folder / rel).resolve()
        if folder.resolve() not in target.parents:
            raise ValueError(f"{rel!r} leaves the folder it belongs in ({folder})")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def tree_digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()


def grade_remote(job: RemoteJob) -> RemoteResult:
    """Grade one submission in a scratch course of its own (on the machine that runs it)."""
    from .autograde import _quiet_sqlalchemy
    from .course import Course
    from .worker import grade_one

    a, lim = job.assignment, job.assignment.limits
    with tempfile.TemporaryDirectory(prefix="cnnlab-job-") as tmp:
        tmp = Path(tmp)
        root = tmp / "course"
        root.mkdir()
        (root / "nbgrader_config.py").write_bytes(a.config)
        course = Course.load(root)
        write_tree(a.source, course.source / a.name)
        write_tree(a.release, course.release / a.name)
        submitted = tmp / "submitted"
        write_tree(job.files, submitted / job.student / a.name)
        (tmp / "template.db").write_bytes(a.gradebook)
        (tmp / "stage").mkdir()
        allow = sorted({sys.prefix, sys.base_prefix, sys.exec_prefix,
                        str(Path(__file__).resolve().parents[1])})
        with _quiet_sqlalchemy():
            res = grade_one({
                "student": job.student, "assignment": a.name, "stage": str(tmp / "stage"),
                "template_db": str(tmp / "template.db"), "course_root": str(root),
                "submitted": str(submitted), "source": str(course.source),
                "release": str(course.release), "timeout": lim.timeout, "mem_mb": lim.mem_mb,
                "fsize_mb": lim.fsize_mb, "max_output_chars": lim.max_output_chars,
                "allow": allow, "deny": [str(root), str(submitted), os.path.expanduser("~")]})
        graded = Path(res.pop("autograded", "") or tmp / "none")
        autograded = {rel: data for rel, data in (read_tree(graded) if graded.is_dir() else {}
                                                  ).items()
                      if rel.endswith(".ipynb") or rel == "timestamp.txt" or rel in a.source}
        return RemoteResult(job.student, res, autograded)
