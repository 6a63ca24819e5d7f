"""The operating-system sandbox one submission runs in (Linux: bubblewrap).

``start(argv, policy, files)`` runs ``argv`` in a fresh sandbox and returns a ``Sandboxed``:

- **namespaces**: new PID, mount, network, IPC, UTS (and cgroup where possible) namespaces. The
  sandbox sees its own ``/proc`` only, has no network but its own loopback, and can signal none of
  the host's processes.
- **who runs**: never root. Graded as root, the sandbox drops to a fresh unprivileged host uid/gid
  of its own (no groups, no capabilities, ``no_new_privs``), so its process limit is its own; a
  user namespace is not used there, because root's user namespace maps the sandbox user onto
  host root, who owns (and may read) every root-owned file the sandbox can see. Graded as
  another user, the sandbox runs in a user namespace of its own with all capabilities dropped.
- **files**: ``/usr`` and the Python installation read-only, with every site-packages folder of
  the base interpreter masked; a virtual environment at ``/venv`` whose site-packages shows only
  ``policy.importable``, their requirements and the runner package (see ``_view.py``). The one
  writable place is ``/scratch``, a size-capped tmpfs and the working folder, where ``files``
  are written first. No course repository, gradebook, other submission, ``/home``, ``/root``
  or host ``/tmp`` exists inside.
- **limits**: address space, CPU seconds, processes, file size, open files; no core dumps. A
  seccomp filter (``_seccomp.py``) refuses new namespaces, mounts, keyrings, BPF, io_uring and
  ``ptrace``: no user namespace of its own in which to be "root".
- **descriptors**: 0 is ``/dev/null``; 1 and 2 go to a capped buffer (``output()``, the first
  ``policy.output_kb`` KiB kept); 3 and 4 are the private ``Channel`` (3: frames from the grader,
  4: frames to it). Nothing else is inherited, and the environment is rebuilt from scratch.
- **the end**: ``kill()`` kills the sandbox's PID-namespace init, so every process inside dies
  with it, daemons and ``setsid`` children included.

**Warm start** (``Policy(warm=True)``, grading as root): importing torch costs seconds, so a
per-worker zygote (``_zygote.py``) imports the policy's packages once, in a sandbox of its own
built as above that keeps the capabilities to make namespaces and switch uid; each run is a fork
of it that enters new mount, PID, network, IPC, UTS and cgroup namespaces, mounts its own
scratch and ``/proc``, keeps only descriptors 0-4, sets the same limits, drops every capability,
takes a fresh uid, ``no_new_privs`` and the seccomp filter before the command runs. Differences
from a cold start: the run is pid 1 of its namespace, it shares the zygote's memory layout
(address-space randomisation is per worker, not per run), and only ``python -c``/``-m`` skip
the interpreter's start (anything else is exec'd). The zygote holds no submission's data.

``argv[0]`` of ``"python"`` (or the grader's own ``sys.executable``) means the sandbox's
interpreter. Start sandboxes from a thread that outlives them: bubblewrap's ``--die-with-parent``
kills the sandbox when the thread that started it ends.

Without bubblewrap (macOS) ``Policy(unsafe_no_sandbox=True)`` runs ``argv`` as a plain process
with the same descriptors, scrubbed environment and the limits the platform allows, in a
temporary folder: no file, process, network or import isolation at all.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from cnnlab.instructor.runner import _bwrap
from cnnlab.instructor.runner._bwrap import NOFILE, PYTHON, SCRATCH, VENV
from cnnlab.instructor.runner.channel import (
    Channel,
    ChannelClosed,
    ChannelError,
    ChannelTimeout,
    FrameTooLarge,
)

__all__ = [
    "Channel",
    "ChannelClosed",
    "ChannelError",
    "ChannelTimeout",
    "FrameTooLarge",
    "Policy",
    "Sandboxed",
    "SandboxUnavailable",
    "check_available",
    "start",
]

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`, as "
    "tools/install-bubblewrap.sh does), or, where no sandbox exists (macOS), grade without "
    "isolation by passing --unsafe-no-sandbox"
)


@dataclass(frozen=True)
class Policy:
    """What one sandbox may do.

    Args:
        importable: top-level packages of the course environment visible inside (and what they
            need), besides the standard library and the runner's own package; a dotted name
            (``"cnnlab.data"``) shows one module of a local package. All else is absent.
        mem_mb: address space of each process (``RLIMIT_AS``), MiB.
        cpu_s: CPU seconds of each process (``RLIMIT_CPU``).
        nproc: processes and threads of the sandbox (``RLIMIT_NPROC`` of its own uid).
        fsize_mb: largest file a process may write (``RLIMIT_FSIZE``), MiB.
        scratch_mb: size of the writable tmpfs ``/scratch``, MiB.
        output_kb: stdout and stderr kept (the first KiB; the rest is read and dropped).
        warm: fork each run from a per-worker interpreter that imported ``importable`` once
            (``_zygote.py``), into namespaces, scratch, uid and limits of its own; only when
            grading as root, else a cold start. ``argv`` is ``python -c``/``-m`` to gain.
        unsafe_no_sandbox: run as a plain process with limits only (no isolation: macOS).
    """

    importable: tuple[str, ...] = ("numpy",)
    mem_mb: int = 2048
    cpu_s: int = 600
    nproc: int = 64
    fsize_mb: int = 64
    scratch_mb: int = 256
    output_kb: int = 1024
    warm: bool = False
    unsafe_no_sandbox: bool = False

    def __post_init__(self):
        if isinstance(self.importable, str):
            raise ValueError(
                f"Policy.importable must be a tuple of names, not the string {self.importable!r}: "
                f"write ({self.importable!r},)"
            )
        for field in ("mem_mb", "cpu_s", "nproc", "fsize_mb", "scratch_mb", "output_kb"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Policy.{field} must be a positive whole number, got {value!r}")


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the sandbox; the message says what to install or pass."""


