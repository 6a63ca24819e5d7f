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
  are written first. No course repository, gradebook, other submission, ``/home``, ``/root``,
  ``/work`` or host ``/tmp`` exists inside.
- **limits**: address space, CPU seconds, processes, file size; no core dumps.
- **descriptors**: 0 is ``/dev/null``; 1 and 2 go to a capped buffer (``output()``, the first
  ``policy.output_kb`` KiB kept); 3 and 4 are the private ``Channel`` (3: frames from the grader,
  4: frames to it). Nothing else is inherited, and the environment is rebuilt from scratch.
- **the end**: ``kill()`` kills the sandbox's PID-namespace init, so every process inside dies
  with it, daemons and ``setsid`` children included.

``argv[0]`` of ``"python"`` (or the grader's own ``sys.executable``) means the sandbox's
interpreter. Start sandboxes from a thread that outlives them: bubblewrap's ``--die-with-parent``
kills the sandbox when the thread that started it ends.

Without bubblewrap (macOS) ``Policy(unsafe_no_sandbox=True)`` runs ``argv`` as a plain process
with the same descriptors, scrubbed environment and the limits the platform allows, in a
temporary folder: no file, process, network or import isolation at all.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from glob import glob
from pathlib import PurePosixPath

from cnnlab.instructor.runner import _view
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

VENV = "/venv"  # the sandbox's virtual environment
PYTHON = VENV + "/bin/python"  # the sandbox's interpreter
SCRATCH = "/scratch"  # the working folder, the only writable place
INSIDE_UID = 1000  # the sandbox user's uid/gid as seen inside ("student")
# Hardware tuning the grading machine may need (OpenBLAS's CPU detection, thread counts): copied
# into the sandbox when set. Nothing else of the grader's environment is.
PASSED_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)
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
        unsafe_no_sandbox: run as a plain process with limits only (no isolation: macOS).
    """

    importable: tuple[str, ...] = ("numpy",)
    mem_mb: int = 2048
    cpu_s: int = 600
    nproc: int = 64
    fsize_mb: int = 64
    scratch_mb: int = 256
    output_kb: int = 1024
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
        """The command's exit status once it has ended (128 + N: killed by signal N)."""
        code = self._proc.returncode
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


def _inner_command(argv, policy: Policy, ch_in: int, ch_out: int, nproc: bool) -> list[str]:
    limits = [
        f"ulimit -S -H -v {policy.mem_mb * 1024}",
        f"ulimit -S -H -t {policy.cpu_s}",
        f"ulimit -S -H -f {policy.fsize_mb * 1024}",
        "ulimit -S -H -c 0",
    ] + ([f"ulimit -S -H -u {policy.nproc}"] if nproc else [])
    if sys.platform == "darwin":  # macOS enforces no address-space limit
        limits = limits[1:]
    script = " && ".join(
        limits + [f"exec 3<&{ch_in} 4>&{ch_out} {ch_in}<&- {ch_out}<&-", 'exec "$@"']
    )
    return ["bash", "-c", script + " || exit 125", "sandbox", *argv]


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


def _interpreter(argv: list[str], inside: str) -> list[str]:
    if argv[0] in ("python", "python3", sys.executable):
        return [inside, *argv[1:]]
    return argv


def _env(home: str, path: str) -> dict[str, str]:
    env = {
        "PATH": path,
        "HOME": home,
        "TMPDIR": home,
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
    }
    env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
    return env


# ------------------------------------------------------------------------------------------------
# bubblewrap


class _Args:
    """A bubblewrap command line under construction, with the descriptors it reads."""

    def __init__(self):
        self.argv: list[str] = []
        self.fds: list[int] = []
        self._made: set[PurePosixPath] = set()

    def add(self, *args) -> None:
        self.argv += [str(a) for a in args]

    def file(self, dest: str, content: bytes, perms: str = "0644") -> None:
        self.dirs(str(PurePosixPath(dest).parent))
        fd = os.memfd_create("sandbox-file", os.MFD_CLOEXEC)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        self.fds.append(fd)
        self.add("--perms", perms, "--file", fd, dest)

    def dirs(self, path: str) -> None:
        """Creates ``path`` and its parents world-readable (bubblewrap copies the host's modes
        otherwise, and ``/root`` is 0700)."""
        parts = PurePosixPath(path).parts
        for i in range(2, len(parts) + 1):
            sub = PurePosixPath(*parts[:i])
            if sub not in self._made:
                self._made.add(sub)
                self.add("--perms", "0755", "--dir", sub)

    def ro_bind(self, host: str, dest: str) -> None:
        self.dirs(str(PurePosixPath(dest).parent))
        self.add("--ro-bind", host, dest)


def _base_prefix() -> str:
    return os.path.realpath(sys.base_prefix)


def _system_dirs(base: str) -> list[str]:
    """The parts of ``/usr`` a Python process needs: programs, shared libraries, locales, time
    zones and, for a system interpreter, its standard library. Not the rest (``/usr/lib`` also
    holds other software's vendored Python packages)."""
    dirs = ["/usr/bin", "/usr/lib/locale", "/usr/share/zoneinfo", "/usr/lib64", "/usr/lib32"]
    multiarch = glob("/usr/lib/*-linux-gnu*")  # Debian's library folders
    dirs += multiarch or ["/usr/lib"]  # elsewhere the libraries sit in /usr/lib itself
    if base == "/usr" or base.startswith("/usr/"):
        own = sysconfig.get_paths(vars={"base": base, "platbase": base, "installed_base": base})
        dirs += [own["stdlib"], own["platstdlib"]]
    real = [os.path.realpath(d) for d in dirs if os.path.isdir(d) and not os.path.islink(d)]
    return sorted(d for d in set(real) if not any(d.startswith(o + "/") for o in real))


