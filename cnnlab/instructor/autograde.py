"""``cnnlab autograde``: nbgrader's autograder, in parallel, sandboxed, into the one gradebook.

The parent process hands one submission at a time to each of ``jobs`` worker processes
(``worker.py``). A worker grades into a private copy of the gradebook; the parent merges every
result into the course gradebook itself, one student at a time, so sqlite never sees two writers
and a finished student is committed before the next result is read. Re-running grades the same
submissions into the same rows (nbgrader's ``update_or_create``): the gradebook ends the same.

A worker that runs past its deadline or dies is killed with its kernels; that student scores 0
with the reason recorded, a fresh worker takes the next student. Students whose files collect
could not use (empty, malformed) get 0 on every cell. Every student's time, flags and status go to
``grading/cnnlab/<assignment>/autograde.json`` for ``cnnlab report``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .collect import collect_record
from .course import Course, read_json, write_json


@dataclass
class Limits:
    """Per-submission limits (the CLI's options)."""

    timeout: int | None = None   # seconds per cell (default: the course's Execute.timeout)
    mem_mb: int = 4096           # address space of a grading kernel
    fsize_mb: int = 64           # largest file a kernel may write
    max_output_chars: int = 200_000  # output kept per cell
    deadline: float | None = None    # seconds for a whole submission (default: from timeout)


def submitted_students(course: Course, assignment: str) -> list[str]:
    if not course.submitted.is_dir():
        return []
    return sorted(d.name for d in course.submitted.iterdir()
                  if (d / assignment).is_dir() and any((d / assignment).glob("*.ipynb")))


def _code_cells(course: Course, assignment: str) -> int:
    n = 0
    for name in course.notebooks(assignment):
        nb = nbformat.read(str(course.source / assignment / f"{name}.ipynb"), 4)
        n += sum(c.cell_type == "code" for c in nb.cells)
    return n


def _check_released(course: Course, assignment: str) -> None:
    from nbgrader.api import MissingEntry

    if course.db_path is not None and not course.db_path.exists():
        raise ValueError(f"no gradebook at {course.db_path}: run `cnnlab release {assignment}` "
                         "first")
    with course.gradebook() as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise ValueError(f"assignment {assignment!r} is not in the gradebook: run "
                             f"`cnnlab release {assignment}` first") from None


class _Slot:
    """One worker process, restarted after it is killed."""

    def __init__(self, stage: Path, log_path: Path):
        self.stage, self.log_path, self.proc = stage, log_path, None

    def start(self):
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cnnlab.instructor.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=open(self.log_path, "ab"), cwd=self.stage, env=env,
            start_new_session=True)

    def run(self, job: dict, deadline: float) -> tuple[dict | None, str | None]:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            self.start()
            return None, "the grading worker could not be started"
        line = _readline(self.proc, time.monotonic() + deadline)
        if line is None:
            why = (f"grading stopped after {deadline:.0f} s (the submission's time limit)"
                   if self.proc.poll() is None else
                   f"the grading worker died (exit code {self.proc.poll()})")
            self.kill(job)
            return None, why
        path = Path(line.split(" ", 1)[1])
        return json.loads(path.read_text()), None

    def kill(self, job: dict | None = None):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None
        if job is not None:
            pid_file = self.stage / f"{job['student']}.pids"
            for pid in (pid_file.read_text().split() if pid_file.exists() else []):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _readline(proc, deadline: float) -> str | None:
    """One line from the worker's stdout, or None if it exits or the deadline passes."""
    import select

    buf = b""
    fd = proc.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            if proc.poll() is not None:
                return None
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
        if b"\n" in buf:
            return buf.split(b"\n", 1)[0].decode()


def _copy_autograded(src: Path, dest: Path, source_dir: Path) -> None:
    """Copy nbgrader's output for one student: the notebooks, ``timestamp.txt`` and the files
    the assignment itself ships (plain files, no links); whatever the kernel wrote is left out."""
    shipped = {p.relative_to(source_dir) for p in source_dir.rglob("*") if p.is_file()}
    tmp = dest.with_name(dest.name + ".incoming")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for p in src.rglob("*"):
        rel = p.relative_to(src)
        if p.is_symlink() or not p.is_file():
            continue
        if not (p.suffix == ".ipynb" or rel.as_posix() == "timestamp.txt" or rel in shipped):
            continue
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