def check_available(policy: Policy) -> None:
    """Raises ``SandboxUnavailable`` unless ``start`` can isolate here (or the policy is unsafe)."""
    if policy.unsafe_no_sandbox:
        return
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"no sandbox exists on {sys.platform}: {INSTALL_HINT}")
    tools = ["bwrap", "bash"] + (["setpriv"] if os.geteuid() == 0 else [])
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SandboxUnavailable(f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}")
    failure = _probe()
    if failure:
        raise SandboxUnavailable(f"bubblewrap is installed but cannot start a sandbox: {failure}")


_probe_lock = threading.Lock()
_probe_result: list[str] = []


def _probe() -> str:
    """'' when a trivial sandbox starts and exits 0, else what went wrong (run once)."""
    with _probe_lock:
        if not _probe_result:
            try:
                box = _start_bwrap(["/bin/true"], Policy(importable=()), {})
                code = box.wait(30)
                box.kill()
                out = box.output().decode(errors="replace").strip()
                _probe_result.append("" if code == 0 else f"exit {code}: {out}")
            except (OSError, SandboxUnavailable) as e:
                _probe_result.append(str(e))
        return _probe_result[0]


def start(argv: Sequence[str], policy: Policy, files: Mapping[str, bytes] = {}) -> Sandboxed:  # noqa: B006
    """Runs ``argv`` in a new sandbox, ``files`` (relative path -> bytes) written to its scratch
    folder first. Raises ``SandboxUnavailable`` where that cannot be done."""
    if not argv:
        raise ValueError("start() needs a command: argv is empty")
    for name in files:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise ValueError(
                f"sandbox file names are relative paths inside the scratch folder, got {name!r}"
            )
    check_available(policy)
    if policy.unsafe_no_sandbox:
        return _start_plain(list(argv), policy, files)
    if policy.warm and os.geteuid() == 0:
        return _start_warm(list(argv), policy, files)
    return _start_bwrap(list(argv), policy, files)


