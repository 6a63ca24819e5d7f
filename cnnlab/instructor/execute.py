"""nbgrader's ``Execute`` step, run in the sandboxed kernel and hardened against hostile cells.

* Every kernel is ``cnnlab.instructor.sandbox_kernel`` (whatever kernelspec the notebook names),
  started in the submission's own folder with a scrubbed environment (no variable of the
  instructor's shell reaches student code).
* Output is capped in the kernel and again here: a cell that prints 100 MB keeps its first
  ``max_output_chars`` characters.
* A kernel that dies (``os._exit``, a memory bomb, a segfault) scores 0 on the cell it died in and
  on every later cell (each gets an error output saying why); the grading goes on with the next
  notebook instead of failing the whole run.
* A test cell during which the kernel saw a checker replaced (``np.allclose = ...`` executed
  inside a student's function) gets an error output, so nbgrader scores it 0.
* No fixed waits around a kernel: jupyter_client idles 0.2 s after a kernel's start and polls its
  exit every 0.1 s; here both wait only as long as the kernel takes (see ``IOPUB_FLUSH_S``).

What the kernel reports is gathered in ``EVENTS`` (per notebook, in this process) for the worker.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Dict, DottedObjectName, Integer, Type, default

from .notebooks import is_test_cell, nbg
from .sandbox_kernel import GUARD_MIME

# notebook path -> {"events": [..], "cells": {grade_id or index: seconds}, "died": str | None}
EVENTS: dict[str, dict] = {}

# the locale, and the quiet-kernel settings nbgrader_config.py exports for graded cells
# errors worth a line in the report wherever they happen (a failing test is not news)
NOTABLE_ERRORS = {
    "CellTimeoutError": "ran past the per-cell timeout (interrupted)",
    "MemoryError": "MemoryError (the kernel's memory limit)",
    "SystemExit": "SystemExit (sys.exit() in a notebook)",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "RecursionError": "RecursionError",
}

KERNEL_ENV_KEEP = ("LANG", "LC_ALL", "TZ", "PYTHONWARNINGS", "TQDM_DISABLE")


def kernel_env(home: Path, settings: dict, inherited: dict) -> dict:
    """The environment of a grading kernel: nothing of the instructor's shell but the locale."""
    venv_bin = str(Path(sys.executable).parent)
    env = {k: os.environ[k] for k in KERNEL_ENV_KEEP if k in os.environ}
    env.update({k: v for k, v in inherited.items() if k.startswith("JPY_")})
    env.update({
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "IPYTHONDIR": str(home / ".ipython"),
        "MPLCONFIGDIR": str(home / ".matplotlib"),
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "NBGRADER_EXECUTION": "autograde",
        "CNNLAB_SANDBOX": __import__("json").dumps(settings),
    })
    return env


# How long the grader idles around each kernel. jupyter_client waits for 0.2 s of silence on
# IOPub after a kernel's first reply and polls a stopping kernel every 0.1 s: about 0.3 s per
# notebook in which a worker's core sits idle (a third of the toy assignment's CPU time). Waiting
# only as long as a message or the exit actually takes is what lets ``--jobs 2`` use both cores.
IOPUB_FLUSH_S = 0.01
EXIT_POLL_S = 0.005


