"""Fixtures shared by the test modules."""

import pytest

# The environment nbgrader_config.py gives graded kernels: nbgrader scores a test cell 0 when it
# writes to stderr, so no warnings, no progress bars, no GUI backend.
GRADED_KERNEL_ENV = {"PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}


@pytest.fixture
def graded_env(monkeypatch):
    """Run kernels started by the test (nbgrader's Validator) as graded kernels run."""
    for key, value in GRADED_KERNEL_ENV.items():
        monkeypatch.setenv(key, value)