SUBMISSION_TABLES = ("student", "submitted_assignment", "submitted_notebook", "grade", "comment")


def snapshot_gradebook(db_url: str, dest: Path, definitions_only: bool = False) -> None:
    """Copy the gradebook at ``db_url`` (any database) into a new sqlite file ``dest`` for the
    workers: every nbgrader table (only the assignments' definitions if ``definitions_only``)
    and the alembic version, read in one SERIALIZABLE transaction so graders and the formgrader
    writing meanwhile never leave it half-updated."""
    from nbgrader.api import Base
    from sqlalchemy import MetaData, Table, create_engine, inspect

    src = create_engine(db_url)
    dst = create_engine(f"sqlite:///{dest}")
    try:
        Base.metadata.create_all(dst)
        with src.connect().execution_options(isolation_level="SERIALIZABLE") as s, \
                dst.begin() as d:
            tables = list(Base.metadata.sorted_tables)
            if inspect(s).has_table("alembic_version"):
                tables.append(Table("alembic_version", MetaData(), autoload_with=s))
            for table in tables:
                if definitions_only and table.name in SUBMISSION_TABLES:
                    continue
                rows = [dict(r._mapping) for r in s.execute(table.select())]
                table.create(d, checkfirst=True)
                if rows:
                    d.execute(table.insert(), rows)
    finally:
        src.dispose()
        dst.dispose()


