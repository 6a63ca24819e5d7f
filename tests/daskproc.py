"""A real Dask cluster for tests: one ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

``start_cluster(2)`` runs the scheduler on a random port (its address read from a scheduler
file), and each worker with ``--nthreads 1`` under its nanny (which restarts a worker that dies,
as in a real deployment); ``DaskProcs.stop()`` kills every process group it started. The scheduler
runs as cnnlab's deployment notes say: a task whose worker died is rerun once (``allowed-failures``
1), and a worker holds only the task it runs (``worker-saturation`` 1.0), so a worker's death is
charged to that task alone.
The small units below are what the executor tests run: importable on the workers because the
tests folder is on their PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DASK = Path(sys.executable).parent / "dask"


@dataclass
class DaskProcs:
    address: str
    home: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def start_cluster(n_workers: int = 2, timeout: float = 120) -> DaskProcs:
    home = Path(tempfile.mkdtemp(prefix="cnnlab-dask-"))
    sched_file = home / "scheduler.json"
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1",
               DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    log = open(home / "log", "ab")
    opts = dict(env=env, stdout=log, stderr=log, start_new_session=True, cwd=home)
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)], **opts)]
    t_end = time.monotonic() + timeout
    while not sched_file.exists() and time.monotonic() < t_end and procs[0].poll() is None:
        time.sleep(0.1)
    if not sched_file.exists():
        DaskProcs("", home, procs).stop()
        raise RuntimeError(f"the dask scheduler did not start: {(home / 'log').read_text()}")
    address = json.loads(sched_file.read_text())["address"]
    for i in range(n_workers):
        procs.append(subprocess.Popen(
            [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1", "--host",
             "127.0.0.1", "--no-dashboard", "--name", f"w{i}", "--local-directory",
             str(home / f"w{i}")], **opts))
    cluster = DaskProcs(address, home, procs)
    from distributed import Client

    with Client(address, timeout=timeout) as client:
        client.wait_for_workers(n_workers, timeout=max(1.0, t_end - time.monotonic()))
    return cluster


# ----------------------------------------------------------------- units the executor tests run

def nap(job: dict) -> dict:
    """Sleep ``job["seconds"]``, dropping ``<marker>`` (holding this pid) first when asked;
    return when it started and where."""
    started = time.time()
    if job.get("marker"):
        Path(job["marker"]).write_text(str(os.getpid()))
    time.sleep(job.get("seconds", 0.0))
    return {"key": job["key"], "started": started, "pid": os.getpid(),
            "square": job.get("x", 0) ** 2}


def crash(job: dict) -> dict:
    """Kill the worker process that runs it (a segfault, the OOM killer, a pulled plug)."""
    os._exit(13)


def refuse(job: dict) -> dict:
    raise ValueError(f"job {job['key']}: a unit error comes back as a value")
