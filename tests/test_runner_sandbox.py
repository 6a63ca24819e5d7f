"""The OS sandbox of the trusted runner (``cnnlab/instructor/runner/sandbox.py``), attacked.

Each test runs a hostile snippet inside a real bubblewrap sandbox and checks, from outside, that
the defence it targets held: take the defence away and that test fails. No kernel, no notebook.
"""

import os
import signal
import socket
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cnnlab.instructor.runner import _bwrap, _seccomp, _view
from cnnlab.instructor.runner import sandbox as sb
from cnnlab.instructor.runner.channel import (
    Channel,
    ChannelClosed,
    ChannelTimeout,
    FrameTooLarge,
)

REPO = Path(__file__).resolve().parents[1]
HOST_SITE = Path(_view.site_packages())
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="bubblewrap is Linux only"
)


MODE = {"warm": False}


@pytest.fixture(autouse=True, params=["cold", "warm"])
def start_mode(request):
    """Every test twice: a cold sandbox per run, and a run forked from a warm zygote."""
    if request.param == "warm" and os.geteuid() != 0:
        pytest.skip("the warm start needs grading as root")
    MODE["warm"] = request.param == "warm"
    yield request.param
    MODE["warm"] = False


def P(**kwargs) -> sb.Policy:
    """The policy of a test, in the mode of its parameter."""
    return sb.Policy(warm=MODE["warm"], **kwargs)


def run(code: str, policy: sb.Policy | None = None, files=None, timeout: float = 60):
    """Runs Python ``code`` in a sandbox to its end; returns (exit status, output text)."""
    policy = policy or P()
    with sb.start(["python", "-c", textwrap.dedent(code)], policy, files or {}) as box:
        code_ = box.wait(timeout)
        assert code_ is not None, f"the sandbox still runs after {timeout} s: {box.output()!r}"
        return code_, box.output().decode(errors="replace")


