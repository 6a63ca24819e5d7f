"""The grader's side of one sandbox: a ``Session`` over its channel, and ``Remote`` handles.

A test cell runs in the grader's own process. The student's names in it are ``Remote`` objects:
calling one, reading or setting an attribute, iterating, ``len``, indexing, ``np.asarray`` ask
the sandbox, and what comes back is plain data (``protocol.py``) or another handle. Nothing of
the student's code runs here: a handle has no ``__array_interface__``, no ``__code__``, no
attribute the grader's code could trip over; only the methods below.

``isinstance(handle, nn.Conv2d)`` works for an allow-list: the classes of ``torch.nn`` (and
``torch.nn.Parameter``), when the grader has imported torch itself. A test may pass its own
functions into a student's function (``numerical_gradient(f, x, dout)``): the sandbox gets a
call-only callback. NumPy arrays passed to a student's function are copied in. A function that
calls back (``numerical_gradient`` perturbing ``x`` in place for ``f``) has its changes copied
back when it calls back and when it returns, as in a call in one process: ``f`` sees the
perturbed ``x``, and "x is unchanged afterwards" means what it says. A function that does not
call back and changes an array it was given raises ``ChangedArgument`` in the test instead:
answers must leave their inputs as they found them, and a change copied back could rewrite what
the test then computes as "expected" (zero the test's ``x`` and ``w``, return zeros).

A sandbox that dies, stops answering within the cell's time or breaks the protocol raises
``SandboxFailure`` (a ``BaseException``: a test's ``except Exception`` cannot swallow it).
"""

from __future__ import annotations

import sys
import time
import types

import numpy as np

from . import protocol as P
from .channel import ChannelClosed, ChannelTimeout, FrameTooLarge


class SandboxFailure(BaseException):
    """The sandbox is gone (died, hung, or sent something that is not the protocol)."""


class ChangedArgument(RuntimeError):
    """A student's function changed, in place, an array the test passed it."""


class CellTimeout(BaseException):
    """The cell ran past its time limit (between calls; the sandbox itself still answers)."""


TORCH_CLASS_PREFIXES = ("torch.nn.modules.", "torch.nn.parameter.")
GRACE_S = 5.0  # past a request's time budget, the sandbox gets this long to stop by itself


