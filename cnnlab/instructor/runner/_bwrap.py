"""The command line that starts one sandbox: bubblewrap's view and options, then what runs inside.

``bwrap_argv`` builds bubblewrap's arguments (what the sandbox sees: the library parts of
``/usr``, the Python installation with its site-packages masked, ``/venv`` with the policy's
packages, a fresh ``/proc`` and ``/dev``, the size-capped ``/scratch``; which namespaces; the
seccomp filter; the fresh uid) and ``inner_command`` the little ``bash`` that sets the limits
and moves the channel to descriptors 3 and 4 before ``exec``-ing the command.
"""

from __future__ import annotations

import functools
import os
import secrets
import sys
import sysconfig
from glob import glob
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from cnnlab.instructor.runner import _seccomp, _view

if TYPE_CHECKING:
    from cnnlab.instructor.runner.sandbox import Policy

VENV = "/venv"  # the sandbox's virtual environment
PYTHON = VENV + "/bin/python"  # the sandbox's interpreter
SCRATCH = "/scratch"  # the working folder, the only writable place
INSIDE_UID = 1000  # the sandbox user's uid/gid as seen inside ("student")
NOFILE = 1024  # open files per process (each may hold up to fsize_mb in a memfd)
# Hardware tuning the grading machine may need (OpenBLAS's CPU detection, thread counts): copied
# into the sandbox when set. Nothing else of the grader's environment is.
PASSED_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def inner_command(argv, policy: Policy, ch_in: int, ch_out: int, nproc: bool) -> list[str]:
    limits = [
        f"ulimit -S -H -v {policy.mem_mb * 1024}",
        f"ulimit -S -H -t {policy.cpu_s}",
        f"ulimit -S -H -f {policy.fsize_mb * 1024}",
        "ulimit -S -H -c 0",
        f"ulimit -S -H -n {NOFILE}",
    ] + ([f"ulimit -S -H -u {policy.nproc}"] if nproc else [])
    if sys.platform == "darwin":  # macOS enforces no address-space limit
        limits = limits[1:]
    script = " && ".join(
        limits + [f"exec 3<&{ch_in} 4>&{ch_out} {ch_in}<&- {ch_out}<&-", 'exec "$@"']
    )
    return ["bash", "-c", script + " || exit 125", "sandbox", *argv]


def interpreter(argv: list[str], inside: str) -> list[str]:
    if argv[0] in ("python", "python3", sys.executable):
        return [inside, *argv[1:]]
    return argv


def env(home: str, path: str) -> dict[str, str]:
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


class Args:
    """A bubblewrap command line under construction, with the descriptors it reads."""

    def __init__(self):
        self.argv: list[str] = []
        self.fds: list[int] = []
        self._made: set[PurePosixPath] = set()

    def add(self, *args) -> None:
        self.argv += [str(a) for a in args]

    def data(self, content: bytes) -> int:
        """A descriptor bubblewrap reads ``content`` from."""
        fd = os.memfd_create("sandbox-data", os.MFD_CLOEXEC)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        self.fds.append(fd)
        return fd

    def file(self, dest: str, content: bytes, perms: str = "0644") -> None:
        self.dirs(str(PurePosixPath(dest).parent))
        self.add("--perms", perms, "--file", self.data(content), dest)

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


@functools.cache
def _system_dirs(base: str) -> tuple[str, ...]:
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
    return tuple(sorted(d for d in set(real) if not any(d.startswith(o + "/") for o in real)))


@functools.cache
def _masked_site_dirs(shown: tuple[str, ...]) -> list[str]:
    """Every site-packages/dist-packages folder inside the ``shown`` folders (looked for once:
    globbing /usr/lib costs more than starting bubblewrap)."""
    found = set()
    for root in shown:
        for pattern in ("python3*/site-packages", "python3*/dist-packages", "site-packages"):
            found.update(glob(f"{root}/{pattern}"))
            found.update(glob(f"{root}/lib/{pattern}"))
            found.update(glob(f"{root}/lib64/{pattern}"))
    return sorted(p for p in map(os.path.realpath, found) if os.path.isdir(p))


def bwrap_argv(
    argv, policy: Policy, files, ch_in, ch_out, info_w, as_root: bool, zygote_fd: int | None = None
) -> Args:
    """bubblewrap's command line for ``argv``, or (``zygote_fd``) for a warm-start zygote serving
    requests on that socket: it keeps the capabilities to make namespaces and drop to a uid, and
    loads the seccomp filter into each child, not into itself."""
    a = Args()
    a.add("bwrap", "--die-with-parent", "--new-session", "--clearenv", "--info-fd", info_w)
    a.add(
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"
    )
    a.add("--hostname", "sandbox")
    seccomp = _seccomp.program()
    if seccomp and zygote_fd is None:
        a.add("--seccomp", a.data(seccomp))
    if as_root:  # setpriv below switches to a fresh uid; it needs these three, and only these
        a.add("--cap-drop", "ALL")
        extra = ("CAP_SYS_ADMIN",) if zygote_fd is not None else ()
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", *extra):
            a.add("--cap-add", cap)
    else:
        a.add("--unshare-user", "--uid", INSIDE_UID, "--gid", INSIDE_UID, "--disable-userns")
        a.add("--cap-drop", "ALL")
    # the system: what Python needs of /usr, read-only; the merged-/usr links; fresh /proc, /dev
    base = _base_prefix()
    shown = list(_system_dirs(base))
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
    for site in _masked_site_dirs(tuple(shown)):
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
    for k, v in env(SCRATCH, f"{VENV}/bin:/usr/bin:/bin").items():
        a.add("--setenv", k, v)
    a.add("--")
    if zygote_fd is not None:
        tops = [n for n in policy.importable if "." not in n]
        a.add(PYTHON, "-m", "cnnlab.instructor.runner._zygote", zygote_fd, *tops)
        return a
    if as_root:
        host_id = fresh_uid()
        a.add("setpriv", f"--reuid={host_id}", f"--regid={host_id}", "--clear-groups")
        a.add(
            "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"
        )
    a.add(*inner_command(interpreter(argv, PYTHON), policy, ch_in, ch_out, nproc=True))
    return a


def fresh_uid() -> int:
    """A host uid no account uses, drawn per sandbox: its RLIMIT_NPROC counts only its own."""
    return 2**30 + secrets.randbelow(2**30 - 2)