def members(pid_ns: int) -> list[int]:
    """Host pids of the processes in the PID namespace with inode ``pid_ns``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino == pid_ns:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------------
# The channel, over plain pipes (no sandbox needed)


def pipe_pair():
    """(grader's end, sandbox's end) of a channel over two pipes."""
    a_r, b_w = os.pipe()
    b_r, a_w = os.pipe()
    return Channel(a_r, a_w), Channel(b_r, b_w)


def test_channel_round_trip_and_frames_in_order():
    near, far = pipe_pair()
    big = bytes(range(256)) * 1000  # more than a pipe holds: the sender waits for the reader
    sender = threading.Thread(target=lambda: [far.send(f) for f in (b"one", b"", big)])
    sender.start()
    assert near.recv(5, 1 << 20) == b"one"
    assert near.recv(5, 1 << 20) == b""
    assert near.recv(5, 1 << 20) == big
    sender.join()


def test_channel_refuses_a_frame_over_the_limit_before_reading_it():
    near, far = pipe_pair()
    os.write(far.write_fd, (2**62).to_bytes(8, "big"))  # announces 4 EiB: nothing is allocated
    with pytest.raises(FrameTooLarge, match="4611686018427387904 bytes"):
        near.recv(5, 1000)
    with pytest.raises(ChannelClosed, match="out of step"):
        near.recv(5, 1000)


def test_channel_survives_garbage():
    near, far = pipe_pair()
    os.write(far.write_fd, os.urandom(4096))  # no valid header: a huge or a short frame
    try:
        frame = near.recv(0.5, 1 << 16)
    except (FrameTooLarge, ChannelTimeout):
        pass
    else:
        assert len(frame) <= 1 << 16


def test_channel_times_out_on_a_trickle_and_keeps_the_partial_frame():
    near, far = pipe_pair()
    os.write(far.write_fd, (10).to_bytes(8, "big") + b"01234")
    t = time.monotonic()
    with pytest.raises(ChannelTimeout):
        near.recv(0.3, 100)
    assert time.monotonic() - t < 2
    os.write(far.write_fd, b"56789")
    assert near.recv(1, 100) == b"0123456789"


def test_channel_reports_a_closed_sender():
    near, far = pipe_pair()
    os.write(far.write_fd, (10).to_bytes(8, "big") + b"012")
    far.close()
    with pytest.raises(ChannelClosed, match="incomplete"):
        near.recv(5, 100)


def test_channel_send_times_out_when_the_reader_does_not_read():
    near, far = pipe_pair()
    with pytest.raises(ChannelTimeout):
        near.send(b"x" * (1 << 20), timeout=0.3)  # a pipe holds 64 KiB
    far.close()
    with pytest.raises(ChannelClosed):
        near.send(b"x" * (1 << 20), timeout=1)


# ------------------------------------------------------------------------------------------------
# Starting, the channel through the sandbox, output, availability


@linux_only
def test_channel_and_files_reach_the_sandbox():
    code = """
        import sys
        from cnnlab.instructor.runner.channel import Channel
        ch = Channel(3, 4)
        frame = ch.recv(None, 100)
        ch.send(frame[::-1] + open("data/in.txt", "rb").read())
        print("stdout works", flush=True); print("so does stderr", file=sys.stderr)
    """
    with sb.start(["python", "-c", textwrap.dedent(code)], P(), {"data/in.txt": b"!"}) as box:
        box.channel.send(b"olleh")
        assert box.channel.recv(10, 100) == b"hello!"
        assert box.wait(10) == 0
        assert box.output().decode().splitlines() == ["stdout works", "so does stderr"]


@linux_only
def test_output_keeps_the_first_bytes_and_never_blocks_the_sandbox():
    code, out = run("import sys; sys.stdout.write('a' * 5000 + 'b' * 10**7)", P(output_kb=4))
    assert code == 0
    assert out == "a" * 4096


@linux_only
def test_garbage_on_the_channel_is_refused():
    code = "import os; os.write(4, os.urandom(64) + b'\\xff' * 8); import time; time.sleep(30)"
    with sb.start(["python", "-c", code], P()) as box:
        with pytest.raises((FrameTooLarge, ChannelTimeout)):
            while True:
                assert len(box.channel.recv(2, 1 << 16)) <= 1 << 16


@linux_only
def test_kill_is_idempotent_and_ends_the_channel():
    box = sb.start(["python", "-c", "import time; time.sleep(60)"], P())
    box.kill()
    box.kill()
    assert box.returncode is not None
    with pytest.raises(ChannelClosed):
        box.channel.recv(1, 10)


def test_unavailable_without_bubblewrap_says_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(sb.SandboxUnavailable, match="apt-get install bubblewrap") as e:
        sb.check_available(P())
    assert "--unsafe-no-sandbox" in str(e.value)
    sb.check_available(sb.Policy(unsafe_no_sandbox=True))  # the instructor's explicit choice


def test_unsafe_mode_runs_with_the_same_descriptors(tmp_path):
    code = "import os; os.write(4, b'\\0' * 7 + b'\\2' + os.read(3, 10)[8:]); print(os.getcwd())"
    with sb.start(["python", "-c", code], sb.Policy(unsafe_no_sandbox=True)) as box:
        box.channel.send(b"ok")
        assert box.channel.recv(10, 10) == b"ok"
        assert box.wait(10) == 0
        scratch = box.output().decode().strip()
    assert not os.path.exists(scratch), "the unsafe scratch folder outlives the run"


def test_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="mem_mb must be a positive"):
        sb.Policy(mem_mb=0)
    with pytest.raises(ValueError, match=r"write \('numpy',\)"):
        sb.Policy(importable="numpy")
    with pytest.raises(ValueError, match="relative paths"):
        sb.start(["true"], P(), {"../escape": b""})


# ------------------------------------------------------------------------------------------------
# Files


@linux_only
@pytest.mark.parametrize("which", ["test's tmp file", "course repository", "/etc/shadow"])
def test_cannot_read_files_outside(which, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the hidden test")
    path = {
        "test's tmp file": secret,
        "course repository": REPO / "nbgrader_config.py",
        "/etc/shadow": Path("/etc/shadow"),
    }[which]
    assert path.exists()
    code, out = run(
        f"""
        try:
            print("READ", open({str(path)!r}).read()[:40])
        except OSError as e:
            print("DENIED", type(e).__name__)
        """
    )
    assert out.startswith("DENIED"), out


@linux_only
def test_sees_no_host_folders():
    code, out = run(
        f"""
        import os
        for p in ("/home", {str(REPO)!r}, "/tmp", "/root/.ssh", "/etc/hostname", "/var", "/opt"):
            print(p, os.path.exists(p))
        print(sorted(os.listdir("/")))
        """
    )
    lines = out.splitlines()
    assert all(line.endswith("False") for line in lines[:-1]), out
    assert not {"home", "tmp", "var", "opt"} & set(eval(lines[-1]))


@linux_only
def test_cannot_write_outside_the_scratch_folder(tmp_path):
    targets = [
        tmp_path / "planted",
        "/planted",
        "/usr/planted",
        "/etc/passwd",
        "/dev/shm/planted",
        f"{sb.VENV}/lib/planted",
        str(HOST_SITE / "planted"),
    ]
    code, out = run(
        f"""
        import os
        for p in {[str(t) for t in targets]!r}:
            try:
                open(p, "w").write("x")
                print("WROTE", p)
            except OSError as e:
                print("DENIED", p, type(e).__name__)
        open("/scratch/fine", "w").write("x")
        print("scratch ok")
        """
    )
    assert "WROTE" not in out, out
    assert out.count("DENIED") == len(targets) and "scratch ok" in out
    assert not (tmp_path / "planted").exists()


@linux_only
def test_disk_filling_stops_at_the_scratch_cap():
    code, out = run(
        """
        import errno
        f = open("big", "wb")
        try:
            for _ in range(64):
                f.write(b"x" * 2**20); f.flush()
        except OSError as e:
            print("STOPPED", errno.errorcode[e.errno], f.tell() // 2**20)
        """,
        P(scratch_mb=8, fsize_mb=64),
    )
    assert "STOPPED ENOSPC" in out, out
    assert int(out.split()[-1]) <= 8


@linux_only
def test_file_size_limit():
    code, out = run(
        """
        try:
            open("big", "wb").write(b"x" * 3 * 2**20)
        except OSError as e:
            print("STOPPED", e.errno)
        """,
        P(scratch_mb=64, fsize_mb=1),
    )
    assert "STOPPED 27" in out, out  # EFBIG


# ------------------------------------------------------------------------------------------------
# Processes


@linux_only
def test_sees_no_host_process_and_cannot_signal_one():
    code, out = run(
        f"""
        import os
        print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        try:
            os.kill({os.getpid()}, 0)
            print("SIGNALLED")
        except OSError as e:
            print("DENIED", type(e).__name__)
        """
    )
    pids, verdict = out.splitlines()
    assert os.getpid() not in eval(pids) and len(eval(pids)) <= 4, out
    assert verdict == "DENIED ProcessLookupError"


@linux_only
def test_host_proc_mem_and_environ_are_unreachable(monkeypatch):
    monkeypatch.setenv("CNNLAB_TEST_SECRET", "hunter2")
    code, out = run(
        f"""
        for pid in ({os.getpid()}, {os.getppid()}, 1):
            for part in ("environ", "mem", "cmdline"):
                try:
                    data = open(f"/proc/{{pid}}/{{part}}", "rb").read(4096)
                    print("READ", pid, part, data[:200])
                except OSError as e:
                    print("DENIED", pid, part, type(e).__name__)
        """
    )
    assert "hunter2" not in out
    assert "READ" not in out.replace("READ 1 cmdline", ""), out  # bwrap's own command line


@linux_only
def test_runs_as_an_unprivileged_user_without_capabilities():
    code, out = run(
        """
        import os
        status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines())
        print(os.getuid(), os.getgid(), os.getgroups(), status["CapInh"].strip(),
              status["CapEff"].strip(), status["CapBnd"].strip(), status["NoNewPrivs"].strip())
        """
    )
    uid, gid = out.split()[:2]
    assert uid != "0" and gid != "0"
    assert out.split()[-4:] == ["0000000000000000"] * 3 + ["1"], out


@linux_only
def test_memory_bomb_gets_memory_error():
    code, out = run(
        """
        try:
            x = bytearray(2**30)
            print("ALLOCATED")
        except MemoryError:
            print("MemoryError")
        """,
        P(mem_mb=512),
    )
    assert out.strip() == "MemoryError"


@linux_only
def test_cpu_time_limit_kills():
    t = time.monotonic()
    code, out = run("while True: pass", P(cpu_s=1), timeout=30)
    assert code in (128 + signal.SIGXCPU, 128 + signal.SIGKILL), (code, out)
    assert time.monotonic() - t < 20


FORK_BOMB = """
import os, time
n = 0
try:
    while n < 200:
        if os.fork() == 0:
            time.sleep(60); os._exit(0)
        n += 1
