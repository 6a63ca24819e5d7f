"""Class records without running notebooks: the class list, due dates and each late-penalty
method, the Canvas and Moodle import files parsed back as the LMS reads them, stale grades after a
re-release, a failed release, the course lock, the audit log and a report at 1,000 students.

Grades are written into a real nbgrader gradebook with nbgrader's API (as autograde writes them),
on a toy course released once by nbgrader and copied for each test."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import nbformat
import pytest

from cnnlab.cli import main
from cnnlab.instructor import audit, demo, export, late, release, report, versions
from cnnlab.instructor.course import Course
from cnnlab.instructor.lock import CourseLocked, course_lock
from cnnlab.instructor.roster import Roster, import_roster, parse_roster

# nbgrader's update_or_create_submission makes SQLAlchemy warn (its own code path)
pytestmark = pytest.mark.filterwarnings("ignore:.*not in session")
QUIET = {"log": lambda *a: None}
DUE = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
CANVAS_ROSTER = ("Student,ID,SIS User ID,SIS Login ID,Section\n"
                 "    Points Possible,,,,\n"
                 '"Lovelace, Ada",1001,S1,ada,Mon\n'
                 '"Hopper, Grace",1002,S2,grace,Tue\n'
                 '"Turing, Alan",1003,S3,alan,Mon\n')


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    root = demo.toy_course(tmp_path_factory.mktemp("released"))
    demo.toy_course(root, "toy2")
    release.release(Course.load(root), **QUIET)
    return root


@pytest.fixture
def course(released, tmp_path):
    root = tmp_path / "course"
    shutil.copytree(released, root)
    return Course.load(root)


def grade(course, student, assignment="toy", fraction=1.0, when=None):
    """Record a graded submission as autograde does: every test cell scored ``fraction`` of its
    points, then the late penalty."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(assignment, student,
                                             timestamp=when.replace(tzinfo=None) if when else None)
        for nb in sub.notebooks:
            for g in nb.grades:
                g.auto_score = g.max_score * fraction
                g.needs_manual_grade = False
        gb.db.commit()
    late.apply_penalties(course, assignment, [student], log=lambda *a: None)
    sub_dir = course.submitted / student / assignment
    sub_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(course.release / assignment / f"{assignment}.ipynb", sub_dir)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


# -------------------------------------------------------------------------------- class list

@pytest.mark.parametrize("text, ids", [
    (CANVAS_ROSTER, ["ada", "grace", "alan"]),
    ("First name,Last name,Email address\nJosé,Müller,jmuller@uni.example\n", ["jmuller"]),
    ("id,name,email,section\nada,Ada Lovelace,ada@x.org,A\n", ["ada"]),
])
def test_parse_roster_layouts(text, ids):
    _, students = parse_roster(text)
    assert [s.id for s in students] == ids


def test_parse_roster_refuses_duplicates_and_unknown_layouts():
    with pytest.raises(ValueError, match="twice"):
        parse_roster("id,name\nada,A\nada,B\n")
    with pytest.raises(ValueError, match="cannot read the class list"):
        parse_roster("foo,bar\n1,2\n")


def test_roster_import_stores_nbgrader_students(course, tmp_path):
    (tmp_path / "r.csv").write_text(CANVAS_ROSTER)
    assert main(["--course", str(course.root), "roster", "import", str(tmp_path / "r.csv")]) == 0
    r = Roster.load(course)
    assert r.enrolled == {"ada", "grace", "alan"}
    ada = r.students["ada"]
    assert (ada.first_name, ada.last_name, ada.lms_user_id, ada.section) == (
        "Ada", "Lovelace", "1001", "Mon")
    assert r.missing({"ada", "zed"}) == ["alan", "grace"] and r.unknown({"ada", "zed"}) == ["zed"]


# ---------------------------------------------------------------------- due dates, penalties

PENALTY_CONFIGS = {
    "none": ("", lambda raw: raw),
    "zero": ('c.LateSubmissionPlugin.penalty_method = "zero"\n', lambda raw: 0.0),
    "per-day": ('c.AssignLatePenalties.plugin_class = "cnnlab.instructor.late.PerDayPenalty"\n'
                "c.PerDayPenalty.fraction_per_day = 0.1\n", lambda raw: raw * (1 - 0.3)),
}


