"""A warm start: one pre-imported interpreter per worker, forked into fresh namespaces per run.

``python -m cnnlab.instructor.runner._zygote CTRL_FD NAME...`` runs inside a sandbox of its own
that keeps four capabilities (to create namespaces, mount, change uid and drop capabilities). It
imports the policy's packages (torch takes seconds) and then serves requests on the control socket:
each one is forked into a child that enters new mount, PID, network, IPC, UTS and cgroup
namespaces, whose own child (pid 1 there) mounts a fresh scratch tmpfs and /proc, writes the
files, moves the descriptors to 0-4 and closes the rest, sets the limits, drops every capability,
switches to the request's fresh uid, sets ``no_new_privs``, loads the seccomp filter and only then
runs the command: ``python -c CODE`` or ``python -m MODULE`` in this interpreter, anything else
by ``exec``. Standard library only (with ctypes): this module runs inside the sandbox.
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import importlib
import json
import os
import resource
import runpy
import signal
import socket
import sys
import threading
import traceback
import types

from cnnlab.instructor.runner import _seccomp

_NEWNS, _NEWCGROUP, _NEWUTS, _NEWIPC = 0x20000, 0x2000000, 0x4000000, 0x8000000
_NEWPID, _NEWNET = 0x20000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 0x4000, 1 << 18
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP = 24, 38, 22
_libc = ctypes.CDLL(None, use_errno=True)


def _ok(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def main(ctrl_fd: int, names: list[str]) -> None:
    for name in names:
        importlib.import_module(name)
        if name == "torch":
            importlib.import_module("torch.nn")
    ctrl = socket.socket(fileno=ctrl_fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the children reap themselves
    while True:
        msg, fds, _, _ = socket.recv_fds(ctrl, 1 << 16, 8)
        if not msg:
            return  # the grader is gone
        sys.stdout.flush(), sys.stderr.flush()
        if os.fork() == 0:
            try:
                _child(json.loads(msg), fds, ctrl)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)


def _child(req: dict, fds: list[int], ctrl: socket.socket) -> None:
    """In the zygote's namespaces: make new ones, start pid 1 there, report, wait, report."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    status_w = fds[3]
    try:
        _ok(_libc.unshare(_NEWNS | _NEWPID | _NEWNET | _NEWIPC | _NEWUTS | _NEWCGROUP), "unshare")
        pid = os.fork()
        if pid == 0:
            try:
                _pid1(req, fds)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(71)
        pidfd = os.pidfd_open(pid)
        socket.send_fds(ctrl, [b"started"], [pidfd])
    except BaseException as e:
        socket.send_fds(ctrl, [f"failed: {e}".encode()], [])
        os._exit(72)
    ctrl.close()
    for fd in fds[:3] + fds[4:] + [pidfd]:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os.write(status_w, str(128 - code if code < 0 else code).encode())
    os._exit(0)


def _pid1(req: dict, fds: list[int]) -> None:
    """pid 1 of fresh namespaces: its own scratch, /proc, descriptors, limits, user; then run."""
    ch_in, ch_out, out_w, _status, files_fd = fds
    _ok(_libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "making / private")
    scratch = req["scratch"].encode()
    opts = f"size={req['scratch_bytes']},mode=1777".encode()
    _ok(_libc.mount(b"tmpfs", scratch, b"tmpfs", _MS_NOSUID | _MS_NODEV, opts), "scratch")
    _ok(_libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None), "proc")
    with os.fdopen(files_fd, "rb") as f:
        files = json.loads(f.read() or b"{}")
    for name, content in files.items():
        path = os.path.join(req["scratch"], name)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "wb") as out:
            out.write(base64.b64decode(content))
        os.chmod(path, 0o666)
    null = os.open("/dev/null", os.O_RDONLY)
    for src, dest in ((null, 0), (out_w, 1), (out_w, 2)):
        os.dup2(src, dest)
    # 3 and 4 may hold other descriptors now: move the channel above them first
    high_in, high_out = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (ch_in, ch_out))
    os.dup2(high_in, 3)
    os.dup2(high_out, 4)
    os.closerange(5, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    for limit, value in req["limits"].items():
        resource.setrlimit(getattr(resource, limit), (value, value))
    for cap in range(64):
        _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    uid = req["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    _ok(_libc.capset(header, (ctypes.c_uint32 * 6)()), "clearing capabilities")  # inheritable too
    _ok(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    prog = _seccomp.program()
    if prog:
        fprog = _SockFprog(len(prog) // 8, prog)
        _ok(_libc.prctl(_PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0), "seccomp")
    os.chdir(req["scratch"])
    os.environ.clear()
    os.environ.update(req["env"])
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(_run(req["argv"]))


def _run(argv: list[str]) -> int:
    """``python -c CODE`` / ``python -m MODULE`` in this interpreter; anything else by exec."""
    if len(argv) < 3 or argv[1] not in ("-c", "-m"):
        os.execvp(argv[0], argv)
    try:
        if argv[1] == "-c":
            sys.argv = ["-c", *argv[3:]]
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            exec(compile(argv[2], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = [argv[2], *argv[3:]]
            runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    for t in threading.enumerate():  # as the interpreter's own exit does
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    return code


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