except OSError as e:
    print("STOPPED", n, flush=True)
time.sleep(60)
"""


@linux_only
def test_fork_bomb_is_contained_per_sandbox():
    policy = P(nproc=16)
    with sb.start(["python", "-c", FORK_BOMB], policy) as first:
        until(lambda: b"STOPPED" in first.output())
        assert int(first.output().split()[1]) < 16
        # a second sandbox's process limit is its own, not eaten by the first's bomb
        with sb.start(["python", "-c", FORK_BOMB], policy) as second:
            until(lambda: b"STOPPED" in second.output())
            assert int(second.output().split()[1]) >= 10, second.output()
        ns = first.pid_ns
    assert members(ns) == []


DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("/scratch/daemon", "w").write("up")
        time.sleep(600)
    os._exit(0)
while not os.path.exists("/scratch/daemon"):
    time.sleep(0.01)
print("daemon up", flush=True)
"""


@linux_only
def test_daemon_dies_with_kill():
    with sb.start(["python", "-c", DAEMON + "time.sleep(600)"], P()) as box:
        until(lambda: b"daemon up" in box.output())
        assert len(members(box.pid_ns)) >= 3  # init, the command, the daemon
        box.kill()
        assert members(box.pid_ns) == []


@linux_only
def test_daemon_dies_when_the_command_ends():
    with sb.start(["python", "-c", DAEMON], P()) as box:
        assert box.wait(30) == 0
        until(lambda: members(box.pid_ns) == [])


