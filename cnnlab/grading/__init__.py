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
