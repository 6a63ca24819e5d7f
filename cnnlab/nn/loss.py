"""Softmax followed by cross-entropy: the loss of a classifier's scores."""

from __future__ import annotations

import numpy as np

from cnnlab.nn import _checks


def softmax_cross_entropy(scores, y):
    """Mean cross-entropy of ``softmax(scores)`` against the true classes, and its gradient.

    Args:
        scores: ``(N, M)`` class scores (logits) of N examples over M classes.
        y: ``(N,)`` integer class indices in ``[0, M)``.

    Returns:
        ``(loss, dscores)``: ``loss = -mean_n log softmax(scores)[n, y[n]]`` (a Python float) and
        ``dscores = (softmax(scores) - onehot(y)) / N`` of shape ``(N, M)``, float dtype of scores.

    >>> loss, dscores = softmax_cross_entropy(np.zeros((2, 10)), np.array([3, 7]))
    >>> round(loss, 4) == round(float(np.log(10)), 4), dscores.shape
    (True, (2, 10))
    """
    scores = _checks.array("scores", scores)
    _checks.ndim("scores", scores, 2, "(N, M)")
    y = np.asarray(y)
    N, M = scores.shape
    if N == 0:
        raise ValueError("scores must hold at least one example, got N = 0")
    if y.shape != (N,):
        raise ValueError(
            f"y must have shape (N,) = ({N},), one class per row of scores, got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class indices, got dtype {y.dtype}")
    bad = np.flatnonzero((y < 0) | (y >= M))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"y[{i}] = {int(y[i])} is not a class index in [0, M) = [0, {M})")
    dt = _checks.float_dtype(scores)
    shifted = scores.astype(dt) - scores.max(axis=1, keepdims=True)  # (N, M), max 0: no overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = float(-log_probs[rows, y].mean())
    dscores = np.exp(log_probs)                                        # softmax, (N, M)
    dscores[rows, y] -= 1
    dscores /= N
    return loss, dscores