@contextlib.contextmanager
def _quiet_sqlalchemy():
    """nbgrader's ``update_or_create_submission`` makes SQLAlchemy warn about autoflush on a new
    submission (harmless, nbgrader's own code path); keep the console readable."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not in session.*")
        yield


def merge_result(course: Course, assignment: str, result: dict,
                 flagged: bool) -> tuple[float, float]:
    """Write one worker's grades into the course gradebook in one transaction; return (score,
    max score). Only the columns autograding owns are written (a manual grade entered in the
    formgrader meanwhile is kept)."""

    student = result["student"]
    with _quiet_sqlalchemy(), course.gradebook() as gb:
        gb.update_or_create_student(student)
        kw = {}
        if result.get("timestamp"):
            from datetime import datetime

            kw["timestamp"] = datetime.fromisoformat(result["timestamp"])
        gb.update_or_create_submission(assignment, student, **kw)
        for nb_name, data in result["notebooks"].items():
            for g in data["grades"]:
                grade = gb.find_grade(g["name"], nb_name, assignment, student)
                grade.auto_score = g["auto_score"]
                grade.needs_manual_grade = g["needs_manual_grade"]
            for c in data["comments"]:
                gb.find_comment(c["name"], nb_name, assignment, student).auto_comment = (
                    c["auto_comment"])
            snb = gb.find_submission_notebook(nb_name, assignment, student)
            snb.late_submission_penalty = data.get("late_penalty")
            snb.flagged = flagged
        gb.db.commit()
        s = gb.find_submission(assignment, student)
        return float(s.score), float(s.max_score)


def zero_submission(course: Course, assignment: str, student: str) -> tuple[float, float]:
    """Record a submission that could not be graded: 0 on every graded cell, flagged."""

    with _quiet_sqlalchemy(), course.gradebook() as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(assignment, student)
        for nb in sub.notebooks:
            for g in nb.grades:
                g.auto_score = 0.0
                g.needs_manual_grade = False
            nb.flagged = True
        gb.db.commit()
        s = gb.find_submission(assignment, student)
        return float(s.score), float(s.max_score)


def autograde(course: Course, assignment: str, jobs: int = 1, limits: Limits | None = None,
              students: list[str] | None = None, log=print, keep_stage: bool = False,
              cluster: str | None = None, force: bool = False) -> dict:
    """Autograde every collected submission of ``assignment`` with ``jobs`` worker processes
    (or on a Dask ``cluster``: ``local:N`` or a scheduler address, see ``cluster_grade``).

    Returns the per-student record also written to ``autograde.json``."""
    limits = limits or Limits()
    if cluster is not None:
        from .cluster_grade import autograde_cluster

        return autograde_cluster(course, assignment, cluster, limits, students, force, log)
    if limits.timeout is None:
        limits = dataclasses.replace(limits, timeout=course.execute_timeout)
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: need at least one worker process")
    course.check_assignment(assignment)
    stage = Path(tempfile.mkdtemp(prefix="cnnlab-autograde-"))
    submitted = submitted_students(course, assignment)
    todo = [s for s in submitted if not students or s in students]
    # start the workers first: their imports overlap with the checks below
    slots = [_Slot(stage, stage / f"worker{i}.log") for i in range(max(1, min(jobs, len(todo))))]
    for slot in slots if todo else []:
        slot.start()
    try:
        _check_released(course, assignment)
    except BaseException:
        for slot in slots:
            slot.kill()
        shutil.rmtree(stage, ignore_errors=True)
        raise
    record = collect_record(course, assignment)
    unusable = {s: r for s, r in record["unusable"].items()
                if s not in submitted and (not students or s in students)}
    deadline = limits.deadline or limits.timeout * (_code_cells(course, assignment) + 2) + 120

    template = stage / "template.db"
    snapshot_gradebook(course.db_url, template)
    allow = sorted({sys.prefix, sys.base_prefix, sys.exec_prefix,
                    str(Path(__file__).resolve().parents[1])})
    deny = [str(course.root), str(course.grading), str(course.submitted), str(course.source),
            os.path.expanduser("~"), *([str(course.db_path.parent)] if course.db_path else [])]
    base_job = {"assignment": assignment, "stage": str(stage), "template_db": str(template),
                "course_root": str(course.root), "submitted": str(course.submitted),
                "source": str(course.source), "release": str(course.release),
                "timeout": limits.timeout, "mem_mb": limits.mem_mb, "fsize_mb": limits.fsize_mb,
                "max_output_chars": limits.max_output_chars, "allow": allow, "deny": deny}

    state_path = course.state_dir(assignment) / "autograde.json"
    state = read_json(state_path, {})
    collect_flags = record["flags"]
    results: queue.Queue = queue.Queue()
    work: queue.Queue = queue.Queue()
    for s in todo:
        work.put(s)
    n_workers = len(slots)

    def slot_loop(i):
        slot = slots[i]
        try:
            while True:
                try:
                    student = work.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                try:
                    res, why = slot.run(dict(base_job, student=student), deadline)
                except Exception as e:  # never lose the other students
                    slot.kill()
                    res, why = None, f"grading error: {type(e).__name__}: {e}"
                results.put((student, res, why, time.perf_counter() - t0))
        finally:
            slot.close()

    threads = [threading.Thread(target=slot_loop, args=(i,), daemon=True) for i in range(n_workers)]
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    try:
        for _ in range(len(todo)):
            student, res, why, wall = results.get()
            flags = list(collect_flags.get(student, []))
            if res is not None and res.get("error") is None and res.get("notebooks"):
                flags += res["flags"]
                score, max_score = merge_result(course, assignment, res, flagged=bool(flags))
                _copy_autograded(Path(res["autograded"]),
                                 course.autograded / student / assignment,
                                 course.source / assignment)
                status = "graded"
            else:
                if res is not None:
                    why = res.get("error") or why
                    flags += res.get("flags", [])
                flags.append(f"not graded, scored 0: {why}")
                score, max_score = zero_submission(course, assignment, student)
                status = "failed"
            state[student] = {"status": status, "score": score, "max_score": max_score,
                              "seconds": round(res["seconds"] if res and "seconds" in res
                                               and status == "graded" else wall, 3),
                              "cell_seconds": (res or {}).get("cell_seconds", {}),
                              "flags": flags}
            write_json(state_path, state)  # after every student: a crash loses nothing done
            secs = state[student]["seconds"]
            log(f"{status:7s} {student}: {score:g}/{max_score:g} in {secs:.1f} s"
                + (f"  [{len(flags)} flag(s)]" if flags else ""))
    finally:
        for t in threads:
            t.join(timeout=60)
        if not keep_stage:
            shutil.rmtree(stage, ignore_errors=True)
    for student, reasons in sorted(unusable.items()):
        score, max_score = zero_submission(course, assignment, student)
        state[student] = {"status": "unusable", "score": score, "max_score": max_score,
                          "seconds": 0.0, "cell_seconds": {},
                          "flags": list(collect_flags.get(student, [])) + [
                              f"no usable notebook, scored 0: {r}" for r in reasons]}
        log(f"unusable {student}: 0/{max_score:g} ({'; '.join(reasons)})")
    write_json(state_path, state)
    log(f"autograded {len(todo)} submission(s) of {assignment} with {n_workers} worker(s) in "
        f"{time.perf_counter() - t_start:.1f} s")
    return state
