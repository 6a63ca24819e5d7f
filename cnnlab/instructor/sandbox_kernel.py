"""The grading kernel: ipykernel started inside limits, for one student's notebook.

``python -m cnnlab.instructor.sandbox_kernel -f CONNECTION_FILE`` reads its settings from the
``CNNLAB_SANDBOX`` environment variable (JSON, removed before student code runs), then:

1. sets resource limits: address space (a memory bomb gets ``MemoryError`` or kills only this
   kernel), file size, no core dumps;
2. caps what a cell can print (the rest is dropped in the kernel, not shipped to the grader);
3. snapshots the checkers (``numpy``, ``numpy.testing``, every ``cnnlab`` module) and restores any
   replaced attribute before each cell; a replacement made *during* a cell is reported to the
   grader, which scores that cell 0 (see ``execute.py``);
4. installs a Python audit hook: no reading or listing under the denied roots (course repository,
   the grading staging area, the instructor's home) except the allowed ones (the Python
   installation, the ``cnnlab`` package, this submission's own folder); no writing outside this
   submission's folder and the kernel's scratch home; no subprocesses, sockets or ``ctypes``
   libraries from outside the Python installation.

The audit hook stops ordinary misuse (reading the solutions, writing into the gradebook, peeking at
another submission) and records each attempt for the report. It is not a security boundary against
a determined attacker who can reach CPython internals; on a shared server run the whole
``cnnlab autograde`` inside a container or VM as well.
"""

from __future__ import annotations

import json
import os
import sys
import types

GUARD_MIME = "application/vnd.cnnlab.guard+json"
PROTECTED_PREFIXES = ("numpy", "cnnlab")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def set_limits(mem_mb: int, fsize_mb: int) -> None:
    import resource

    if mem_mb:
        b = int(mem_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (b, b))
    if fsize_mb:
        b = int(fsize_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (b, b))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Policy:
    """Longest-prefix rules over real paths: a path is readable unless its deepest matching root
    is denied; writable only under a ``write`` root."""

    def __init__(self, allow, deny, write):
        def norm(ps):
            return tuple(sorted({os.path.realpath(p) for p in ps if p}, key=len, reverse=True))

        self.allow, self.deny, self.write = norm(allow), norm(deny), norm(write)

    @staticmethod
    def _under(path, root):
        return path == root or path.startswith(root.rstrip("/") + "/")

    def _deepest(self, path, roots):
        for r in roots:  # sorted longest first
            if self._under(path, r):
                return len(r)
        return -1

    def may_read(self, path: str) -> bool:
        p = os.path.realpath(path)
        d = self._deepest(p, self.deny)
        return d < 0 or self._deepest(p, self.allow + self.write) >= d

    def may_write(self, path: str) -> bool:
        p = os.path.realpath(path)
        return p in ("/dev/null",) or self._deepest(p, self.write) >= 0


class Guard:
    """What the kernel noticed: denied actions and replaced checkers, sent to the grader after
    each cell as a display message with ``GUARD_MIME``."""

    def __init__(self):
        self.events: list[str] = []
        self.snapshots: dict[str, dict] = {}

    def snapshot(self, name):
        """Remember a module's functions, classes and submodules (not its data: a module may
        legitimately update a cache or a counter)."""
        mod = sys.modules.get(name)
        if mod is not None and name not in self.snapshots:
            self.snapshots[name] = {
                k: v for k, v in vars(mod).items()
                if callable(v) or isinstance(v, types.ModuleType)
            }

    def snapshot_all(self):
        for name in list(sys.modules):
            if name.split(".")[0] in PROTECTED_PREFIXES:
                self.snapshot(name)

    def restore(self) -> list[str]:
        """Put back every protected attribute that was replaced or deleted; return their names."""
        changed = []
        for name, saved in self.snapshots.items():
            mod = sys.modules.get(name)
            if mod is None:
                continue
            current = vars(mod)
            for attr, value in saved.items():
                if current.get(attr, _MISSING) is not value:
                    try:
                        setattr(mod, attr, value)
                    except (AttributeError, TypeError):
                        continue
                    changed.append(f"{name}.{attr}")
            if sys.modules.get(name) is not mod:
                sys.modules[name] = mod
        return changed


_MISSING = object()


class _SnapshotFinder:
    """Snapshot protected modules right after they are first imported (before student code can
    touch them)."""

    def __init__(self, guard):
        self.guard = guard

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in PROTECTED_PREFIXES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                loader = spec.loader
                if loader is not None and hasattr(loader, "exec_module"):
                    spec.loader = _SnapshotLoader(loader, self.guard)
                return spec
        return None


class _SnapshotLoader:
    def __init__(self, loader, guard):
        self.loader, self.guard = loader, guard

    def __getattr__(self, item):
        return getattr(self.loader, item)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.guard.snapshot(module.__name__)


