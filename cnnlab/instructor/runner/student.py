"""What runs inside the sandbox: the student's cells, and their objects, served to the grader.

``python -m cnnlab.instructor.runner.student`` talks to the grader over the private channel
(descriptors 3 and 4) and answers one request at a time:

* ``cell``: execute one cell's source in the notebook namespace (a module ``__main__``); its
  printed output is captured (capped) and returned as text. A cell stops at its first error, as
  in Jupyter, except that an import the sandbox does not allow (``torch`` in a NumPy assignment)
  costs that statement only; a locked cell of the instructor goes on after any error.
* ``names``: the current values of some global names (by value, or as handles).
* ``getattr``, ``setattr``, ``call``, ``iter``, ``next``, ``len``, ``getitem``, ``setitem``,
  ``contains``, ``bool``, ``repr``, ``array``: on an object the grader holds a handle to.

Everything here runs with the student's code and can be changed by it: the grader decides nothing
from what this module says beyond the values it returns (see ``grade.py``). Standard library and
NumPy only (torch when the assignment allows it).
"""

from __future__ import annotations

import ast
import builtins
import io
import linecache
import signal
import sys
import traceback
import types

import numpy as np

from cnnlab.instructor.runner import protocol as P
from cnnlab.instructor.runner.channel import Channel

MAX_FRAME = 256 * 2**20


class TimeLimit(BaseException):
    """The grader's time for this request is up (an honest loop stops here, the cell fails and
    grading goes on; code that blocks the alarm is killed by the grader a little later)."""


def _alarm(signum, frame):
    raise TimeLimit("ran past the time limit (timeout); interrupted")


class _Capped(io.TextIOBase):
    """stdout/stderr of one request: the first ``limit`` characters are kept."""

    def __init__(self, limit: int):
        self.limit, self.parts, self.n, self.dropped = limit, [], 0, False

    def write(self, s):
        s = str(s)
        room = self.limit - self.n
        if room > 0:
            self.parts.append(s[:room])
        self.dropped |= len(s) > room
        self.n += len(s)
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        return out + (f"\n{P.TRUNCATED}\n" if self.dropped else "")


def _magic_free(source: str) -> str:
    """IPython magics and shell escapes become ``pass`` (no IPython in the sandbox)."""
    out = []
    for line in source.split("\n"):
        s = line.lstrip()
        out.append(line[: len(line) - len(s)] + "pass" if s.startswith(("%", "!")) else line)
    return "\n".join(out)


