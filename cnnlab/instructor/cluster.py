"""Where grading units run: a local process pool or a Dask cluster, behind one small interface.

A caller (``cluster_grade.run_on_cluster`` for ``cnnlab autograde --cluster``) gives an
``Executor`` one task per submission and reads the outcomes as they finish::

    with executor_for("local:2") as ex:            # or "tcp://scheduler:8786", or jobs=2 locally
        for job in jobs:
            ex.submit(grade_submission, job, key=job.student, expected_seconds=last_time[job])
        for out in ex.as_completed():              # Outcome(key, value, error, seconds, where)
            ...                                    # only the parent writes the gradebook

The unit is any picklable function of one job (the trusted ``grade_submission``); it runs on a
worker and its return value comes back to the parent. Failures come back as values, never raised:
an exception in the unit (``error="ValueError: ..."``, not retried: it would fail again), or the
worker lost while running it (the machine died, it was killed, it ran out of memory): the task is
run once more elsewhere, and if that worker dies too it is recorded as failed with the reason.

Tasks start longest-expected-first (the caller passes the last run's time per submission), so one
slow notebook does not leave a tail at the end of the batch. ``progress`` draws a bar with an ETA
(weighted by the expected seconds) on a terminal and is silent otherwise.

``DaskExecutor`` runs the tasks on a cluster; ``LocalExecutor`` is the same interface on local
processes (``autograde``'s default pool is still its own ``run_jobs``, which runs the same unit).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import operator
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

ATTEMPTS = 2  # a task whose worker dies is run once more elsewhere, then recorded as failed
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": ATTEMPTS - 1,
                    "distributed.scheduler.worker-saturation": 1.0}


@dataclass(frozen=True)
class Outcome:
    """What came back for one task.

    Args:
        key: the caller's name for the task (the student).
        value: what the unit returned; None when it failed.
        error: why it failed (None on success): the unit's exception or the lost workers.
        seconds: the unit's own run time on the worker (the submit-to-result time on failure).
        where: the worker that ran it (``host:pid`` or a Dask worker address).
    """

    key: str
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    where: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Task:
    unit: Callable[[Any], Any]
    job: Any
    key: str
    expected_seconds: float


class Executor(Protocol):
    """One task per submission in, outcomes out (the local pool and Dask both implement it)."""

    def submit(self, unit: Callable[[Any], Any], job: Any, key: str,
               expected_seconds: float = 1.0) -> None: ...

    def as_completed(self) -> Iterator[Outcome]: ...

    def close(self) -> None: ...

    def __enter__(self): ...

    def __exit__(self, *exc) -> None: ...


def timed(unit: Callable[[Any], Any], job: Any) -> tuple[Any, float, str]:
    """Run ``unit(job)`` on a worker: (its value, its run time in seconds, ``host:pid``)."""
    t0 = time.perf_counter()
    value = unit(job)
    return value, time.perf_counter() - t0, f"{socket.gethostname()}:{os.getpid()}"


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Queue:
    """Tasks waiting to start, longest expected first (ties: in the order submitted)."""

    def __init__(self):
        self.tasks: list[_Task] = []
        self.keys: set[str] = set()

    def add(self, unit, job, key: str, expected_seconds: float) -> None:
        if key in self.keys:
            raise ValueError(f"task {key!r} was submitted twice: one task per submission")
        if not expected_seconds >= 0:
            raise ValueError(f"task {key!r}: expected_seconds={expected_seconds!r} must be >= 0")
        self.keys.add(key)
        self.tasks.append(_Task(unit, job, key, float(expected_seconds)))

    def take_all(self) -> list[_Task]:
        order = sorted(self.tasks, key=lambda t: -t.expected_seconds)  # stable: ties keep order
        self.tasks = []
        return order


class LocalExecutor:
    """``jobs`` local worker processes (the default of ``cnnlab autograde``).

    Each worker is a one-process pool of its own, so a worker that dies (Python's pool then
    "breaks") is charged to the one task it was running: that task runs once more in a fresh
    process, then is recorded as failed; the other workers carry on."""

    def __init__(self, jobs: int = 1):
        if jobs < 1:
            raise ValueError(f"--jobs {jobs}: need at least one worker process")
        self.jobs = jobs
        self.queue = _Queue()
        self._slots: list[cf.ProcessPoolExecutor | None] = [None] * jobs

    def _slot(self, i: int) -> cf.ProcessPoolExecutor:
        if self._slots[i] is None:  # spawn: a clean interpreter, whatever threads we run
            self._slots[i] = cf.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"))
        return self._slots[i]

    def submit(self, unit, job, key: str, expected_seconds: float = 1.0) -> None:
        self.queue.add(unit, job, key, expected_seconds)

    def as_completed(self) -> Iterator[Outcome]:
        waiting = self.queue.take_all()
        attempts: dict[str, int] = {}
        running: dict[cf.Future, tuple[_Task, int, float]] = {}  # future -> (task, slot, t0)
        while waiting or running:
            busy = {slot for _, slot, _ in running.values()}
            for i in (i for i in range(self.jobs) if i not in busy):
                if not waiting:
                    break
                task = waiting.pop(0)
                attempts[task.key] = attempts.get(task.key, 0) + 1
                fut = self._slot(i).submit(timed, task.unit, task.job)
                running[fut] = (task, i, time.perf_counter())
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                task, i, t0 = running.pop(fut)
                exc = fut.exception()
                if exc is None:
                    value, seconds, where = fut.result()
                    yield Outcome(task.key, value, None, seconds, where)
                elif isinstance(exc, cf.process.BrokenProcessPool):
                    self._slots[i].shutdown(wait=False)
                    self._slots[i] = None
                    if attempts[task.key] < ATTEMPTS:
                        waiting.insert(0, task)
                    else:
                        yield Outcome(task.key, None, _lost(attempts[task.key],
                                      "the local worker process"), time.perf_counter() - t0,
                                      "local")
                else:
                    yield Outcome(task.key, None, _reason(exc), time.perf_counter() - t0, "")

    def close(self) -> None:
        for pool in self._slots:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._slots = [None] * self.jobs

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lost(times: int, what: str) -> str:
    return (f"not graded: {what} died while grading it, {times} time(s) "
            f"(run once more elsewhere after the first loss, then given up)")


class DaskExecutor:
    """Tasks on a ``dask.distributed`` cluster: an existing scheduler (``address``, e.g.
    ``tcp://10.0.0.5:8786``) or a LocalCluster of ``n_workers`` single-threaded processes.

    Retrying a task whose worker died is the scheduler's job; it gives up once a task has been
    on ``distributed.scheduler.allowed-failures`` + 1 workers that died, and it charges a death
    to every task the worker held, running or queued. The LocalCluster is made with
    ``SCHEDULER_CONFIG`` (one retry, a worker holds only the task it runs); start a scheduler of
    your own with the same (``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1
    DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0``; ``retries_on_loss`` reports what the
    scheduler uses)."""

    def __init__(self, address: str | None = None, n_workers: int | None = None,
                 connect_timeout: float = 30):
        import dask
        from distributed import Client, LocalCluster

        self.queue = _Queue()
        self.cluster = None
        if address is None:
            if not n_workers or n_workers < 1:
                raise ValueError(f"a local Dask cluster needs n_workers >= 1, not {n_workers!r}")
            with dask.config.set(SCHEDULER_CONFIG):
                self.cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                            processes=True, dashboard_address=None,
                                            host="127.0.0.1")
            address = self.cluster.scheduler_address
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)
        except OSError as e:
            if self.cluster is not None:
                self.cluster.close()
            raise ValueError(f"--cluster {address}: no Dask scheduler answered within "
                             f"{connect_timeout:g} s ({_reason(e)})") from None
        self.address = address
        self.retries_on_loss = self.client.run_on_scheduler(_allowed_failures)

    def preload(self, modules: list[str]) -> float:
        """Import ``modules`` on every worker now (a fresh worker would import them in its first
        task); return the seconds it took."""
        t0 = time.perf_counter()
        self.client.run(_import_all, modules)
        return time.perf_counter() - t0

    def submit(self, unit, job, key: str, expected_seconds: float = 1.0) -> None:
        self.queue.add(unit, job, key, expected_seconds)

    def as_completed(self) -> Iterator[Outcome]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        tasks = self.queue.take_all()
        run = uuid.uuid4().hex[:8]
        futures = {}
        for rank, task in enumerate(tasks):  # the first submitted gets the highest priority
            fut = self.client.submit(timed, task.unit, task.job, key=f"grade-{task.key}-{run}",
                                     pure=False, priority=len(tasks) - rank)
            futures[fut] = (task, time.perf_counter())
        for fut in as_completed(list(futures), loop=self.client.loop):
            task, t0 = futures.pop(fut)
            if fut.status == "finished":
                value, seconds, where = fut.result()
                yield Outcome(task.key, value, None, seconds, where)
            else:
                exc = fut.exception()
                error = (_lost(exc.allowed_failures + 1, "the Dask worker running it")
                         if isinstance(exc, KilledWorker) else _reason(exc))
                yield Outcome(task.key, None, error, time.perf_counter() - t0, "")
            fut.release()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _import_all(modules: list[str]) -> None:
    import importlib

    for m in modules:
        importlib.import_module(m)


def _allowed_failures(dask_scheduler=None) -> int:
    """On the scheduler: how many times it reruns a task whose worker died."""
    return int(dask_scheduler.allowed_failures)


def executor_for(cluster: str | None, jobs: int = 1) -> LocalExecutor | DaskExecutor:
    """The executor ``--cluster`` names: None -> ``jobs`` local processes; ``local:N`` -> a
    LocalCluster of N single-threaded workers; ``tcp://host:port`` (or ``tls://``) -> an existing
    Dask scheduler."""
    if cluster is None:
        return LocalExecutor(jobs)
    if cluster.startswith("local:"):
        n = cluster.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--cluster {cluster}: local:N needs a whole number of workers "
                             "N >= 1, e.g. local:4")
        return DaskExecutor(n_workers=int(n))
    if "://" in cluster:
        return DaskExecutor(address=cluster)
    raise ValueError(f"--cluster {cluster!r}: give a scheduler address such as "
                     "tcp://10.0.0.5:8786, or local:N for N workers on this machine")


def progress(items: Iterable[T], expected: dict[str, float], key: Callable[[T], str] = (
        operator.attrgetter("key")), desc: str = "grading") -> Iterator[T]:
    """Pass ``items`` (outcomes, or anything ``key`` names a task of) through, drawing a tqdm bar
    on a terminal (silent when stderr is not one): its ETA counts the expected seconds of what
    is left, not the number of submissions."""
    from tqdm import tqdm

    weighted = sum(expected.values()) > 0
    total = sum(expected.values()) if weighted else float(len(expected))
    with tqdm(total=round(total, 1), desc=desc, unit="s", disable=None, leave=False,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]"
              ) as bar:
        for done, item in enumerate(items, 1):
            bar.set_postfix_str(f"{done}/{len(expected)} submissions", refresh=False)
            bar.update(round(expected.get(key(item), 0.0), 1) if weighted else 1.0)
            yield item
