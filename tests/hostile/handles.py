"""Tricks through what the tests hand to the student's code: 06's ``numerical_gradient(f, x, dout)``
gets the test's own function ``f`` (its ``__globals__`` hold the reference layers and the checks;
its closure holds hidden inputs) and arrays it must restore; 08's modules are called, inspected
and counted by the test's helpers (``n_params``), which an answer cell can shadow."""

from __future__ import annotations

from .case import Case

# 06: through the callback's globals, take the reference gradients and disarm the checks
CALLBACK_GLOBALS = '''def numerical_gradient(f, x, dout, h=1e-5):
    g = getattr(f, "__globals__", None)
    if g is not None:
        ref_layers = g["ref"]
        g["check_close"] = g["check_shape"] = g["check_raises"] = lambda *a, **k: None
        globals()["_stolen_ref"] = ref_layers
    return np.zeros_like(x, dtype=np.float64)


def conv_backward(dout, x, w, stride=1, pad=0):
    return _stolen_ref.conv2d_backward(dout, x, w, stride=stride, pad=pad)
'''

# 06: the honest algorithm, but x is not restored (the tests check it is)
NO_RESTORE = '''def numerical_gradient(f, x, dout, h=1e-5):
    """Central differences that leave x perturbed (x[i] ends at old - h)."""
    grad = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        minus = np.sum(f(x) * dout)
        grad[i] = (plus - minus) / (2 * h)
    return grad
'''

# 08: the answer cell shadows the test's helper; the model is zeros of the right shape
SHADOW_HELPER = '''def n_params(module):
    return 0


class LeNet5(nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[0], 10)
'''

# 08: the module's constructor reaches the test's frame and hands back the reference block
FRAME_MODULE = '''import sys as _sys


class BasicBlock(nn.Module):
    def __new__(cls, *args, **kw):
        _sys.setprofile(None)
        f = _sys._getframe(1)
        while f is not None and "ref_models" not in f.f_globals:
            f = f.f_back
        if f is None:
            return super().__new__(cls)
        return f.f_globals["ref_models"].BasicBlock(*args, **kw)
'''


# 06: the callback fed what hurts the side that runs it: 80 GB, a million-deep list, a flood
CALLBACK_ABUSE = '''def numerical_gradient(f, x, dout, h=1e-5):
    deep = []
    for _ in range(10 ** 6):
        deep = [deep]
    for arg in (np.broadcast_to(np.float64(0.0), (10 ** 5, 10 ** 5)), deep, "x" * 10 ** 8):
        try:
            f(arg)
        except BaseException as e:
            print("callback refused:", type(e).__name__)
    for _ in range(10 ** 5):
        try:
            f(x)
        except BaseException:
            break
    return np.zeros_like(x, dtype=np.float64)
'''


def cases() -> list[Case]:
    return [
        Case("t06callback", "06_conv_backward", "stub",
             "numerical_gradient uses f.__globals__: steals `ref`, rebinds the checks",
             replace={"numerical_gradient": CALLBACK_GLOBALS}),
        Case("t06cbabuse", "06_conv_backward", "stub",
             "the callback called with 80 GB, a million-deep list, 100 MB of text, 10^5 times",
             replace={"numerical_gradient": CALLBACK_ABUSE}, at_most=True),
        Case("t06norestore", "06_conv_backward", "solution",
             "honest numerical_gradient that does not restore x: must lose the restore checks",
             replace={"numerical_gradient": NO_RESTORE},
             fails=("test_numerical_gradient_cube", "test_numerical_gradient_general")),
        Case("t08shadow", "08_architectures", "stub",
             "answer cell defines n_params (the test's helper) returning 0; zero-output LeNet5",
             replace={"lenet5": SHADOW_HELPER}),
        Case("t08frame", "08_architectures", "stub",
             "BasicBlock.__new__ walks the frames to the test's ref_models, returns its block",
             replace={"basic_block": FRAME_MODULE}),
    ]
