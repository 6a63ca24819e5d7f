"""Exercise 09's suggested settings: validation and test accuracy over seeds, against the target.

Builds the network of solutions/09_training (the one the notebook suggests), trains it with
``cnnlab.train.fit`` under each setting, and prints the accuracy on the validation split (what the
visible test checks) and on the test split (what the hidden test checks) for every seed::

    .venv/bin/python benchmarks/bench_exercise09.py                 # seeds 0 1 2, about a minute

Settings compared: fit's defaults (what a student who changes nothing gets) and the notebook's
suggestion. The seed fixes the initial weights (``torch.manual_seed``) and the batch order
(``fit(seed=...)``).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from cnnlab.data import load_digits
from cnnlab.train import evaluate, fit

TARGET = 0.95
SETTINGS = {
    "fit's defaults": dict(),
    "solution's": dict(epochs=15, lr=5e-3, batch_size=32),
    "suggested": dict(epochs=30, lr=5e-3, batch_size=32),
    "decay": dict(epochs=30, lr=5e-3, batch_size=32, lr_decay=0.9),
    "wide": dict(epochs=20, lr=3e-3, batch_size=32, width=2),
}


def make_model(width: int = 1) -> nn.Module:
    """The suggested network: (N, 1, 8, 8) -> (N, 10), 6,218 parameters at width 1."""
    return nn.Sequential(
        nn.Conv2d(1, 16 * width, 3, padding=1),  # (N, 16w, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 16w, 4, 4)
        nn.Conv2d(16 * width, 32 * width, 3, padding=1),  # (N, 32w, 4, 4)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 32w, 2, 2)
        nn.Flatten(),
        nn.Linear(128 * width, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    digits = load_digits()
    print(f"target {TARGET}; torch threads 1")
    for name, setting in SETTINGS.items():
        vals, tests = [], []
        for seed in args.seeds:
            torch.manual_seed(seed)
            setting = dict(setting)
            model = make_model(setting.pop("width", 1))
            start = time.perf_counter()
            fit(model, digits.train, digits.val, seed=seed, device="cpu", progress=False, **setting)
            seconds = time.perf_counter() - start
            val = evaluate(model, digits.val, device="cpu").accuracy
            test = evaluate(model, digits.test, device="cpu").accuracy
            vals.append(val)
            tests.append(test)
            print(
                f"{name:15s} {SETTINGS[name]} seed {seed}: val {val:.3f}, test {test:.3f}, "
                f"{seconds:.1f} s"
            )
        print(f"{name:15s} min val {min(vals):.3f}, min test {min(tests):.3f} (target {TARGET})")


if __name__ == "__main__":
    main()
