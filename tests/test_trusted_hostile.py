"""The hostile corpus (``tests/hostile``) against the real grader, end to end.

One scratch course holds the real assignments the corpus needs (02_convolution and a few more),
one Canvas-style zip per assignment holds every case beside honest students (each base of
``hostile.bases``: the solution, the stub, the zeros answers, a half-done student, the plain
from-scratch cheat), and the real command line grades it:
``cnnlab collect -> autograde --jobs 2 -> export -> feedback -> report``, run as a subprocess with a
secret in its environment. Then, for every case:

* it scores what its honest content deserves: the score of its base student in the same batch
  (never a number written here), no more where it may legitimately lose more;
* it is flagged with a reason where the case says the grader should notice;
* honest students get the grades they get when graded alone, and the solution every point;
* the submissions, the gradebook and every student's graded files are what the grader wrote, also
  after a detached process's sleep has run out; nothing the batch started is still running;
* the instructor's secret is in no output, feedback shows no hidden test source or hidden value,
  and no file appears outside the grader's own (``pwned-*``).
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
import pytest
from hostile import CASES, Places, base_notebook, base_student, build, honest_bases
from leaks import hidden_lines as hidden_test_lines

from cnnlab.instructor import demo
from cnnlab.instructor.course import Course
from cnnlab.instructor.notebooks import BEGIN_HIDDEN, is_test_cell, keep_solutions, nbg

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SECRET_ENV = "CNNLAB_REDTEAM_INSTRUCTOR_SECRET"
SLEEP = 6        # seconds a detached case waits before it strikes
TIMEOUT = 60     # seconds per cell (the machine may be loaded)
VICTIM = base_student("02_convolution", "solution")
# REDTEAM_SKIP=t02kill,t02killparent leaves cases out (to study the others on a grader they break)
_SKIP = set(filter(None, os.environ.get("REDTEAM_SKIP", "").split(",")))
CASES = [c for c in CASES if c.student not in _SKIP]


@dataclass
class Batch:
    root: Path
    course: Course
    mark: str
    secret: str
    scores: dict[str, float]            # student -> score (the exported grades)
    max_scores: dict[str, float]
    flags: dict[str, str]               # student -> flags, joined, lower case
    points: dict[tuple[str, str], float]  # (assignment, test cell) -> points
    output: str                         # everything the commands printed
    returncodes: dict[str, int]
    submitted_before: dict[str, str]
    graded_after: dict[str, str] = field(default_factory=dict)
    graded_later: dict[str, str] = field(default_factory=dict)
    submitted_later: dict[str, str] = field(default_factory=dict)
    survivors: list[str] = field(default_factory=list)
    children_before: set[int] = field(default_factory=set)  # this pytest's, from earlier tests
    seconds: float = 0.0


def _hashes(folder: Path, skip=()) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if p.is_file() and not any(s in p.parts for s in skip):
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _graded_state(course: Course) -> dict[str, str]:
    """Hashes of what only the grader may write: the gradebook, graded notebooks, feedback."""
    out = {"gradebook.db": hashlib.sha256(course.db_path.read_bytes()).hexdigest()}
    for name, folder in (("autograded", course.autograded), ("feedback", course.feedback)):
        out.update({f"{name}/{k}": v for k, v in _hashes(folder).items()})
    return out


def scratch_course(dest: Path, assignments) -> Course:
    """``dest`` as a course holding the real ``assignments`` (config + solutions), released."""
    (dest / "solutions").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", dest / "nbgrader_config.py")
    for a in assignments:
        shutil.copytree(REPO / "solutions" / a, dest / "solutions" / a)
    _cli(dest, "release", env=dict(os.environ), check=True)  # every assignment copied here
    return Course.load(dest)


def _cli(root: Path, *args, env, check=False) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "cnnlab.cli", "--course", str(root), *args],
                          env=env, capture_output=True, text=True, timeout=1800)
    if check and proc.returncode:
        raise AssertionError(f"cnnlab {' '.join(args)}: {proc.returncode}\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def _notebooks(course: Course, a: str):
    src = nbformat.read(str(course.source / a / f"{a}.ipynb"), 4)
    rel = nbformat.read(str(course.release / a / f"{a}.ipynb"), 4)
    return src, rel


def write_zips(course: Course, cases, bases, mark: str) -> dict[str, Path]:
    """One Canvas zip per assignment: each case and each honest base, as its own student."""
    zips = {}
    # Canvas's numeric user id names the student across assignments (collect matches by it), so
    # every student of the batch gets an id of its own
    students = sorted({base_student(a, k) for a, k in bases} | {c.student for c in cases})
    uids = {s: 1000 + i for i, s in enumerate(students)}
    for a in sorted({a for a, _ in bases}):
        src, rel = _notebooks(course, a)
        places = Places(
            mark=mark, root=str(course.root), gradebook=str(course.db_path),
            source_nb=str(course.source / a / f"{a}.ipynb"), victim=VICTIM,
            victim_nb=str(course.submitted / VICTIM / "02_convolution" / "02_convolution.ipynb"),
            victim_graded=str(course.autograded / VICTIM / "02_convolution"
                              / "02_convolution.ipynb"),
            secret_env=SECRET_ENV, sleep=SLEEP)
        zpath = course.root / f"download-{a}.zip"
        with zipfile.ZipFile(zpath, "w") as z:
            for aa, base in sorted(bases):
                if aa == a:
                    nb = base_notebook(a, base, src, rel)
                    student = base_student(a, base)
                    z.writestr(demo.canvas_name(student, a, uids[student]), nbformat.writes(nb))
            for case in cases:
                if case.assignment == a:
                    nb = build(case, base_notebook(a, case.base, src, rel), places)
                    z.writestr(demo.canvas_name(case.student, a, uids[case.student]),
                               nbformat.writes(nb))
        zips[a] = zpath
    return zips


def grade(root: Path, assignments, env) -> tuple[str, dict[str, int]]:
    """autograde --jobs 2 -> export -> feedback -> report, per (collected) assignment."""
    out, rcs = [], {}
    for a in assignments:
        for args in (("autograde", a, "--jobs", "2", "--timeout", str(TIMEOUT)),
                     ("export", a), ("feedback", a), ("report", a)):
            proc = _cli(root, *args, env=env)
            rcs[f"{args[0]} {a}"] = proc.returncode
            out += [f"$ cnnlab {' '.join(args)}  -> {proc.returncode}", proc.stdout, proc.stderr]
    return "\n".join(out), rcs


def read_grades(course: Course, assignments):
    scores, max_scores, flags = {}, {}, {}
    for a in assignments:
        path = course.grading / f"grades-{a}.csv"
        if not path.exists():
            continue
        with open(path) as f:
            for r in csv.DictReader(f):
                if r["assignment"] != a or r["status"] == "missing":
                    continue  # export lists every student of the course under each assignment
                scores[r["student"]] = float(r["score"])
                max_scores[r["student"]] = float(r["max_score"])
                flags[r["student"]] = (r.get("flags") or "").lower()
        state = course.state_dir(a) / "autograde.json"
        if state.exists():
            for s, v in json.loads(state.read_text()).items():
                flags[s] = (flags.get(s, "") + " | " + " | ".join(v.get("flags", []))).lower()
    return scores, max_scores, flags


def graded_messages(course: Course, student: str) -> str:
    """What the graded notebooks tell about each cell (outputs only, not sources or metadata):
    a failed check's reason, such as a from-scratch verdict, is the grader's flag there."""
    out = []
    for path in sorted((course.autograded / student).glob("*/*.ipynb")):
        try:
            nb = nbformat.read(str(path), 4)
        except Exception:  # noqa: BLE001 (a graded notebook a case broke: no messages)
            continue
        for c in nb.cells:
            for o in c.get("outputs", []):
                out += [str(o.get("text", "")), str(o.get("evalue", "")),
                        " ".join(o.get("traceback", []))]
    return "\n".join(out).lower()


def _marked_processes(mark: str, secret: str) -> list[psutil.Process]:
    """Processes a case started (its mark in the command line) or that carry the batch's secret
    (the grader's own: workers and kernels of this run)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if mark in cmd or secret in cmd:
                found.append(p)
                continue
            if "cnnlab" in cmd and any(secret in v for v in p.environ().values()):
                found.append(p)
        except (psutil.Error, OSError):
            continue
    return [p for p in found if p.pid != os.getpid()]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    cases = CASES
    bases = honest_bases(cases)
    assignments = sorted({a for a, _ in bases})
    mark = f"redteam-{secrets.token_hex(6)}"
    secret = f"instructor-secret-{secrets.token_hex(12)}"
    root = tmp_path_factory.mktemp("trusted-hostile") / "course"
    course = scratch_course(root, assignments)
    shutil.copytree(root, root.parent / "released")  # for the honest students graded alone
    zips = write_zips(course, cases, bases, mark)
    env = {**os.environ, SECRET_ENV: secret}
    children_before = {c.pid for c in psutil.Process().children(recursive=True)}
    t0 = time.perf_counter()
    # collect first (so the submissions can be hashed), then the rest
    for a, zpath in zips.items():
        _cli(root, "collect", a, str(zpath), env=env, check=True)
    submitted_before = _hashes(course.submitted)
    output, rcs = grade(root, assignments, env)
    seconds = time.perf_counter() - t0
    scores, max_scores, flags = read_grades(course, assignments)
    points = {(a, nbg(c)["grade_id"]): float(nbg(c)["points"])
              for a in assignments for c in _notebooks(course, a)[0].cells if is_test_cell(c)}
    b = Batch(root=root, course=course, mark=mark, secret=secret, scores=scores,
              max_scores=max_scores, flags=flags, points=points, output=output,
              returncodes=rcs, submitted_before=submitted_before, seconds=seconds,
              children_before=children_before)
    b.survivors = [f"{p.pid}: {' '.join(p.cmdline())[:200]}"
                   for p in _marked_processes(mark, secret) if p.is_running()]
    b.graded_after = _graded_state(course)
    time.sleep(SLEEP + 4)  # a detached process strikes now, if it survived
    b.graded_later = _graded_state(course)
    b.submitted_later = _hashes(course.submitted)
    report = os.environ.get("REDTEAM_REPORT")
    if report:  # the per-trick table for the issue note
        Path(report).write_text(json.dumps({
            "seconds": seconds, "returncodes": rcs, "survivors": b.survivors,
            "students": {s: {"score": scores.get(s), "max": max_scores.get(s),
                             "flags": flags.get(s, "")} for s in sorted(scores)}}, indent=1))
    yield b
    for p in _marked_processes(mark, secret):  # never leave this run's processes behind
        try:
            p.kill()
        except psutil.Error:
            pass


def _deserved(b: Batch, case) -> float:
    like = base_student(case.assignment, case.deserves)
    return b.scores[like] - sum(b.points[(case.assignment, t)] for t in case.fails)


# ------------------------------------------------------------------------------ the verdicts

def test_batch_completes(batch):
    bad = {k: v for k, v in batch.returncodes.items() if v != 0}
    assert not bad, (bad, batch.output[-3000:])
    want = {c.student for c in CASES} | {base_student(a, k) for a, k in honest_bases(CASES)}
    missing = sorted(want - set(batch.scores))
    assert not missing, f"not in the exported grades: {missing}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.student)
def test_trick_scores_what_its_honest_content_deserves(batch, case):
    got = batch.scores.get(case.student)
    want = _deserved(batch, case)
    assert got is not None, f"{case.student} was not graded"
    if case.at_most:
        assert got <= want, f"{case.note}: {got} > {want} (what {case.deserves} deserves)"
    else:
        assert got == want, f"{case.note}: {got}, deserves {want} (like {case.deserves})"


@pytest.mark.parametrize("case", [c for c in CASES if c.flag], ids=lambda c: c.student)
def test_trick_flagged_with_reason(batch, case):
    flags = batch.flags.get(case.student, "")
    if case.flag.lower() in flags:
        return
    assert case.flag.lower() in graded_messages(batch.course, case.student), (
        f"{case.note}: neither the flags ({flags!r}) nor a graded cell's message say "
        f"{case.flag!r}")


def test_honest_students_grade_as_alone(batch, tmp_path):
    """Every honest base, graded in a course of its own, gets what it got among the cases."""
    bases = honest_bases(CASES)
    assignments = sorted({a for a, _ in bases})
    shutil.copytree(batch.root.parent / "released", tmp_path / "alone")
    course = Course.load(tmp_path / "alone")
    zips = {}
    for a in assignments:
        src, rel = _notebooks(course, a)
        zips[a] = tmp_path / f"alone-{a}.zip"
        with zipfile.ZipFile(zips[a], "w") as z:
            for i, (aa, k) in enumerate(sorted(bases)):
                if aa == a:
                    z.writestr(demo.canvas_name(base_student(a, k), a, 100 + i),
                               nbformat.writes(base_notebook(a, k, src, rel)))
    for a, zpath in zips.items():
        _cli(course.root, "collect", a, str(zpath), env=dict(os.environ), check=True)
    _, rcs = grade(course.root, assignments, dict(os.environ))
    assert not {k: v for k, v in rcs.items() if v}, rcs
    alone, _, flags = read_grades(course, assignments)
    honest = {base_student(a, k) for a, k in bases}
    assert {s: batch.scores.get(s) for s in honest} == {s: alone[s] for s in honest}
    for a, k in bases:  # the honest ones are not flagged (the open cheat may be)
        if k not in ("plaincheat", "plainnumpy"):
            assert not batch.flags.get(base_student(a, k), "").strip(" |"), base_student(a, k)


def test_solution_gets_every_point(batch):
    for a in {c.assignment for c in CASES}:
        s = base_student(a, "solution")
        assert batch.scores[s] == batch.max_scores[s] > 0, (s, batch.scores[s])


def test_files_untouched(batch):
    """Submissions are never written; what the grader wrote stays as written, after the run too."""
    assert batch.submitted_later == batch.submitted_before
    changed = sorted(k for k in set(batch.graded_after) | set(batch.graded_later)
                     if batch.graded_after.get(k) != batch.graded_later.get(k))
    assert not changed, f"changed after the run: {changed}"
    victim = batch.course.autograded / VICTIM / "02_convolution" / "02_convolution.ipynb"
    assert b"pwned" not in victim.read_bytes()


def test_no_process_survives(batch):
    assert not batch.survivors, batch.survivors
    # what earlier tests of this pytest run left (a multiprocessing forkserver, a JupyterLab
    # server) is theirs; every command of the batch was a child of this process
    new = [c for c in psutil.Process().children(recursive=True)
           if c.pid not in batch.children_before]
    assert not new, [" ".join(c.cmdline())[:200] for c in new]


def test_nothing_written_outside_the_grader(batch):
    stray = [str(p) for p in batch.root.rglob("pwned-*")]
    assert not stray, stray


def test_no_secret_in_any_output(batch):
    assert batch.secret not in batch.output
    leaked = [str(p) for p in batch.root.rglob("*")
              if p.is_file() and batch.secret.encode() in p.read_bytes()]
    assert not leaked, leaked


def _page_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def hidden_lines(course: Course, a: str) -> list[str]:
    """Lines of ``a``'s hidden tests that the released notebook does not show anyway."""
    return hidden_test_lines(*_notebooks(course, a))


def hidden_values(course: Course, a: str) -> tuple[set[str], set[str]]:
    """(hidden inputs, hidden expected values) of ``a``'s hidden tests, as a failure message or a
    student's print would write them: the instructor's notebook is run with checks that record
    what the hidden part passes and expects."""
    src, _ = _notebooks(course, a)
    import numpy as np

    inputs, expected, recording = set(), set(), [False]

    def note_inputs(args):
        for v in args:
            if isinstance(v, np.ndarray) and v.size and recording[0]:
                inputs.add(repr(float(v.ravel()[0])))

    def check_close(got, want, *a, **k):
        if recording[0]:
            expected.update(f"{float(v):.6g}" for v in np.ravel(want)[:50]
                            if len(f"{float(v):.6g}") >= 6)

    def check_from_scratch(f, *args, **kw):
        note_inputs(args)
        kw = {k: v for k, v in kw.items() if k not in ("chapter", "forbid", "allow", "name",
                                                        "static")}
        return f(*args, **kw)

    ns: dict = {}
    for c in src.cells:
        if c.cell_type != "code":
            continue
        code = keep_solutions(c.source)
        if not is_test_cell(c):
            exec(code, ns)
            ns.update(check_close=check_close, check_from_scratch=check_from_scratch,
                      check_shape=lambda *a, **k: None, check_raises=lambda *a, **k: None)
            continue
        visible, _, hidden = code.partition(BEGIN_HIDDEN)
        exec(visible, ns)
        recording[0] = True
        exec(hidden, ns)
        recording[0] = False
    return inputs, expected


def test_feedback_hides_hidden_tests_and_values(batch):
    course = batch.course
    inputs, expected = hidden_values(course, "02_convolution")
    assert inputs and expected
    leaks = []
    for a in {c.assignment for c in CASES}:
        lines = hidden_lines(course, a)
        for page in sorted(course.feedback.glob(f"*/{a}/*.html")):
            text = _page_text(page)
            page_lines = {line.strip() for line in text.split("\n")}
            leaks += [(page.parent.parent.name, "source", h) for h in lines if h in page_lines]
            if a == "02_convolution":
                leaks += [(page.parent.parent.name, "input", v) for v in inputs if v in text]
                leaks += [(page.parent.parent.name, "expected", v) for v in expected
                          if re.search(rf"(?<![\d.]){re.escape(v)}(?![\d])", text)]
    assert not leaks, leaks[:20]


def test_feedback_escapes_student_html(batch):
    """No script, event handler or javascript: link a student wrote is live in any page."""
    live = re.compile(rf'<script>alert\("{batch.mark}"\)|<img[^>]*onerror|'
                      r'href="\s*javascript:|href="java&#115;cript', re.I)
    pages = [*batch.course.feedback.glob("*/*/*.html"), *batch.course.grading.glob("*.html")]
    bad = [(str(p), m.group(0)) for p in pages for m in [live.search(p.read_text())] if m]
    assert not bad, bad