def install_audit_hook(policy: Policy, guard: Guard, dlopen_roots) -> None:
    dl_roots = tuple(os.path.realpath(r) for r in dlopen_roots)
    deny_process = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                    "os.fork", "os.forkpty", "pty.spawn"}
    write_events = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate",
                    "os.utime", "shutil.rmtree", "os.symlink", "os.link", "os.rename"}
    busy = [False]

    def deny(what):
        guard.events.append(what)
        raise PermissionError(f"cnnlab grading sandbox: {what} is not allowed while grading")

    def hook(event, args):
        if busy[0]:
            return
        busy[0] = True
        try:
            if event == "open":
                path, mode, flags = args
                if isinstance(path, bytes):
                    path = os.fsdecode(path)
                if not isinstance(path, str):
                    return
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & _WRITE_FLAGS)
                if writing and not policy.may_write(path):
                    deny(f"writing {os.path.abspath(path)}")
                if not writing and not policy.may_read(path):
                    deny(f"reading {os.path.abspath(path)}")
            elif event in ("os.listdir", "os.scandir"):
                path = args[0] if args and isinstance(args[0], str | bytes) else "."
                path = os.fsdecode(path)
                if not policy.may_read(path):
                    deny(f"listing {os.path.abspath(path)}")
            elif event in write_events:
                for a in args[:2]:
                    if isinstance(a, str | bytes) and not policy.may_write(os.fsdecode(a)):
                        deny(f"{event} on {os.path.abspath(os.fsdecode(a))}")
            elif event == "sqlite3.connect":
                db = args[0] if args else ""
                if isinstance(db, str | bytes) and os.fsdecode(db) != ":memory:" and not (
                        policy.may_write(os.fsdecode(db))):
                    deny(f"opening the database {os.fsdecode(db)}")
            elif event in deny_process:
                deny(f"starting a process ({event})")
            elif event in ("socket.connect", "socket.bind"):
                deny(f"network access ({event})")
            elif event == "ctypes.dlopen":
                name = args[0] if args else None
                if not (isinstance(name, str) and os.path.isabs(name) and any(
                        os.path.realpath(name).startswith(r + "/") for r in dl_roots)):
                    deny(f"loading the C library {name!r} with ctypes")
        finally:
            busy[0] = False

    sys.addaudithook(hook)


def cap_output(stream, limit: int, counter: dict) -> None:
    """Drop what ``stream`` (ipykernel's OutStream) receives beyond ``limit`` characters per
    cell (stdout and stderr together); write one notice instead."""
    write = stream.write

    def capped(s):
        n = counter["n"]
        counter["n"] = n + len(s)
        if n + len(s) <= limit:
            return write(s)
        if n <= limit:
            write(s[: max(limit - n, 0)])
            write(f"\n[cnnlab: output truncated after {limit} characters]\n")
            counter["on_truncate"]()
        return len(s)

    stream.write = capped


def main(argv=None) -> None:
    settings = json.loads(os.environ.pop("CNNLAB_SANDBOX", "{}"))
    set_limits(settings.get("mem_mb", 0), settings.get("fsize_mb", 0))

    import ctypes  # noqa: F401  (loads libpython into ctypes before dlopen is restricted)

    guard = Guard()
    # numpy: every assignment uses it. numpy.testing and the cnnlab submodules are snapshot by
    # _SnapshotFinder when the notebook first imports them.
    import numpy  # noqa: F401

    import cnnlab  # noqa: F401
    guard.snapshot_all()
    sys.meta_path.insert(0, _SnapshotFinder(guard))

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(argv if argv is not None else sys.argv[1:])
    shell = app.shell
    limit = int(settings.get("max_output_chars", 0))
    counter = {"n": 0}

    def on_truncate():
        counter["n"] = limit + 1  # the stderr/stdout twin stays quiet for the rest of the cell
        guard.events.append(f"printed more than {limit} characters in one cell (truncated)")

    counter["on_truncate"] = on_truncate
    if limit:
        cap_output(sys.stdout, limit, counter)
        cap_output(sys.stderr, limit, counter)

    def pre_run_cell(info=None):
        counter["n"] = 0
        restored = guard.restore()
        if restored:
            guard.events.append("replaced checkers before this cell: " + ", ".join(restored))

    def post_run_cell(result=None):
        replaced = guard.restore()
        events = guard.events[:]
        guard.events.clear()
        if replaced:
            events.append("replaced checkers during this cell: " + ", ".join(replaced))
        if events:
            from IPython.display import display

            display({GUARD_MIME: {"events": events, "tampered": bool(replaced)}}, raw=True)

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)

    policy = Policy(settings.get("allow", []), settings.get("deny", []), settings.get("write", []))
    install_audit_hook(policy, guard, settings.get("dlopen_roots", []))
    app.start()


if __name__ == "__main__":
    main()
