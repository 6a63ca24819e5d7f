"""The gradebook on any SQLAlchemy database: sqlite by default, a real PostgreSQL 15 server here.

``pg.postgres`` starts the server (initdb + pg_ctl as the ``postgres`` user, a temporary folder, a
free port on 127.0.0.1) once per session. The cycle test runs the whole instructor cycle through
the CLI against it while a second process writes manual grades the way the formgrader does.
"""

from __future__ import annotations

import ast
import csv
import multiprocessing
import socket
import time
from pathlib import Path

import pytest
from pg import postgres  # noqa: F401  (the fixture)

from cnnlab.cli import main
from cnnlab.instructor import demo
from cnnlab.instructor.course import Course, masked_url, resolve_db_url

PASSWORD = "hunter2-not-for-logs"


def _course_with(tmp_path: Path, db_url: str) -> Path:
    root = demo.toy_course(tmp_path)
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"c.CourseDirectory.db_url = {db_url!r}\n")
    return root


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------ URLs, no server

def test_sqlite_paths_are_relative_to_the_course():
    assert resolve_db_url("sqlite:///g/gb.db", Path("/c")) == "sqlite:////c/g/gb.db"
    assert resolve_db_url("sqlite:////abs/gb.db", Path("/c")) == "sqlite:////abs/gb.db"
    url = f"postgresql+psycopg://grader:{PASSWORD}@db.example.org:5432/course"
    assert resolve_db_url(url, Path("/c")) == url


def test_masked_url_hides_the_password():
    shown = masked_url(f"postgresql+psycopg://grader:{PASSWORD}@db:5432/course")
    assert shown == "postgresql+psycopg://grader:***@db:5432/course"


@pytest.mark.parametrize("url", [f"postgresql+nodriver://grader:{PASSWORD}@db/course",
                                 f"nosuchdb://grader:{PASSWORD}@db/course"])
def test_unusable_url_is_refused_without_the_password(tmp_path, url):
    with pytest.raises(ValueError, match="not a database URL SQLAlchemy can use") as e:
        Course.load(_course_with(tmp_path, url))
    assert PASSWORD not in str(e.value) and "grader:***@db/course" in str(e.value)


def test_unreachable_server_is_one_clear_error_without_the_password(tmp_path, capsys):
    port = _closed_port()
    root = _course_with(tmp_path, f"postgresql+psycopg://grader:{PASSWORD}@127.0.0.1:{port}/c")
    assert main(["--course", str(root), "export", "toy"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the gradebook postgresql+psycopg://grader:***@127.0.0.1:{port}/c" in err
    assert PASSWORD not in err


def test_cnnlab_has_no_sqlite3_specific_code():
    """Every gradebook access goes through SQLAlchemy (nbgrader's Gradebook), never sqlite3."""
    package = Path(__file__).resolve().parents[1] / "cnnlab"
    users = []
    for p in package.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "sqlite3" for n in names):
                users.append(p.relative_to(package).as_posix())
    assert users == [], f"sqlite3 used directly in {users}: go through SQLAlchemy"


# ------------------------------------------------------------------------ a real server

def test_wrong_password_is_refused_without_it(postgres, tmp_path, capsys):  # noqa: F811
    url = postgres.new_database().replace(postgres.password, PASSWORD)
    root = _course_with(tmp_path, url)
    assert main(["--course", str(root), "export", "toy"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the gradebook" in err and "password authentication failed" in err
    assert PASSWORD not in err and postgres.password not in err


def _formgrader(db_url: str, student: str, cell: str, ready, stop, log) -> None:
    """What the formgrader does when a TA scores a cell: nbgrader's Gradebook API, one commit
    per edit; ``ready`` after the first, repeated until ``stop``, each commit's time and score
    sent to ``log``."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, "default_course") as gb:
        i = 0
        while not stop.is_set():
            grade = gb.find_grade(cell, "toy", "toy", student)
            grade.manual_score = 0.25 * (i % 4 + 1)
            gb.db.commit()
            log.put((time.time(), grade.manual_score))
            ready.set()
            i += 1
            time.sleep(0.05)


def _db_cells(db_url: str) -> dict[tuple[str, str], tuple]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url, "default_course") as gb:
        sub_cells = {}
        for student in ("ada", "alan", "grace"):
            for nb in gb.find_submission("toy", student).notebooks:
                for g in nb.grades:
                    sub_cells[student, g.name] = (g.auto_score, g.manual_score,
                                                  g.needs_manual_grade)
        return sub_cells


@pytest.mark.slow
def test_whole_cycle_on_postgresql_with_a_concurrent_manual_grade(postgres, tmp_path):  # noqa: F811
    """release -> collect -> autograde -> feedback -> export -> report into PostgreSQL; then a
    regrade of ada while a TA scores ada's test_square by hand: both writes are kept."""
    url = postgres.new_database()
    root = _course_with(tmp_path, url)
    course = Course.load(root)
    assert course.db_path is None
    assert postgres.password not in course.db_shown + repr(course)
    c = ["--course", str(root)]
    assert main(c + ["release", "toy"]) == 0
    zpath = demo.write_sample_zip(course, "toy", root / "download.zip")
    assert main(c + ["collect", "toy", str(zpath)]) == 0
    assert main(c + ["autograde", "toy", "--jobs", "2", "--timeout", "30"]) == 0
    first = _db_cells(url)
    assert {k: v[0] for k, v in first.items() if k[0] == "ada"} == {
        ("ada", "test_square"): 1.0, ("ada", "test_square_hidden"): 2.0, ("ada", "test_cube"): 2.0}

    ctx = multiprocessing.get_context("spawn")
    ready, stop, log = ctx.Event(), ctx.Event(), ctx.Queue()
    ta = ctx.Process(target=_formgrader, args=(url, "ada", "test_square", ready, stop, log))
    ta.start()
    assert ready.wait(180), "the formgrader process never committed an edit"
    t0 = time.time()
    try:
        assert main(c + ["autograde", "toy", "--student", "ada", "--timeout", "30"]) == 0
    finally:
        t1 = time.time()
        stop.set()
        ta.join(60)
    assert ta.exitcode == 0
    edits = []
    while not log.empty():
        edits.append(log.get())
    during = [e for e in edits if t0 <= e[0] <= t1]
    assert len(during) >= 3, f"the TA's edits did not overlap the regrade ({len(edits)} edits)"

    after = _db_cells(url)
    assert after["ada", "test_square"] == (1.0, edits[-1][1], False), "both writes kept"
    assert {k: v for k, v in after.items() if k != ("ada", "test_square")} == {
        k: v for k, v in first.items() if k != ("ada", "test_square")}

    for cmd in ("feedback", "export", "report"):
        assert main(c + [cmd, "toy"]) == 0, cmd
    rows = {r["student"]: r for r in csv.DictReader(open(course.grading / "grades-toy.csv"))}
    assert {s: float(r["score"]) for s, r in rows.items()} == {
        "ada": 4.0 + edits[-1][1], "alan": 0.0, "grace": 3.0}
    assert (course.feedback / "ada" / "toy" / "toy.html").is_file()
    assert (course.grading / "report-toy.html").is_file()