@pytest.mark.parametrize("method", sorted(PENALTY_CONFIGS))
def test_late_penalty_methods_agree_with_nbgrader_export(course, method, tmp_path):
    config, expected = PENALTY_CONFIGS[method]
    with open(course.root / "nbgrader_config.py", "a") as f:
        f.write(config)
    course = Course.load(course.root)
    grade(course, "ontime", when=DUE - timedelta(hours=1))
    grade(course, "latecomer", fraction=0.8, when=DUE + timedelta(days=2, hours=3))  # 3 days
    assert main(["--course", str(course.root), "due", "toy", "2025-10-01 13:00",
                 "--timezone", "Europe/London"]) == 0  # 13:00 BST = 12:00 UTC
    assert late.due_date(course, "toy") == DUE
    grades, _ = export.export(course, "toy", **QUIET)
    rows = {r["student"]: r for r in csv.DictReader(open(grades))}
    assert float(rows["ontime"]["score"]) == 5.0
    assert float(rows["latecomer"]["raw_score"]) == 4.0
    assert float(rows["latecomer"]["score"]) == pytest.approx(expected(4.0))
    # nbgrader's own export reads the same gradebook: the same scores
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    with Gradebook(course.db_url) as gb:
        CsvExportPlugin(to=str(tmp_path / "nbgrader.csv")).export(gb)
    with open(tmp_path / "nbgrader.csv") as f:
        theirs = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)
                  if r["assignment"] == "toy"}
    assert theirs["latecomer"] == pytest.approx(float(rows["latecomer"]["score"]))
    assert theirs["ontime"] == 5.0


def test_per_day_penalty_refuses_a_bad_fraction():
    with pytest.raises(ValueError, match="between 0 and 1"):
        late.PerDayPenalty(fraction_per_day=2.0).late_submission_penalty("s", 5.0, 10.0)


# ----------------------------------------------------------------- LMS import files, parsed back

def test_canvas_export_is_canvas_gradebook_layout(course, tmp_path):
    (tmp_path / "r.csv").write_text(CANVAS_ROSTER)
    import_roster(course, tmp_path / "r.csv", **QUIET)
    with open(course.root / "nbgrader_config.py", "a") as f:
        f.write('c.LateSubmissionPlugin.penalty_method = "zero"\n')
    course = Course.load(course.root)
    late.set_due_date(course, "toy", DUE, **QUIET)
    grade(course, "ada", when=DUE - timedelta(days=1))
    grade(course, "grace", fraction=0.6, when=DUE - timedelta(days=1))
    grade(course, "grace", "toy2", fraction=0.4)
    grade(course, "alan", when=DUE + timedelta(minutes=5))  # late, zero method
    (path,) = export.export(course, None, fmt="canvas", **QUIET)
    rows = _rows(path)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "toy", "toy2"]
    assert rows[1][0].strip() == "Points Possible" and rows[1][5:] == ["5", "5"]
    by_id = {r[1]: dict(zip(rows[0], r, strict=True)) for r in rows[2:]}
    assert set(by_id) == {"1001", "1002", "1003"}  # Canvas finds students by its user id
    assert by_id["1001"]["Student"] == "Lovelace, Ada" and by_id["1001"]["Section"] == "Mon"
    assert (by_id["1001"]["toy"], by_id["1002"]["toy"], by_id["1003"]["toy"]) == ("5", "3", "0")
    assert by_id["1002"]["toy2"] == "2" and by_id["1001"]["toy2"] == ""  # missing: left blank


