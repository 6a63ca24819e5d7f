"""A course-wide lock: one ``cnnlab autograde`` at a time on a course's gradebook.

``grading/cnnlab/autograde.lock`` is locked with ``flock`` (the operating system releases it
when the process ends, even killed) and says who holds it, so the second run is refused with a
message naming the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
from datetime import UTC, datetime

from .course import Course


class CourseLocked(ValueError):
    """Another cnnlab process holds the course's lock."""


@contextlib.contextmanager
def course_lock(course: Course, command: str, assignment: str):
    d = course.grading / "cnnlab"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "autograde.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                who = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                who = {}
            raise CourseLocked(
                f"another `cnnlab {who.get('command', 'autograde')} {who.get('assignment', '?')}` "
                f"is running on this course (pid {who.get('pid', '?')}, user "
                f"{who.get('user', '?')} on {who.get('host', '?')}, "
                f"since {who.get('since', '?')}): "
                f"wait for it to finish; two runs would grade into one gradebook at once. "
                f"Lock file: {path}") from None
        info = {"command": command, "assignment": assignment, "pid": os.getpid(),
                "user": getpass.getuser(), "host": socket.gethostname(),
                "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield info
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