class Server:
    def __init__(self, channel, max_output: int = 20_000):
        self.ch, self.max_output = channel, max_output
        self.objects: dict[int, object] = {}
        self.ids: dict[int, int] = {}
        self.callbacks: dict[int, Callback] = {}
        self.inout: list[list] = []  # per active incoming call: [sender index, array, bytes]
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        self.ns = main.__dict__
        self.cells = 0
        self.out: _Capped | None = None

    # -- references ----------------------------------------------------------------------------
    def export(self, obj) -> P.Handle:
        """A handle for ``obj`` (numbered once, kept alive until the sandbox ends)."""
        key = id(obj)
        if key not in self.ids:
            self.ids[key] = len(self.objects) + 1
            self.objects[self.ids[key]] = obj
        kind = "function" if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType,
                                              types.MethodType, type)) else "object"
        try:
            name = str(getattr(obj, "__qualname__", None) or type(obj).__qualname__)
        except Exception:
            name = "?"
        cls = tuple(f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__)
        return P.Handle(self.ids[key], kind, name, cls)

    def export_value(self, obj):
        """Plain data goes by value; arrays and tensors of subclasses as their base type."""
        if isinstance(obj, np.ndarray) and type(obj) is not np.ndarray:
            return self.export(obj) if obj.dtype.hasobject else np.array(obj, subok=False)
        torch = sys.modules.get("torch")
        if torch is not None:
            if isinstance(obj, torch.nn.Parameter):
                return self.export(obj)  # a module's state: changed in place by tests
            if isinstance(obj, torch.Tensor):
                return obj.detach().as_subclass(torch.Tensor)
            if isinstance(obj, torch.device):
                return obj
        return self.export(obj)

    def resolve(self, ref):
        if isinstance(ref, P.Ref):
            if ref.id not in self.objects:
                raise KeyError(f"no object {ref.id}")
            return self.objects[ref.id]
        if isinstance(ref, P.CallbackRef):
            return self.callbacks.setdefault(ref.id, Callback(self, ref.id))
        raise TypeError(f"unexpected reference {ref!r}")

    # -- frames --------------------------------------------------------------------------------
    def send(self, message: dict, values: dict) -> None:
        values = dict(values)
        if self.inout:
            values["sync"] = self._changed(self.inout[-1])
        try:
            frame, _ = P.encode(message, values, self.export_value)
        except (TypeError, P.ProtocolError) as e:
            why = f"the result cannot cross to the grader: {e}"
            frame, _ = P.encode({"err": ["TypeError", why]}, {})
        self.ch.send(frame, timeout=None)

    def recv(self):
        return P.split_frame(self.ch.recv(None, MAX_FRAME))

    @staticmethod
    def _changed(inout: list) -> list:
        out = []
        for entry in inout:
            idx, arr, before = entry
            now = arr.tobytes()
            if now != before:
                out.append((idx, arr))
                entry[2] = now
        return out

    def decode(self, message: dict, key: str, blobs, track: bool = False):
        dec = P.Decoder(blobs, self.resolve, allow=("r", "c"))
        value = dec.value(message.get(key))
        if track:
            self.inout[-1].extend([i, a, a.tobytes()] for i, a in dec.arrays.items())
        return value

    # -- the loop ------------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            message, blobs = self.recv()
            if message.get("op") == "bye":
                return
            self.answer(message, blobs)

    def answer(self, message: dict, blobs) -> None:
        self.inout.append([])
        out = self.out = _Capped(self.max_output)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        budget = message.get("budget")
        outermost = len(self.inout) == 1 and type(budget) in (int, float) and budget > 0
        try:
            if outermost:
                signal.signal(signal.SIGALRM, _alarm)
                signal.setitimer(signal.ITIMER_REAL, budget)
            value = self.dispatch(message, blobs)
            reply, values = {}, {"ok": value}
        except BaseException as e:  # noqa: BLE001 (the student's exception, reported)
            if isinstance(e, TimeLimit):
                reply = {"err": ["TimeoutError", str(e)]}
            elif isinstance(e, (KeyboardInterrupt, SystemExit)) and message.get("op") != "cell":
                reply = {"err": [P.exception_type_name(e) if not isinstance(e, SystemExit)
                                 else "RuntimeError", f"{type(e).__name__}: {e}"]}
            else:
                reply = {"err": [P.exception_type_name(e), _message(e)]}
            values = {}
        finally:
            if outermost:
                signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = saved
        reply["out"] = out.text()
        self.send(reply, values)
        self.inout.pop()

    def dispatch(self, m: dict, blobs):
        op = m.get("op")
        if op == "cell":
            return self.run_cell(str(m["source"]), str(m.get("name", "cell")), bool(m["locked"]))
        if op == "names":
            return {n: self.ns[n] for n in m["names"] if isinstance(n, str) and n in self.ns}
        obj = self.objects[int(m["id"])]
        if op == "getattr":
            return getattr(obj, str(m["name"]))
        if op == "setattr":
            setattr(obj, str(m["name"]), self.decode(m, "value", blobs))
            return None
        if op == "call":
            args = self.decode(m, "args", blobs, track=True)
            kwargs = self.decode(m, "kwargs", blobs, track=True)
            torch = sys.modules.get("torch")
            if torch is not None and m.get("grad") is not None:
                with torch.set_grad_enabled(bool(m["grad"])):
                    return obj(*args, **kwargs)
            return obj(*args, **kwargs)
        if op == "iter":
            return self.export(iter(obj))
        if op == "next":
            return next(obj)
        if op == "len":
            return len(obj)
        if op == "getitem":
            return obj[self.decode(m, "key", blobs)]
        if op == "setitem":
            obj[self.decode(m, "key", blobs)] = self.decode(m, "value", blobs)
            return None
        if op == "contains":
            return self.decode(m, "key", blobs) in obj
        if op == "bool":
            return bool(obj)
        if op == "repr":
            return repr(obj)[:2000]
        if op == "array":
            return np.array(np.asarray(obj), subok=False)
        raise ValueError(f"unknown request {op!r}")

    def run_cell(self, source: str, name: str, locked: bool) -> str | None:
        """Execute one cell; return its error ("Type: message" and traceback) or None."""
        self.cells += 1
        filename = f"<{name}>"
        code = _magic_free(source)
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            tree = ast.parse(code, filename)
        except SyntaxError as e:
            return f"SyntaxError: {e.msg} (line {e.lineno})"
        errors = []
        for i, stmt in enumerate(tree.body):
            try:
                self._exec([stmt], filename, display=not locked and i == len(tree.body) - 1)
            except BaseException as e:  # noqa: BLE001
                errors.append(_traceback(e, filename))
                if not (locked or isinstance(e, ImportError)):
                    break
        return "\n".join(errors) or None

    def _exec(self, stmts, filename: str, display: bool) -> None:
        last = stmts[-1] if display and stmts and isinstance(stmts[-1], ast.Expr) else None
        body = stmts[:-1] if last is not None else stmts
        exec(compile(ast.Module(body=body, type_ignores=[]), filename, "exec"), self.ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), filename, "eval"), self.ns)
            if value is not None:
                print(repr(value))


class Callback:
    """A function of the grader: calling it asks the grader to run it on these values."""

    __slots__ = ("_server", "_id")

    def __init__(self, server: Server, cid: int):
        self._server, self._id = server, cid

    def __call__(self, *args, **kwargs):
        s = self._server
        s.send({"cb": self._id}, {"args": list(args), "kwargs": kwargs})
        while True:
            message, blobs = s.recv()
            if "op" in message:  # the grader's callback calls back into the sandbox
                s.answer(message, blobs)
                continue
            if "err" in message:
                raise P.RemoteError(*message["err"]).exception()
            return s.decode(message, "ok", blobs)

    def __repr__(self):
        return "<a function of the grader>"


def _message(e: BaseException) -> str:
    try:
        return str(e)[:4000]
    except Exception:
        return "(an exception whose message cannot be printed)"


def _traceback(e: BaseException, filename: str) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<")]
    lines = traceback.format_list(frames) if frames else []
    kind = "TimeoutError" if isinstance(e, TimeLimit) else type(e).__name__
    head = f"{kind}: {_message(e)}"
    return ("Traceback:\n" + "".join(lines) + head) if lines else head


def main() -> None:
    ch = Channel(3, 4)
    message, _ = P.split_frame(ch.recv(None, MAX_FRAME))
    server = Server(ch, int(message.get("max_output", 20_000)))
    server.send({"hello": 1}, {})
    server.serve()


if __name__ == "__main__":
    main()