def test_moodle_export_is_keyed_on_username_and_email(course, tmp_path):
    (tmp_path / "m.csv").write_text("First name,Last name,Username,Email address\n"
                                    "Ada,Lovelace,ada,ada@uni.example\n"
                                    "Zoë,Ångström,zoe,zoe@uni.example\n")
    import_roster(course, tmp_path / "m.csv", **QUIET)
    grade(course, "ada", fraction=0.8)
    assert main(["--course", str(course.root), "export", "toy", "--format", "moodle"]) == 0
    with open(course.grading / "moodle-grades-toy.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["Username", "Email address", "First name", "Last name", "toy"]
    got = {r["Email address"]: r for r in rows}
    assert got["ada@uni.example"]["toy"] == "4" and got["ada@uni.example"]["Username"] == "ada"
    assert got["zoe@uni.example"]["toy"] == "" and got["zoe@uni.example"]["First name"] == "Zoë"


# ------------------------------------------------------------------- re-release, stale grades

def _edit_test(course, assignment="toy"):
    path = course.source / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(str(path), 4)
    nb.cells[3].source += "\nassert square(4) == 16"
    nbformat.write(nb, str(path))


def test_rerelease_needs_force_and_marks_grades_stale(course):
    grade(course, "ada")
    versions.record_graded(course, "toy", ["ada"])
    _edit_test(course)
    with pytest.raises(ValueError, match="--force"):
        release.release(course, ["toy"], **QUIET)
    assert main(["--course", str(course.root), "release", "toy"]) == 2
    release.release(course, ["toy"], force=True, **QUIET)
    assert versions.stale_students(course, "toy") == ["ada"]
    grades, _ = export.export(course, "toy", **QUIET)
    assert {r["student"]: r["stale"] for r in csv.DictReader(open(grades))} == {"ada": "True"}
    (canvas,) = export.export(course, "toy", fmt="canvas", **QUIET)
    assert _rows(canvas)[2][5] == ""  # a stale grade is not sent to the LMS
    page = report.report(course, "toy", **QUIET).read_text()
    assert "Stale (1)" in page and "ada" in page.split("Stale (1)")[1][:400]
    versions.record_graded(course, "toy", ["ada"])  # what autograde --stale does once regraded
    assert versions.stale_students(course, "toy") == []


def test_failed_release_leaves_exercises_as_they_were(course):
    before = (course.release / "toy" / "toy.ipynb").read_bytes()
    path = course.source / "toy" / "toy.ipynb"
    nb = nbformat.read(str(path), 4)
    nb.cells[4].metadata["nbgrader"]["grade_id"] = "test_square"  # a duplicated grade id
    nbformat.write(nb, str(path))
    with pytest.raises(release.ReleaseError, match="left as it was"):
        release.release(course, ["toy"], **QUIET)
    assert (course.release / "toy" / "toy.ipynb").read_bytes() == before
    assert main(["--course", str(course.root), "release", "toy"]) == 2  # a message, no traceback


# ----------------------------------------------------------------------------------- the lock

def test_lock_refuses_a_second_autograde(course, capsys):
    from cnnlab.instructor import autograde

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom cnnlab.instructor.course import Course\n"
         "from cnnlab.instructor.lock import course_lock\n"
         f"with course_lock(Course.load({str(course.root)!r}), 'autograde', 'toy'):\n"
         "    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CourseLocked, match=f"pid {holder.pid}"):
            autograde.autograde(course, "toy", **QUIET)
        assert main(["--course", str(course.root), "autograde", "toy"]) == 2
        assert "is running on this course" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the system releases a killed holder's lock
        try:
            with course_lock(course, "autograde", "toy"):
                break
        except CourseLocked:
            assert time.monotonic() < deadline, "the lock outlived its holder"
            time.sleep(0.1)


# ------------------------------------------------------------------------------ the audit log

def test_audit_log_is_appended_and_filtered(course, capsys):
    grade(course, "ada")
    grade(course, "grace", fraction=0.4)
    export.export(course, "toy", **QUIET)
    export.export(course, "toy", fmt="canvas", **QUIET)
    lines = audit.log_path(course).read_text().splitlines()
    records = [json.loads(x) for x in lines]
    assert [r["event"] for r in records] == ["release", "release", "export", "export"]
    last = records[-1]
    assert last["version"] == versions.source_version(course, "toy")
    assert {e["student"]: e["score"] for e in last["entries"]} == {"ada": 5.0, "grace": 2.0}
    assert last["user"] and last["time"].endswith("+00:00")
    mine = audit.read(course, "grace")
    assert [r["event"] for r in mine] == ["export", "export"]
    assert all(len(r["entries"]) == 1 for r in mine)
    assert main(["--course", str(course.root), "log", "grace"]) == 0
    out = capsys.readouterr().out
    assert "export" in out and "grace  2/5" in out and "ada" not in out


# --------------------------------------------------------------------------- report at scale

def _png_size(b64: str) -> tuple[int, int]:
    raw = base64.b64decode(b64)
    return struct.unpack(">II", raw[16:24])


def test_report_figures_stay_small_at_1000_students():
    """Distributions, not one bar per student: the figures' size does not grow with the class."""
    rows = [{"student": f"s{i:04d}", "score": i % 6, "max_score": 5, "status": "graded"}
            for i in range(1000)]
    cells = [{"cell": f"test_{j}", "failed": (i + j) % 3 == 0}
             for i in range(1000) for j in range(3)]
    state = {r["student"]: {"status": "graded", "seconds": 1 + i % 7} for i, r in enumerate(rows)}
    figs, rates = report._figures(rows, cells, state)
    sizes = [_png_size(b64) for b64 in figs.values()]
    assert len(sizes) == 3 and max(h for _, h in sizes) < 600, sizes
    assert rates["test_0"] == pytest.approx(100 * 334 / 1000)


def test_report_missing_late_stale_section(course):
    for i in range(12):
        if i % 4 == 3:
            from nbgrader.api import Gradebook

            with Gradebook(course.db_url) as gb:  # on the class, nothing handed in
                gb.update_or_create_student(f"s{i:02d}")
            continue
        grade(course, f"s{i:02d}", fraction=(i % 3) / 2,
              when=DUE + timedelta(hours=i) if i % 4 == 1 else None)
    late.set_due_date(course, "toy", DUE, **QUIET)
    page = report.report(course, "toy", **QUIET).read_text()
    section = page.split('id="missing-late-stale"')[1].split("<h2")[0]
    assert "Missing (3)" in section and "s03, s07, s11" in section
    assert "Late (3)" in section and "<td>s09</td><td>9.0 h</td>" in section
    assert "9 submissions" in page and "counting them as 0" in page