NEIGHBOUR = """
import os, socket, time
open("/scratch/mine", "w").write("A's work")
server = socket.create_server(("127.0.0.1", 5555))
print("ready", os.listdir("/scratch"), flush=True)
time.sleep(60)
"""


@linux_only
def test_two_sandboxes_share_no_files_processes_or_loopback():
    with sb.start(["python", "-c", NEIGHBOUR], P()) as first:
        until(lambda: b"ready" in first.output())
        code, out = run(
            """
            import os, socket
            print(os.listdir("/scratch"), len([p for p in os.listdir("/proc") if p.isdigit()]))
            try:
                socket.create_connection(("127.0.0.1", 5555), timeout=2); print("CONNECTED")
            except OSError as e:
                print("DENIED", type(e).__name__)
            """
        )
    assert "['mine']" in first.output().decode()
    listing, verdict = out.splitlines()
    assert listing.startswith("[] ") and int(listing.split()[-1]) <= 3, out
    assert verdict.startswith("DENIED"), out


@linux_only
def test_ctypes_system_changes_nothing_outside(tmp_path):
    code, out = run(
        f"""
        import ctypes
        libc = ctypes.CDLL(None)
        libc.system(b"id -u > /scratch/id; cat /etc/shadow > /scratch/shadow 2>&1;"
                    b"echo pwned > {tmp_path}/pwned; kill -9 {os.getpid()}; ls /proc > /scratch/ps")
        print(open("/scratch/id").read().strip(), open("/scratch/shadow").read()[:60])
        print(sorted(p for p in open("/scratch/ps").read().split() if p.isdigit()))
        """
    )
    assert not (tmp_path / "pwned").exists()
    assert "root:" not in out and not out.startswith("0 "), out


@linux_only
def test_no_user_namespace_of_its_own_and_no_mounts():
    """Inside a user namespace of its own the student would be "root" and could mount a tmpfs
    as large as the host's memory; the seccomp filter refuses both."""
    code, out = run(
        """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x20000
        print("unshare", libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), os.strerror(ctypes.get_errno()))
        print("mount", libc.mount(b"none", b"/scratch", b"tmpfs", 0, None))
        import threading
        t = threading.Thread(target=print, args=("threads still start",)); t.start(); t.join()
        """
    )
    assert "unshare -1 Operation not permitted" in out, out
    assert "mount -1" in out and "threads still start" in out


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_program_is_well_formed(machine):
    prog = _seccomp.program(machine)
    assert len(prog) % 8 == 0 and 30 < len(prog) // 8 < 256
    assert _seccomp.program("sparc") is None


# ------------------------------------------------------------------------------------------------
# Network, descriptors, environment


