"""``cnnlab collect`` on downloads laid out as Canvas, Moodle, Blackboard and a plain folder lay
them out (zips and folders built here): resubmissions, attempts, late markers, name collisions,
accents, receipts, junk, broken entries, caps, and the class list. No grading: seconds."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime

import nbformat
import pytest

from cnnlab.instructor import collect, demo, late, lms
from cnnlab.instructor.course import Course, ensure_tools_on_path
from cnnlab.instructor.lms import base
from cnnlab.instructor.roster import Roster, import_roster

QUIET = {"log": lambda *a: None}


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory):
    """An empty nbgrader gradebook, made once (nbgrader creates one in a subprocess: seconds)."""
    from nbgrader.api import Gradebook

    ensure_tools_on_path()
    path = tmp_path_factory.mktemp("gb") / "gradebook.db"
    with Gradebook(f"sqlite:///{path}"):
        pass
    return path


@pytest.fixture
def course(tmp_path, empty_gradebook):
    c = Course.load(demo.toy_course(tmp_path / "course"))
    c.ensure_grading_dir()
    shutil.copy(empty_gradebook, c.db_path)
    return c


def _nb(marker: str) -> bytes:
    """A valid notebook whose answer says ``marker`` (to tell which file was kept)."""
    nb = demo.toy_notebook()
    nb.cells[2].source = f"def square(x):\n    return x * x  # {marker}"
    return nbformat.writes(nb).encode()


def _zip(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def _kept(course, student) -> str:
    return (course.submitted / student / "toy" / "toy.ipynb").read_text()


def _stamp(course, student) -> datetime | None:
    p = course.submitted / student / "toy" / "timestamp.txt"
    if not p.exists():
        return None
    from nbgrader.utils import parse_utc

    return parse_utc(p.read_text()).replace(tzinfo=UTC)


# ------------------------------------------------------------------------------- detection

@pytest.mark.parametrize("names, layout", [
    (["smithjane_123_456_toy.ipynb", "README.txt"], "canvas"),
    (["José Müller_17_assignsubmission_file_toy.ipynb"], "moodle"),
    (["José Müller_17_assignsubmission_file_/toy.ipynb"], "moodle"),
    (["toy_jdoe_attempt_2025-10-01-12-00-00_toy.ipynb"], "blackboard"),
    (["ada.ipynb", "grace/toy.ipynb"], "plain"),
])
def test_detect(names, layout):
    assert lms.detect(names, "toy") == layout


# ------------------------------------------------------------------------------------ Canvas

def test_canvas_resubmissions_late_collisions_and_junk(course):
    due = datetime(2025, 10, 1, 23, 59, tzinfo=UTC)
    late.set_due_date(course, "toy", due, **QUIET)
    files = {  # zip order is NOT attempt order
        "smithjane_123_900_toy-2.ipynb": _nb("jane attempt 2"),
        "smithjane_123_900_toy.ipynb": _nb("jane attempt 0"),
        "smithjane_123_900_toy-1.ipynb": _nb("jane attempt 1"),
        "smithjohn_LATE_111_901_toy.ipynb": _nb("john 111"),
        "smithjohn_222_902_toy.ipynb": _nb("john 222"),
        "__MACOSX/._smithjane_123_900_toy.ipynb": b"\x00\x05junk",
        ".DS_Store": b"junk",
        "README.txt": b"not a submission",
    }
    res = collect.collect(course, "toy", _zip(course.root / "canvas.zip", files), **QUIET)
    assert res.layout == "canvas"
    assert sorted(res.placed) == ["smithjane", "smithjohn-111", "smithjohn-222"]
    assert "jane attempt 2" in _kept(course, "smithjane")
    assert sorted(d["file"] for d in res.dropped) == ["smithjane_123_900_toy-1.ipynb",
                                                     "smithjane_123_900_toy.ipynb"]
    assert {d["kept"] for d in res.dropped} == {"smithjane_123_900_toy-2.ipynb"}
    assert "john 111" in _kept(course, "smithjohn-111")
    assert "john 222" in _kept(course, "smithjohn-222")
    assert any("marked LATE" in f for f in res.flags["smithjohn-111"])
    assert _stamp(course, "smithjohn-111") == due.replace(second=1)
    assert _stamp(course, "smithjane") is None
    assert [u["file"] for u in res.unplaced] == ["README.txt"]
    # the Canvas user ids are in the gradebook: the next download finds the same students
    ids = {s.id: s.lms_user_id for s in Roster.load(course).students.values()}
    assert ids == {"smithjane": "123", "smithjohn-111": "111", "smithjohn-222": "222"}


def test_canvas_notebook_whose_own_name_ends_in_a_number(tmp_path, empty_gradebook):
    course = Course.load(demo.toy_course(tmp_path / "c", "lab-1"))
    course.ensure_grading_dir()
    shutil.copy(empty_gradebook, course.db_path)
    path = _zip(tmp_path / "c.zip", {"ada_1_2_lab-1.ipynb": _nb("ada")})
    res = collect.collect(course, "lab-1", path, **QUIET)
    assert res.placed == {"ada": ["lab-1"]} and "ada" not in res.flags


def test_canvas_with_a_class_list(course, tmp_path):
    roster = tmp_path / "canvas-export.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,toy (5)\n"
        "    Points Possible,,,,,5\n"
        '"Smith, John",111,S111,jsmith,Mon,\n'
        '"Smith, Johnny",222,S222,jsmith2,Tue,\n'
        '"Lovelace, Ada",333,S333,alovelace,Mon,\n'
        '"Student, Test",999,,,,\n')
    import_roster(course, roster, **QUIET)
    files = {"smithjohn_111_1_toy.ipynb": _nb("a"), "smithjohn_222_2_toy.ipynb": _nb("b"),
             "hackerx_444_4_toy.ipynb": _nb("c")}
    res = collect.collect(course, "toy", _zip(tmp_path / "c.zip", files), **QUIET)
    assert sorted(res.placed) == ["hackerx", "jsmith", "jsmith2"]
    assert res.missing == ["alovelace"]
    assert res.unknown == ["hackerx"]
    rec = json.loads((course.state_dir("toy") / "collect.json").read_text())
    assert rec["missing"] == ["alovelace"] and rec["unknown"] == ["hackerx"]


# ------------------------------------------------------------------------------------ Moodle

class _NoUtf8Flag(zipfile.ZipInfo):
    """A zip entry whose UTF-8 name is stored without the UTF-8 flag (as some LMSs write)."""

    def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's name
        return self.filename.encode("utf-8"), self.flag_bits & ~0x800


@pytest.mark.parametrize("folders", [False, True])
def test_moodle_flat_and_folders_with_accents(course, tmp_path, folders):
    def name(full, pid, file):
        return (f"{full}_{pid}_assignsubmission_file_/{file}" if folders
                else f"{full}_{pid}_assignsubmission_file_{file}")

    path = tmp_path / "moodle.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name("José Müller", 17, "toy.ipynb"), _nb("jose"))
        z.writestr(_NoUtf8Flag(name("Zoë Ångström", 18, "my homework.ipynb")), _nb("zoe"))
        z.writestr(name("Ana Li", 19, "toy.ipynb"), _nb("ana 19"))
        z.writestr(name("Ana Li", 20, "toy.ipynb"), _nb("ana 20"))
        z.writestr(f"Ana Li_19_assignsubmission_onlinetext_{'/' if folders else ''}"
                   "onlinetext.html", b"<p>see my notebook</p>")
    res = collect.collect(course, "toy", path, **QUIET)
    assert res.layout == "moodle"
    assert sorted(res.placed) == ["anali-19", "anali-20", "josemuller", "zoeangstrom"]
    assert "zoe" in _kept(course, "zoeangstrom")
    assert any("wrongly named" in f for f in res.flags["zoeangstrom"])
    assert "ana 20" in _kept(course, "anali-20")
    assert [u["reason"] for u in res.unplaced] == ["not a notebook (.ipynb expected)"]


def test_moodle_matches_the_class_list_by_name(course, tmp_path):
    roster = tmp_path / "moodle.csv"
    roster.write_text("First name,Last name,Username,Email address\n"
                      "Jose,Muller,jmuller,jmuller@uni.example\n"
                      "Ada,Lovelace,alovelace,ada@uni.example\n")
    import_roster(course, roster, **QUIET)
    path = _zip(tmp_path / "m.zip",
                {"José Müller_17_assignsubmission_file_toy.ipynb": _nb("jose")})
    res = collect.collect(course, "toy", path, **QUIET)
    assert list(res.placed) == ["jmuller"] and res.missing == ["alovelace"]


# -------------------------------------------------------------------------------- Blackboard

def _receipt(full, user, when):
    return (f"Name: {full} ({user})\nAssignment: Toy\nDate Submitted: {when}\n"
            "Current Grade: Needs Grading\n\nFiles:\n\tOriginal filename: toy.ipynb\n").encode()


def test_blackboard_attempts_and_receipts(course, tmp_path):
    t1, t2 = "2025-10-01-09-00-00", "2025-10-02-08-30-00"
    files = {
        f"Toy_jdoe_attempt_{t2}_toy.ipynb": _nb("jdoe second"),
        f"Toy_jdoe_attempt_{t2}.txt": _receipt("Jane Doe", "jdoe", "2 October 2025"),
        f"Toy_jdoe_attempt_{t1}_toy.ipynb": _nb("jdoe first"),
        f"Toy_jdoe_attempt_{t1}.txt": _receipt("Jane Doe", "jdoe", "1 October 2025"),
        f"Toy_mary_ann_attempt_{t1}_toy.ipynb": _nb("mary ann"),
        f"Toy_mary_ann_attempt_{t1}.txt": _receipt("Mary Ann", "mary_ann", "1 October 2025"),
    }
    res = collect.collect(course, "toy", _zip(tmp_path / "bb.zip", files), **QUIET,
                          timezone="Europe/London")
    assert res.layout == "blackboard"
    assert sorted(res.placed) == ["jdoe", "mary_ann"]  # attempts are not students
    assert "jdoe second" in _kept(course, "jdoe")
    assert res.dropped == [{"student": "jdoe", "file": f"Toy_jdoe_attempt_{t1}_toy.ipynb",
                            "kept": f"Toy_jdoe_attempt_{t2}_toy.ipynb"}]
    # 08:30 in London (BST, UTC+1) is 07:30 UTC
    assert _stamp(course, "jdoe") == datetime(2025, 10, 2, 7, 30, tzinfo=UTC)
    assert not res.unplaced  # receipts are read, not reported


# ---------------------------------------------------------------------------- plain folders

def test_plain_folder_is_not_flagged_and_keeps_timestamps(course, tmp_path):
    d = tmp_path / "subs"
    d.mkdir()
    (d / "ada.ipynb").write_bytes(_nb("ada"))
    (d / "grace").mkdir()
    (d / "grace" / "toy.ipynb").write_bytes(_nb("grace"))
    (d / "grace" / "timestamp.txt").write_text("2025-10-01 10:00:00.000000 UTC")
    # alan's instructor placed a timestamp by hand in the submitted folder
    hand = course.submitted / "alan" / "toy"
    hand.mkdir(parents=True)
    (hand / "timestamp.txt").write_text("2025-09-30 08:00:00 UTC")
    (d / "alan.ipynb").write_bytes(_nb("alan"))
    res = collect.collect(course, "toy", d, **QUIET)
    assert res.layout == "plain"
    assert sorted(res.placed) == ["ada", "alan", "grace"]
    assert "grace" not in res.flags and "ada" not in res.flags
    assert _stamp(course, "grace") == datetime(2025, 10, 1, 10, tzinfo=UTC)
    assert _stamp(course, "alan") == datetime(2025, 9, 30, 8, tzinfo=UTC)
    assert any("kept the timestamp.txt" in f for f in res.flags["alan"])


def test_unknown_time_zone_is_refused(course, tmp_path):
    path = _zip(tmp_path / "c.zip", {"ada.ipynb": _nb("x")})
    with pytest.raises(ValueError, match="Mars/Olympus"):
        collect.collect(course, "toy", path, timezone="Mars/Olympus", **QUIET)


def test_forced_layout_reports_names_it_cannot_read(course, tmp_path):
    path = _zip(tmp_path / "c.zip", {"smithjane_1_2_toy.ipynb": _nb("x")})
    res = collect.collect(course, "toy", path, layout="moodle", **QUIET)
    assert not res.placed
    assert "not a Moodle download name" in res.unplaced[0]["reason"]


# ------------------------------------------------------------ one bad entry never stops a class

def _bad_crc_zip(path, good: dict[str, bytes], bad_name: str):
    files = dict(good)
    files[bad_name] = _nb("will be corrupted")
    _zip(path, files)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(bad_name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + 10] ^= 0xFF  # a stored (uncompressed) byte: the CRC no longer matches
    path.write_bytes(bytes(raw))
    return path


def test_deep_nesting_and_bad_crc_are_that_entry_only(course, tmp_path):
    deep = b'{"nbformat": 4, "cells": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    path = _bad_crc_zip(tmp_path / "bad.zip",
                        {"ada_1_1_toy.ipynb": _nb("ada"), "deep_2_2_toy.ipynb": deep},
                        "crc_3_3_toy.ipynb")
    res = collect.collect(course, "toy", path, **QUIET)
    assert list(res.placed) == ["ada"]
    assert "nested" in res.unusable["deep"][0]
    assert "CRC" in res.unusable["crc"][0] or "Bad" in res.unusable["crc"][0]


def test_caps_apply_to_folders_as_to_zips(course, tmp_path, monkeypatch):
    monkeypatch.setattr(base, "MAX_FILE_BYTES", 20_000)
    monkeypatch.setattr(base, "MAX_DEPTH", 2)
    big = _nb("big") + b" " * 30_000
    d = tmp_path / "subs"
    (d / "a" / "b" / "c").mkdir(parents=True)
    (d / "ada.ipynb").write_bytes(_nb("ada"))
    (d / "huge.ipynb").write_bytes(big)
    (d / "a" / "b" / "c" / "deep.ipynb").write_bytes(_nb("deep"))
    (d / "link.ipynb").symlink_to(d / "ada.ipynb")
    res = collect.collect(course, "toy", d, **QUIET)
    reasons = {u["file"]: u["reason"] for u in res.unplaced}
    assert list(res.placed) == ["ada"]
    assert "byte limit" in reasons["huge.ipynb"]
    assert "nested 3 folders deep" in reasons["a/b/c/deep.ipynb"]
    assert "symbolic link" in reasons["link.ipynb"]
    zres = collect.collect(course, "toy", _zip(tmp_path / "z.zip", {"huge.ipynb": big}), **QUIET)
    assert "byte limit" in zres.unplaced[0]["reason"]
