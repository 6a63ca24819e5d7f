"""The executors that run grading units: a local process pool and a real Dask cluster.

The Dask tests start a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1
(``daskproc.py``) and kill a worker in the middle of a task. The units are small and real
(``daskproc.nap``/``crash``/``refuse``): what is tested is the scheduling, not the grading.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
from daskproc import crash, nap, refuse, start_cluster

from cnnlab.instructor.cluster import DaskExecutor, LocalExecutor, Outcome, executor_for, progress


@pytest.fixture(scope="module")
def dask_cluster():
    cluster = start_cluster(2)
    try:
        yield cluster
    finally:
        cluster.stop()


def _wait_for(path, timeout=60.0):
    t_end = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < t_end, f"{path} never appeared: the task did not start"
        time.sleep(0.05)
    return int(path.read_text())


# ----------------------------------------------------------------------------- the interface

@pytest.mark.parametrize("spec, message", [
    ("local:0", "local:N needs a whole number"),
    ("local:two", "local:N needs a whole number"),
    ("8786", "give a scheduler address"),
])
def test_executor_for_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        executor_for(spec)


def test_no_scheduler_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=f"tcp://127.0.0.1:{port}: no Dask scheduler answered"):
        DaskExecutor(address=f"tcp://127.0.0.1:{port}", connect_timeout=2)


def test_submit_twice_is_refused():
    ex = LocalExecutor(1)
    ex.submit(nap, {"key": "a"}, "a")
    with pytest.raises(ValueError, match="'a' was submitted twice"):
        ex.submit(nap, {"key": "a"}, "a")


def test_progress_is_silent_off_a_terminal(capsys):
    outs = [Outcome("a", 1), Outcome("b", error="x")]
    assert list(progress(iter(outs), {"a": 2.0, "b": 1.0})) == outs
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ------------------------------------------------------------------------- local processes

def test_local_longest_expected_first_and_failures_as_values():
    with LocalExecutor(1) as ex:
        for key, expected in [("short", 1.0), ("long", 9.0), ("mid", 5.0)]:
            ex.submit(nap, {"key": key, "x": 3}, key, expected_seconds=expected)
        ex.submit(refuse, {"key": "bad"}, "bad", expected_seconds=7.0)
        outs = list(ex.as_completed())
    assert [o.key for o in outs] == ["long", "bad", "mid", "short"]
    assert all(o.ok and o.value["square"] == 9 for o in outs if o.key != "bad")
    (bad,) = [o for o in outs if o.key == "bad"]
    assert bad.value is None
    assert bad.error == "ValueError: job bad: a unit error comes back as a value"


def test_local_worker_death_is_retried_once_then_failed():
    with LocalExecutor(2) as ex:
        ex.submit(crash, {"key": "crash"}, "crash", expected_seconds=5.0)
        for i in range(3):
            ex.submit(nap, {"key": f"s{i}", "x": i}, f"s{i}", expected_seconds=1.0)
        outs = {o.key: o for o in ex.as_completed()}
    assert sorted(outs) == ["crash", "s0", "s1", "s2"]
    assert "died while grading it, 2 time(s)" in outs["crash"].error
    assert [outs[f"s{i}"].value["square"] for i in range(3)] == [0, 1, 4]


# ------------------------------------------------------------------- a real Dask cluster

@pytest.mark.slow
def test_dask_runs_longest_first_on_both_workers(dask_cluster):
    with DaskExecutor(address=dask_cluster.address) as ex:
        assert ex.retries_on_loss == 1
        expected = {f"t{i}": float(i) for i in range(6)}
        for key, e in expected.items():
            ex.submit(nap, {"key": key, "seconds": 0.6, "x": int(key[1:])}, key, e)
        outs = {o.key: o for o in ex.as_completed()}
    assert all(o.ok for o in outs.values()), [o.error for o in outs.values()]
    assert [outs[k].value["square"] for k in sorted(outs)] == [0, 1, 4, 9, 16, 25]
    assert len({o.where for o in outs.values()}) == 2, "both workers took tasks"
    started = sorted(outs, key=lambda k: outs[k].value["started"])
    assert set(started[:2]) == {"t5", "t4"}, f"longest expected first, started in order {started}"


@pytest.mark.slow
def test_dask_worker_killed_mid_task_is_retried_elsewhere(dask_cluster, tmp_path):
    marker = tmp_path / "started"
    with DaskExecutor(address=dask_cluster.address) as ex:
        ex.submit(nap, {"key": "victim", "seconds": 3.0, "x": 7, "marker": str(marker)},
                  "victim", expected_seconds=9.0)
        ex.submit(crash, {"key": "crasher"}, "crasher", expected_seconds=1.0)
        for i in range(3):
            ex.submit(nap, {"key": f"ok{i}", "seconds": 0.2, "x": i}, f"ok{i}", 0.5)
        killed = []

        def kill_when_started():  # the worker process (its nanny starts a new one)
            killed.append(_wait_for(marker))
            os.kill(killed[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_when_started)
        killer.start()
        outs = {o.key: o for o in ex.as_completed()}
        killer.join()
    first_pid = killed[0]
    assert sorted(outs) == ["crasher", "ok0", "ok1", "ok2", "victim"]
    victim = outs["victim"]
    assert victim.ok, victim.error
    assert victim.value["square"] == 49 and victim.value["pid"] != first_pid
    assert "died while grading it, 2 time(s)" in outs["crasher"].error
    assert all(outs[f"ok{i}"].value["square"] == i * i for i in range(3))