@linux_only
def test_no_network_to_the_host():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True).start()
    code, out = run(
        f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            print("CONNECTED")
        except OSError as e:
            print("DENIED", type(e).__name__)
        """
    )
    assert out.startswith("DENIED"), out
    time.sleep(0.2)
    server.close()
    assert accepted in ([], [None])


def _accept(server):
    try:
        return server.accept()
    except OSError:
        return None


@linux_only
def test_no_inherited_descriptors():
    leak = os.open(__file__, os.O_RDONLY)
    os.set_inheritable(leak, True)  # a careless grader's open file
    try:
        code, out = run(
            """
            import os
            open_fds = []
            for fd in range(1024):
                try:
                    os.fstat(fd); open_fds.append(fd)
                except OSError:
                    pass
            print(open_fds)
            """
        )
    finally:
        os.close(leak)
    assert out.strip() == "[0, 1, 2, 3, 4]"


@linux_only
def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("CNNLAB_TEST_SECRET", "hunter2")
    code, out = run("import os; print(sorted(os.environ.items()))")
    env = dict(eval(out))
    assert "hunter2" not in out
    assert set(env) <= set(_bwrap.env("/scratch", "")) | {"PWD", "SHLVL", "_"}, env
    assert env["HOME"] == sb.SCRATCH


# ------------------------------------------------------------------------------------------------
# The import policy


IMPORTS = """
import importlib, importlib.util, sys
for name in ("numpy", "torch", "scipy", "cnnlab.nn", "cnnlab.instructor.runner.channel"):
    try:
        importlib.import_module(name)
        print(name, "yes")
    except ModuleNotFoundError:
        print(name, "no")
"""


@linux_only
def test_import_policy_numpy_only():
    code, out = run(IMPORTS)
    assert out.split() == [
        "numpy",
        "yes",
        "torch",
        "no",
        "scipy",
        "no",
        "cnnlab.nn",
        "no",
        "cnnlab.instructor.runner.channel",
        "yes",
    ], out


@linux_only
def test_import_policy_allows_torch_when_told():
    code, out = run(
        IMPORTS.replace('"numpy", ', "")
        + "import torch.nn; print(torch.nn.Linear(2, 3)(torch.ones(1, 2)).shape)",
        P(importable=("numpy", "torch")),
    )
    assert out.split()[:6] == ["torch", "yes", "scipy", "no", "cnnlab.nn", "no"], out
    assert "torch.Size([1, 3])" in out


@linux_only
def test_no_path_trick_reaches_a_forbidden_package():
    torch_init = HOST_SITE / "torch" / "__init__.py"
    assert torch_init.exists()
    code, out = run(
        f"""
        import importlib.util, os, sys
        sys.path += [{str(HOST_SITE)!r}, "/usr/lib/python3/dist-packages", {str(REPO)!r}]
        for name in ("torch", "yaml", "cnnlab.nn"):
            try:
                __import__(name); print("IMPORTED", name)
            except ModuleNotFoundError:
                print("absent", name)
        try:
            spec = importlib.util.spec_from_file_location("t", {str(torch_init)!r})
            spec.loader.exec_module(importlib.util.module_from_spec(spec)); print("IMPORTED file")
        except (FileNotFoundError, AttributeError):
            print("absent file")
        found = []
        for root, dirs, names in os.walk("/"):
            if root == "/":
                dirs.remove("proc"); dirs.remove("dev")
            forbidden = ("/torch", "/scipy", "/cnnlab/nn", "/yaml")
            if root.endswith(forbidden) and "__init__.py" in names:
                found.append(root)
        print("found", found)
        """
    )
    assert "IMPORTED" not in out, out
    assert "found []" in out, out


@linux_only
def test_every_module_a_course_policy_lists_imports_inside_the_sandbox():
    """The sandbox shows a dotted name's folder (cnnlab.nn) but not the packages that folder
    imports: a cnnlab module that picks up a new dependency would fail to import while graded,
    and every cell using it would score 0. Each assignment's policy (nbgrader_config.py) is
    checked here: every listed module imports inside a sandbox with that policy."""
    if MODE["warm"]:
        pytest.skip("the view of the site-packages is the same warm or cold")
    from cnnlab.instructor.course import Course
    table = Course.load(REPO).sandbox_importable
    assert table, "nbgrader_config.py lists no sandbox policies"
    for assignment, modules in table.items():
        code_, out = run(
            f"import importlib\nfor m in {list(modules)!r}:\n    importlib.import_module(m)\n"
            "print('imported')\n",
            P(importable=tuple(modules)), timeout=120,
        )
        assert code_ == 0 and "imported" in out, f"{assignment}: {modules}\n{out}"