class Session:
    """One sandbox as the grader sees it.

    Args:
        sandboxed: the running sandbox (``sandbox.start``'s result).
        settings: the run's limits (``timeout`` per cell, ``max_frame_mb``).
        scratch: a ``scratch.Analysis`` of the submission, for ``check_from_scratch``.
    """

    def __init__(self, sandboxed, settings: P.Settings, scratch=None):
        self.sb, self.ch, self.settings = sandboxed, sandboxed.channel, settings
        self.scratch = scratch
        self.max_frame = settings.max_frame_mb * 2**20
        self.proxies: dict[int, Remote] = {}
        self.callbacks: dict[int, object] = {}
        self._cb_ids: dict[int, int] = {}
        self.dead: str | None = None
        self.deadline = float("inf")
        self.output: list[str] = []  # what the student's code printed during the current cell
        self.calls = 0

    # -- references ----------------------------------------------------------------------------
    def proxy(self, h):
        if not isinstance(h, P.Handle):
            raise P.ProtocolError(f"unexpected reference {h!r}")
        p = self.proxies.get(h.id)
        if p is None:
            p = self.proxies[h.id] = Remote(self, h)
        return p

    def export(self, obj):
        """What the grader's own objects become in the sandbox."""
        if type(obj) is Remote:
            if object.__getattribute__(obj, "_session") is not self:
                raise TypeError("a handle of another sandbox")
            return P.Ref(object.__getattribute__(obj, "_handle").id)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(obj, torch.Tensor):
            return obj.detach().as_subclass(torch.Tensor)  # a Parameter of a reference model
        if isinstance(obj, (types.FunctionType, types.MethodType, types.BuiltinFunctionType)):
            key = id(obj)
            if key not in self._cb_ids:
                self._cb_ids[key] = len(self.callbacks) + 1
                self.callbacks[self._cb_ids[key]] = obj
            return P.CallbackRef(self._cb_ids[key])
        raise TypeError(f"a {type(obj).__name__} of the grader cannot be passed to the "
                        "student's code (only plain data, arrays, tensors and functions)")

    # -- requests ------------------------------------------------------------------------------
    def fail(self, why: str) -> SandboxFailure:
        if self.dead is None:
            self.dead = why
            self.sb.kill()
        return SandboxFailure(self.dead)

    def request(self, message: dict, values: dict | None = None, timeout: float | None = None):
        """Send one request, serve the callbacks it makes, return its decoded value."""
        if self.dead:
            raise SandboxFailure(self.dead)
        if time.monotonic() > self.deadline:
            raise CellTimeout(f"the cell ran past its time limit of {self.settings.timeout:g} s")
        self.calls += 1
        if self.deadline < float("inf"):
            message = {**message, "budget": max(self.deadline - time.monotonic(), 0.01)}
        frame, arrays = P.encode(message, values or {}, self.export)
        called_back = False
        try:
            self.ch.send(frame, timeout=self.settings.timeout)
            while True:
                message, blobs = self._recv(timeout)
                dec = P.Decoder(blobs, self.proxy, allow=("h",))
                if "cb" in message:
                    called_back = True
                    self._copy_back(message, dec, arrays)
                    self._callback(message, dec)
                    continue
                if called_back:
                    self._copy_back(message, dec, arrays)
                else:
                    changed = [t for t, new in self._sync(message, dec, arrays)
                               if t.tobytes() != new.tobytes()]
                    if changed:
                        shapes = ", ".join(str(t.shape) for t in changed)
                        raise ChangedArgument(
                            f"the student's function changed, in place, {len(changed)} array(s) "
                            f"the test passed it (shape {shapes}): an answer must leave its "
                            "inputs as it found them (work on a copy: x = x.copy())")
                if isinstance(message.get("out"), str) and message["out"]:
                    self.output.append(_capped(message["out"], self.settings.max_output_chars))
                if "err" in message:
                    err = message["err"]
                    if not (isinstance(err, list) and len(err) == 2
                            and all(isinstance(e, str) for e in err)):
                        raise P.ProtocolError("a malformed error")
                    raise P.RemoteError(err[0], err[1][:4000]).exception()
                if "ok" not in message:
                    raise P.ProtocolError("a reply without a value")
                return dec.value(message["ok"])
        except P.ProtocolError as e:
            raise self.fail(f"the student's process broke the grading protocol ({e})") from None
        except FrameTooLarge:
            raise self.fail(f"the student's code sent more than {self.settings.max_frame_mb} MB "
                            "in one answer") from None

    def _recv(self, timeout: float | None):
        left = self.deadline + GRACE_S - time.monotonic() if timeout is None else timeout
        if left <= 0:  # also when the sandbox keeps the grader busy with callbacks
            raise self.fail(f"the student's code ran past the time limit of "
                            f"{self.settings.timeout:g} s; it was stopped")
        try:
            data = self.ch.recv(max(left, 0.001) if left < float("inf") else None, self.max_frame)
        except ChannelTimeout:
            if timeout is None and self.deadline < float("inf"):
                why = f"ran past the time limit of {self.settings.timeout:g} s"
            else:
                why = f"did not answer within {timeout or self.settings.timeout:g} s"
            raise self.fail(f"the student's code {why}; it was stopped") from None
        except ChannelClosed:
            code = self.sb.wait(1.0)
            raise self.fail("the student's process ended" + (
                f" (exit code {code})" if code is not None else "") + " while grading; "
                "os._exit, a crash or a memory, CPU or process limit") from None
        return P.split_frame(data)

    @staticmethod
    def _sync(message: dict, dec: P.Decoder, arrays: list) -> list:
        """The (target, new value) pairs of a reply's copy-back, checked."""
        if "sync" not in message:
            return []
        changes = dec.value(message["sync"])
        if not isinstance(changes, list):
            raise P.ProtocolError("a malformed copy-back")
        out = []
        for item in changes:
            if not (isinstance(item, tuple) and len(item) == 2 and type(item[0]) is int
                    and type(item[1]) is np.ndarray and 0 <= item[0] < len(arrays)):
                raise P.ProtocolError("a malformed copy-back entry")
            target, new = arrays[item[0]], item[1]
            if new.shape == target.shape and new.dtype == target.dtype:
                out.append((target, new))
        return out

    def _copy_back(self, message: dict, dec: P.Decoder, arrays: list) -> None:
        for target, new in self._sync(message, dec, arrays):
            if target.flags.writeable:
                np.copyto(target, new)

    def _callback(self, message: dict, dec: P.Decoder) -> None:
        fn = self.callbacks.get(message["cb"]) if type(message["cb"]) is int else None
        if fn is None:
            raise P.ProtocolError("a call of a function the grader never passed")
        args, kwargs = dec.value(message.get("args")), dec.value(message.get("kwargs"))
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(
                isinstance(k, str) for k in kwargs):
            raise P.ProtocolError("malformed callback arguments")
        try:
            reply, values = {}, {"ok": fn(*args, **kwargs)}
            frame, _ = P.encode(reply, values, self.export)
        except Exception as e:  # the grader's function failed: the student's code sees why
            frame, _ = P.encode({"err": [P.exception_type_name(e), str(e)[:500]]}, {})
        self.ch.send(frame, timeout=self.settings.timeout)

    # -- what grade.py asks ----------------------------------------------------------------------
    def run_cell(self, source: str, name: str, locked: bool) -> str | None:
        return self.request({"op": "cell", "source": source, "name": name, "locked": locked})

    def names(self, names: list[str]) -> dict:
        values = self.request({"op": "names", "names": list(names)})
        if not isinstance(values, dict):
            raise self.fail("the student's process answered names with something else")
        for name, v in values.items():
            if type(v) is Remote:
                object.__getattribute__(v, "_names").add(name)
        return values

    def close(self) -> None:
        if self.dead is None:
            try:
                frame, _ = P.encode({"op": "bye"}, {})
                self.ch.send(frame, timeout=1.0)
            except Exception:
                pass
        self.sb.kill()