class Sandboxed:
    """One running sandbox: its ``channel``, its output, its end."""

    def __init__(
        self, proc, channel, out_fd, output_cap, init_pidfd=None, pid_ns=None, cleanup=None
    ):
        self._proc = proc
        self.channel: Channel = channel
        self.pid_ns: int | None = pid_ns  # inode of the sandbox's PID namespace (tests, reports)
        self._init_pidfd = init_pidfd
        self._cleanup = cleanup
        self._out = bytearray()
        self._reader = threading.Thread(
            target=_drain, args=(out_fd, self._out, output_cap), daemon=True
        )
        self._reader.start()
        self._killed = False
        self._lock = threading.Lock()

    @property
    def returncode(self) -> int | None:
        """The command's exit status once it has ended (128 + N: killed by signal N), else None."""
        code = self._proc.poll()
        return 128 - code if code is not None and code < 0 else code

    def output(self) -> bytes:
        """stdout and stderr so far (the first ``output_kb`` KiB)."""
        return bytes(self._out)

    def wait(self, timeout: float | None) -> int | None:
        """The exit status, or None if the command still runs after ``timeout`` seconds."""
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=5)
        return self.returncode

    def kill(self) -> None:
        """Kills every process of the sandbox and releases its resources (idempotent)."""
        with self._lock:
            if self._killed:
                return
            self._killed = True
            if self._init_pidfd is not None:
                try:  # the PID-namespace init: the kernel then kills everything inside
                    signal.pidfd_send_signal(self._init_pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.close(self._init_pidfd)
            elif self._proc.returncode is None:  # no sandbox: the process group
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:  # bubblewrap reaps its init, whose exit waited for every process inside
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._reader.join(timeout=5)
            self.channel.close()
            if self._cleanup:
                self._cleanup()

    def __enter__(self) -> Sandboxed:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def _drain(fd: int, into: bytearray, cap: int) -> None:
    """Reads ``fd`` to its end, keeping the first ``cap`` bytes."""
    with os.fdopen(fd, "rb", buffering=0) as f:
        while chunk := f.read(1 << 16):
            if len(into) < cap:
                into += chunk[: cap - len(into)]


# ------------------------------------------------------------------------------------------------
# The command run inside: limits, then the channel moved to fds 3/4, then argv.


def _pipes():
    """The channel's two pipes: (parent's Channel, child's read end, child's write end), the
    child's ends moved above 9 so that they never sit on 3 or 4 before the move."""
    down_r, down_w = os.pipe()  # grader -> sandbox
    up_r, up_w = os.pipe()  # sandbox -> grader
    child_r = _above(down_r, 10)
    child_w = _above(up_w, 10)
    return Channel(up_r, down_w), child_r, child_w


def _above(fd: int, low: int) -> int:
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return new


# ------------------------------------------------------------------------------------------------
# bubblewrap


def _start_bwrap(argv, policy: Policy, files) -> Sandboxed:
    channel, ch_in, ch_out = _pipes()
    info_r, info_w = os.pipe()
    out_r, out_w = os.pipe()
    args = _bwrap.Args()
    try:
        args = _bwrap.bwrap_argv(
            argv, policy, files, ch_in, ch_out, info_w, as_root=os.geteuid() == 0
        )
        proc = subprocess.Popen(
            args.argv,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            close_fds=True,
            pass_fds=(ch_in, ch_out, info_w, *args.fds),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},  # bwrap's own /proc/1/environ
        )
    except BaseException:
        channel.close()
        for fd in (info_r, out_r):
            os.close(fd)
        raise
    finally:
        for fd in (ch_in, ch_out, info_w, out_w, *args.fds):
            os.close(fd)
    info = _read_info(info_r)
    pidfd = None
    if info is not None:
        try:
            pidfd = os.pidfd_open(info["child-pid"])
        except ProcessLookupError:  # the command already ended, and its namespace with it
            pass
    box = Sandboxed(
        proc, channel, out_r, policy.output_kb << 10, pidfd, (info or {}).get("pid-namespace")
    )
    if info is None:
        code = box.wait(30)
        box.kill()
        raise SandboxUnavailable(
            f"bubblewrap failed to set up the sandbox (exit {code}): "
            f"{box.output().decode(errors='replace').strip()}"
        )
    return box


def _read_info(fd: int, timeout: float = 30.0) -> dict | None:
    """bubblewrap's JSON about the sandbox (``child-pid``, namespaces), or None if it failed."""
    data = b""
    try:
        while select.select([fd], [], [], timeout)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
            try:
                return json.loads(data)
            except ValueError:
                continue
        return None
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------
# warm start: one zygote per policy's packages, each run forked into fresh namespaces