class SandboxKernelClient(AsyncKernelClient):
    """jupyter_client's client, minus the fixed 0.2 s IOPub flush once the kernel is ready."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """The kernel answered ``kernel_info`` on shell and sent something on IOPub (so both
        channels are connected; as jupyter_client checks); then drop what IOPub still holds.
        Stale startup messages are harmless anyway: nbclient keeps only replies to its own
        requests."""
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                msg = None
            if msg is not None and msg["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(msg)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=IOPUB_FLUSH_S)
            except Empty:
                break


class SandboxKernelManager(AsyncKernelManager):
    """Starts ``sandbox_kernel`` instead of the kernelspec's command."""

    sandbox = Dict(help="settings for sandbox_kernel: mem_mb, fsize_mb, max_output_chars, "
                        "allow, deny, write, dlopen_roots, home").tag(config=True)
    client_class = DottedObjectName("cnnlab.instructor.execute.SandboxKernelClient")
    client_factory = Type(SandboxKernelClient, klass=AsyncKernelClient)

    async def _async_finish_shutdown(self, waittime=None, pollinterval=EXIT_POLL_S,
                                     restart=False):
        """jupyter_client's (wait, then SIGTERM, then SIGKILL), polling the exit every 5 ms."""
        return await super()._async_finish_shutdown(waittime, EXIT_POLL_S, restart)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        cmd = list(kernel_cmd)
        if "-f" not in cmd:
            raise ValueError(f"kernel command {cmd} has no '-f CONNECTION_FILE'")
        cmd = [sys.executable, "-m", "cnnlab.instructor.sandbox_kernel", *cmd[cmd.index("-f"):]]
        cwd = Path(kw.get("cwd") or os.getcwd()).resolve()
        home = Path(self.sandbox.get("home") or cwd / ".home")
        for d in (home, home / "tmp", home / ".ipython", home / ".matplotlib"):
            d.mkdir(parents=True, exist_ok=True)
        _seed_matplotlib_cache(home / ".matplotlib")
        settings = dict(self.sandbox)
        settings["write"] = [str(cwd), str(home)] + list(settings.get("write", []))
        settings["allow"] = [str(cwd), str(home)] + list(settings.get("allow", []))
        kw["env"] = kernel_env(home, settings, kw.get("env") or {})
        kw["cwd"] = str(cwd)
        result = await super()._async_launch_kernel(cmd, **kw)
        pid_file = self.sandbox.get("pid_file")
        pid = getattr(getattr(self.provisioner, "process", None), "pid", None)
        if pid_file and pid:
            with open(pid_file, "a") as f:  # the parent kills these if the worker is stopped
                f.write(f"{pid}\n")
        return result


def _seed_matplotlib_cache(dest: Path) -> None:
    """Copy the instructor's matplotlib font cache (a fresh one costs seconds per kernel)."""
    try:
        import matplotlib

        for f in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
            target = dest / f.name
            if not target.exists():
                target.write_bytes(f.read_bytes())
    except Exception:  # a missing cache only costs time
        pass


class SandboxedExecute(Execute):
    """nbgrader's Execute with the sandboxed kernel, output caps and kernel-death handling."""

    max_output_chars = Integer(200_000, help="characters of output kept per cell").tag(config=True)

    def __init__(self, *args, **kwargs):
        # nbgrader's Execute.__init__ forces AsyncKernelManager; ours goes first
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)

    @default("kernel_name")
    def _kernel_name_default(self):
        return "python3"

    def preprocess(self, nb, resources=None, km=None):
        self._dead = None
        self._key = str(Path(resources["metadata"]["path"]) / resources["metadata"]["name"])
        self._record = EVENTS.setdefault(self._key, {"events": [], "cells": {}, "died": None})
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        key = nbg(cell).get("grade_id") or f"cell {index}"
        if self._dead:
            cell.outputs = [_error("NotRun", f"not run: {self._dead}")]
            return cell, resources
        self._chars = 0
        self._truncated = False
        self._guard = []
        start = time.perf_counter()
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._dead = f"the kernel died in {key}"
            self._record["died"] = self._dead
            cell.outputs = list(cell.get("outputs", [])) + [
                _error("KernelDied", f"{self._dead} (os._exit, a crash or the memory limit)")]
        self._record["cells"][key] = round(time.perf_counter() - start, 3)
        tampered = False
        for g in self._guard:
            self._record["events"].extend(f"{key}: {e}" for e in g.get("events", []))
            tampered |= bool(g.get("tampered"))
        if tampered and is_test_cell(cell):
            cell.outputs.append(_error(
                "CheckerTampered", "a checker (numpy, numpy.testing or cnnlab) was replaced "
                "while this test ran: no credit"))
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error" and o.get("ename") in NOTABLE_ERRORS:
                self._record["events"].append(f"{key}: {NOTABLE_ERRORS[o['ename']]}")
        if self._truncated:
            self._record["events"].append(f"{key}: output over {self.max_output_chars} "
                                          "characters, truncated")
        return cell, resources

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        data = content.get("data") or {}
        if msg["msg_type"] == "display_data" and GUARD_MIME in data:
            self._guard.append(data[GUARD_MIME])
            return None
        if msg["msg_type"] == "stream":
            text = content.get("text", "")
            room = self.max_output_chars - self._chars
            self._chars += len(text)
            if room <= 0:
                self._truncated = True
                return None
            if len(text) > room:
                self._truncated = True
                content["text"] = text[:room] + "\n[output truncated by the grader]\n"
        return super().output(outs, msg, display_id, cell_index)


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])
