"""One grading worker process: autogrades one submission at a time into a private gradebook.

``python -m cnnlab.instructor.worker`` reads one job (JSON) per line on stdin and answers one line
``done <result file>`` on stdout. Each job runs nbgrader's own ``Autograde`` converter in a
staging folder of its own:

    <stage>/<student>/course/submitted/<student>/<assignment>/   a copy of the submission
    <stage>/<student>/course/autograded/<student>/<assignment>/  nbgrader's output; the kernel's cwd
    <stage>/<student>/db/gradebook.db                            a private copy of the gradebook
    <stage>/<student>/home/                                       the kernel's HOME and TMPDIR

so no two processes ever write the same sqlite file; the parent (``autograde.py``) merges each
result into the course gradebook, one at a time. The kernel may read and write only its cwd and
home: the private gradebook, the other submissions and the course repository are out of reach.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path


def grade_one(job: dict) -> dict:
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    from . import execute
    from .course import Course
    from .scan import scan_submission, strip_duplicate_ids

    student, assignment = job["student"], job["assignment"]
    base = Path(job["stage"]) / student
    if base.exists():
        shutil.rmtree(base)
    course = base / "course"
    sub = course / "submitted" / student / assignment
    shutil.copytree(Path(job["submitted"]) / student / assignment, sub)
    (base / "db").mkdir(parents=True)
    db = base / "db" / "gradebook.db"
    shutil.copy(job["template_db"], db)
    home = base / "home"

    cfg = Course.load(job["course_root"]).nbgrader_config()
    cd = cfg.CourseDirectory
    cd.root = str(course)
    cd.submitted_directory = str(course / "submitted")
    cd.autograded_directory = str(course / "autograded")
    cd.source_directory = job["source"]
    cd.release_directory = job["release"]
    cd.db_url = f"sqlite:///{db}"
    cd.student_id = student
    cd.assignment_id = assignment
    cfg.OverwriteCells.add_missing_cells = True
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    cfg.Autograde.autograde_preprocessors = [
        execute.SandboxedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    cfg.Execute.timeout = int(job["timeout"])
    cfg.SandboxedExecute.max_output_chars = int(job["max_output_chars"])
    cfg.SandboxKernelManager.sandbox = {
        "mem_mb": job["mem_mb"], "fsize_mb": job["fsize_mb"],
        "max_output_chars": job["max_output_chars"], "home": str(home),
        "deny": job["deny"] + [str(Path(job["stage"]))],
        "allow": job["allow"], "dlopen_roots": job["allow"], "write": [],
        "pid_file": str(Path(job["stage"]) / f"{student}.pids")}

    flags = scan_submission(sub, Path(job["release"]) / assignment)
    for nb_path in sub.glob("*.ipynb"):
        strip_duplicate_ids(nb_path)
    log_lines: list[str] = []
    handler = _ListHandler(log_lines)
    execute.EVENTS.clear()
    start = time.perf_counter()
    error = None
    try:
        conv = Autograde(coursedir=CourseDirectory(config=cfg), config=cfg)
        conv.log.addHandler(handler)
        conv.start()
    except BaseException as e:  # nbgrader raises NbGraderException; keep the worker alive
        error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - start

    for rec in execute.EVENTS.values():
        flags.extend(rec["events"])
        if rec["died"]:
            flags.append(rec["died"])
    cells = {}
    for rec in execute.EVENTS.values():
        cells.update(rec["cells"])

    result = {"student": student, "assignment": assignment, "seconds": seconds,
              "flags": _dedupe(flags), "cell_seconds": cells, "error": error,
              "log": "\n".join(log_lines[-200:]), "notebooks": {},
              "autograded": str(course / "autograded" / student / assignment)}
    if error is None:
        with Gradebook(f"sqlite:///{db}") as gb:
            s = gb.find_submission(assignment, student)
            result["timestamp"] = s.timestamp.isoformat() if s.timestamp else None
            for nb in s.notebooks:
                result["notebooks"][nb.name] = {
                    "late_penalty": nb.late_submission_penalty,
                    "grades": [{"name": g.name, "auto_score": g.auto_score,
                                "needs_manual_grade": g.needs_manual_grade,
                                "max_score": g.max_score} for g in nb.grades],
                    "comments": [{"name": c.name, "auto_comment": c.auto_comment}
                                 for c in nb.comments],
                }
    return result


def _dedupe(items):
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


class _ListHandler(logging.Handler):
    def __init__(self, lines):
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record):
        self.lines.append(f"[{record.levelname}] {record.getMessage()}")


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    # import the heavy modules now, while the parent is still preparing (this overlaps)
    import nbgrader.api  # noqa: F401
    import nbgrader.converters  # noqa: F401

    from . import execute  # noqa: F401
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            result = grade_one(job)
        except BaseException as e:
            result = {"student": job.get("student"), "error": f"{type(e).__name__}: {e}",
                      "flags": [], "notebooks": {}, "seconds": 0.0, "cell_seconds": {}}
        out = Path(job["stage"]) / f"{job['student']}.result.json"
        out.write_text(json.dumps(result))
        sys.stdout.write(f"done {out}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