class _Zygote:
    """The trusted end of one zygote: its bubblewrap process and control socket."""

    def __init__(self, policy: Policy):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        child_fd = _above(theirs.detach(), 10)
        info_r, info_w = os.pipe()
        args = _bwrap.bwrap_argv([], policy, {}, -1, -1, info_w, as_root=True, zygote_fd=child_fd)
        try:
            self.proc = subprocess.Popen(
                args.argv,
                stdin=subprocess.DEVNULL,
                close_fds=True,
                pass_fds=(child_fd, info_w, *args.fds),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
        finally:
            for fd in (child_fd, info_w, *args.fds):
                os.close(fd)
        if _read_info(info_r) is None:  # bubblewrap blocks until its info is read
            self.proc.kill()
            raise SandboxUnavailable("bubblewrap could not start the warm-start zygote")
        self.ctrl = ours
        self.lock = threading.Lock()

    def spawn(self, request: dict, fds: list[int], timeout: float) -> int:
        """Sends one request; returns the pidfd of the run's pid 1."""
        with self.lock:
            try:
                socket.send_fds(self.ctrl, [json.dumps(request).encode()], fds)
                self.ctrl.settimeout(timeout)
                msg, got, _, _ = socket.recv_fds(self.ctrl, 4096, 1)
            except OSError as e:  # gone or hung: the next run starts a new one
                self.proc.kill()
                raise SandboxUnavailable(f"the warm-start zygote did not answer: {e}") from None
        if msg != b"started" or not got:
            raise SandboxUnavailable(
                f"the warm-start zygote failed: {msg.decode(errors='replace')}"
            )
        return got[0]


_zygotes: dict[tuple[str, ...], _Zygote] = {}
_zygotes_lock = threading.Lock()


def _zygote(policy: Policy) -> _Zygote:
    with _zygotes_lock:
        z = _zygotes.get(policy.importable)
        if z is None or z.proc.poll() is not None:
            z = _zygotes[policy.importable] = _Zygote(policy)
        return z


class _WarmProc:
    """What ``Sandboxed`` needs of a ``Popen``, for a run forked by the zygote: the exit status
    comes down a pipe, the kill goes through a pidfd."""

    def __init__(self, status_r: int, pidfd: int):
        self._status_r, self._pidfd, self.returncode = status_r, pidfd, None

    def _read(self) -> None:
        data = os.read(self._status_r, 16)
        self.returncode = int(data) if data else 128 + signal.SIGKILL
        os.close(self._status_r)

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._status_r], [], [], 0)[0]:
            self._read()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._status_r], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired("sandbox", timeout)
            self._read()
        return self.returncode

    def kill(self) -> None:
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except OSError:  # ended, or the pidfd already closed by Sandboxed.kill
            pass


def _pid_of(pidfd: int) -> int:
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        return int(next(line for line in f if line.startswith("Pid:")).split()[1])


def _start_warm(argv, policy: Policy, files) -> Sandboxed:
    channel, ch_in, ch_out = _pipes()
    out_r, out_w = os.pipe()
    status_r, status_w = os.pipe()
    files_fd = _bwrap.Args().data(
        json.dumps({k: base64.b64encode(bytes(v)).decode() for k, v in files.items()}).encode()
    )
    argv = _bwrap.interpreter(argv, PYTHON)
    request = {
        "argv": argv,
        "scratch": SCRATCH,
        "scratch_bytes": policy.scratch_mb << 20,
        "uid": _bwrap.fresh_uid(),
        "env": _bwrap.env(SCRATCH, f"{VENV}/bin:/usr/bin:/bin"),
        "limits": {
            "RLIMIT_AS": policy.mem_mb << 20,
            "RLIMIT_CPU": policy.cpu_s,
            "RLIMIT_FSIZE": policy.fsize_mb << 20,
            "RLIMIT_CORE": 0,
            "RLIMIT_NOFILE": NOFILE,
            "RLIMIT_NPROC": policy.nproc,
        },
    }
    try:
        pidfd = _zygote(policy).spawn(request, [ch_in, ch_out, out_w, status_w, files_fd], 300)
    except BaseException:
        channel.close()
        os.close(out_r), os.close(status_r)
        raise
    finally:
        for fd in (ch_in, ch_out, out_w, status_w, files_fd):
            os.close(fd)
    try:
        pid_ns = os.stat(f"/proc/{_pid_of(pidfd)}/ns/pid").st_ino
    except (OSError, StopIteration):
        pid_ns = None  # already ended
    proc = _WarmProc(status_r, pidfd)
    return Sandboxed(proc, channel, out_r, policy.output_kb << 10, pidfd, pid_ns)


# ------------------------------------------------------------------------------------------------
# no sandbox (the instructor's explicit choice)


def _start_plain(argv, policy: Policy, files) -> Sandboxed:
    scratch = tempfile.mkdtemp(prefix="cnnlab-unsafe-")
    for name, content in files.items():
        path = os.path.join(scratch, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    channel, ch_in, ch_out = _pipes()
    out_r, out_w = os.pipe()
    bindir = os.path.dirname(sys.executable)
    try:
        proc = subprocess.Popen(
            _bwrap.inner_command(
                _bwrap.interpreter(argv, sys.executable), policy, ch_in, ch_out, nproc=False
            ),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            close_fds=True,
            pass_fds=(ch_in, ch_out),
            cwd=scratch,
            env=_bwrap.env(scratch, f"{bindir}:/usr/bin:/bin"),
            start_new_session=True,
        )
    except BaseException:
        channel.close()
        os.close(out_r)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        for fd in (ch_in, ch_out, out_w):
            os.close(fd)
    return Sandboxed(
        proc,
        channel,
        out_r,
        policy.output_kb << 10,
        cleanup=lambda: shutil.rmtree(scratch, ignore_errors=True),
    )
