"""What graded test cells call: checks that explain failures, and "from scratch" detection.

>>> from cnnlab.grading import check_close, check_shape, check_from_scratch
"""

from cnnlab.grading.checks import (
    CheckFailed,
    check_close,
    check_equal,
    check_raises,
    check_shape,
    check_true,
    check_type,
    passed,
)
from cnnlab.grading.integrity import TamperError, assert_untampered, reference, torch_functional
from cnnlab.grading.scratch import (
    CONV_LIBRARIES,
    DEFAULT_FORBIDDEN,
    REFERENCE,
    WINDOW_TRICKS,
    FromScratchError,
    check_from_scratch,
    from_scratch,
    static_violations,
)

__all__ = [
    "CheckFailed",
    "check_close",
    "check_equal",
    "check_raises",
    "check_shape",
    "check_true",
    "check_type",
    "passed",
    "CONV_LIBRARIES",
    "DEFAULT_FORBIDDEN",
    "REFERENCE",
    "WINDOW_TRICKS",
    "FromScratchError",
    "check_from_scratch",
    "from_scratch",
    "static_violations",
    "TamperError",
    "assert_untampered",
    "reference",
    "torch_functional",
]

# In a notebook, a failed check shows its message only (see cnnlab.grading.display).
from cnnlab.grading import display as _display  # noqa: E402

_display.install((CheckFailed, FromScratchError, TamperError))