def _capped(text: str, limit: int) -> str:
    if len(text) <= limit + len(P.TRUNCATED) + 2:
        return text
    return text[:limit] + f"\n{P.TRUNCATED}\n"


def _grad_enabled():
    torch = sys.modules.get("torch")
    return bool(torch.is_grad_enabled()) if torch is not None else None


class Remote:
    """A handle on an object that lives in the sandbox (a function, a model, an iterator)."""

    __slots__ = ("_session", "_handle", "_names")

    def __init__(self, session: Session, handle: P.Handle):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_names", set())  # the global names it was fetched under

    def _ask(self, op: str, values: dict | None = None, **fields):
        s = object.__getattribute__(self, "_session")
        h = object.__getattribute__(self, "_handle")
        return s.request({"op": op, "id": h.id, **fields}, values)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # no __array_interface__ & co. from the sandbox
        return self._ask("getattr", name=name)

    def __setattr__(self, name: str, value) -> None:
        self._ask("setattr", {"value": value}, name=name)

    def __call__(self, *args, **kwargs):
        return self._ask("call", {"args": list(args), "kwargs": kwargs}, grad=_grad_enabled())

    def __iter__(self):
        return self._ask("iter")

    def __next__(self):
        return self._ask("next")

    def __len__(self) -> int:
        n = self._ask("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of a student's object did not return a non-negative int")
        return n

    def __getitem__(self, key):
        return self._ask("getitem", {"key": key})

    def __setitem__(self, key, value) -> None:
        self._ask("setitem", {"key": key, "value": value})

    def __contains__(self, key) -> bool:
        return self._ask("contains", {"key": key}) is True

    def __bool__(self) -> bool:
        return self._ask("bool") is True

    def __array__(self, dtype=None, copy=None):
        a = self._ask("array")
        if type(a) is not np.ndarray:
            raise TypeError("the student's object is not an array")
        return a.astype(dtype) if dtype is not None else a

    def __repr__(self) -> str:
        try:
            r = self._ask("repr")
        except Exception:
            r = None
        h = object.__getattribute__(self, "_handle")
        return r if isinstance(r, str) else f"<the student's {h.name}>"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    @property
    def __name__(self) -> str:
        return object.__getattribute__(self, "_handle").name.rsplit(".", 1)[-1]

    @property
    def __class__(self):
        return _allowed_class(object.__getattribute__(self, "_handle")) or Remote

    def _cnnlab_from_scratch(self, forbid, allow) -> list[str]:
        """What ``check_from_scratch`` finds wrong, decided here from the submitted source."""
        s = object.__getattribute__(self, "_session")
        h = object.__getattribute__(self, "_handle")
        if s.scratch is None:
            return []
        names = sorted(object.__getattribute__(self, "_names"))
        if not names:  # an object made by the student's code: judge its class's source
            names = [c.split(".", 1)[1] for c in h.cls[:1] if c.startswith("__main__.")]
        return s.scratch.violations(names, forbid, allow)


def _allowed_class(h: P.Handle):
    """The first class of the object's MRO that is one of torch.nn's, as the grader's class."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    for dotted in h.cls:
        if not dotted.startswith(TORCH_CLASS_PREFIXES):
            continue
        module, _, name = dotted.rpartition(".")
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and (issubclass(cls, torch.nn.Module)
                                      or cls is torch.nn.Parameter):
            return cls
    return None