def _masked_site_dirs(shown: list[str]) -> list[str]:
    """Every site-packages/dist-packages folder inside the ``shown`` folders."""
    found = set()
    for root in shown:
        for pattern in ("python3*/site-packages", "python3*/dist-packages", "site-packages"):
            found.update(glob(f"{root}/{pattern}"))
            found.update(glob(f"{root}/lib/{pattern}"))
            found.update(glob(f"{root}/lib64/{pattern}"))
    return sorted(p for p in map(os.path.realpath, found) if os.path.isdir(p))


def _bwrap_argv(argv, policy: Policy, files, ch_in, ch_out, info_w, as_root: bool) -> _Args:
    a = _Args()
    a.add("bwrap", "--die-with-parent", "--new-session", "--clearenv", "--info-fd", info_w)
    a.add(
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"
    )
    a.add("--hostname", "sandbox")
    if as_root:  # setpriv below switches to a fresh uid; it needs these three, and only these
        a.add("--cap-drop", "ALL")
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            a.add("--cap-add", cap)
    else:
        a.add("--unshare-user", "--uid", INSIDE_UID, "--gid", INSIDE_UID, "--disable-userns")
        a.add("--cap-drop", "ALL")
    # the system: what Python needs of /usr, read-only; the merged-/usr links; fresh /proc, /dev
    base = _base_prefix()
    shown = _system_dirs(base)
    for d in shown:
        a.ro_bind(d, d)
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + top
        if os.path.islink(host):
            a.add("--symlink", os.readlink(host), host)
        elif os.path.isdir(host):
            a.ro_bind(host, host)
            shown.append(host)
    a.add("--proc", "/proc", "--dev", "/dev")
    a.add("--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache")
    uid = INSIDE_UID
    a.file("/etc/passwd", f"student:x:{uid}:{uid}:student:{SCRATCH}:/bin/bash\n".encode())
    a.file("/etc/group", f"student:x:{uid}:\n".encode())
    # the Python installation read-only, every site-packages folder in sight masked
    if not any(base == d or base.startswith(d + "/") for d in shown):
        a.ro_bind(base, base)
        shown.append(base)
    for site in _masked_site_dirs(shown):
        a.add("--perms", "0755", "--size", 4096, "--tmpfs", site, "--remount-ro", site)
    # /venv: an environment whose site-packages holds only what the policy allows
    view = _view.site_view(tuple(policy.importable))
    version = sysconfig.get_python_version()
    site = f"{VENV}/lib/python{version}/site-packages"
    real_python = os.path.realpath(sys.executable)
    a.dirs(f"{VENV}/bin")
    a.add("--symlink", real_python, PYTHON, "--symlink", real_python, PYTHON + "3")
    cfg = f"home = {os.path.dirname(real_python)}\ninclude-system-site-packages = false\n"
    a.file(f"{VENV}/pyvenv.cfg", (cfg + f"version = {sys.version.split()[0]}\n").encode())
    a.dirs(site)
    for host, rel in view.binds:
        a.ro_bind(host, f"{site}/{rel}")
    for rel in view.stubs:
        a.file(f"{site}/{rel}", b'"""Shown in the sandbox without its other modules."""\n')
    # the scratch folder: the only writable place
    a.add("--perms", "1777", "--size", policy.scratch_mb << 20, "--tmpfs", SCRATCH)
    a._made.add(PurePosixPath(SCRATCH))
    for name, content in files.items():
        a.file(f"{SCRATCH}/{name}", bytes(content), perms="0666")
    a.add("--remount-ro", "/", "--chdir", SCRATCH)
    for k, v in _env(SCRATCH, f"{VENV}/bin:/usr/bin:/bin").items():
        a.add("--setenv", k, v)
    a.add("--")
    if as_root:
        host_id = 2**30 + secrets.randbelow(2**30 - 2)  # a uid of its own: its own RLIMIT_NPROC
        a.add("setpriv", f"--reuid={host_id}", f"--regid={host_id}", "--clear-groups")
        a.add(
            "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"
        )
    a.add(*_inner_command(_interpreter(argv, PYTHON), policy, ch_in, ch_out, nproc=True))
    return a


def _start_bwrap(argv, policy: Policy, files) -> Sandboxed:
    channel, ch_in, ch_out = _pipes()
    info_r, info_w = os.pipe()
    out_r, out_w = os.pipe()
    args = _Args()
    try:
        args = _bwrap_argv(argv, policy, files, ch_in, ch_out, info_w, as_root=os.geteuid() == 0)
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
            _inner_command(_interpreter(argv, sys.executable), policy, ch_in, ch_out, nproc=False),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            close_fds=True,
            pass_fds=(ch_in, ch_out),
            cwd=scratch,
            env=_env(scratch, f"{bindir}:/usr/bin:/bin"),
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
