"""The pilot behind chapters 1 and 4: in which generated regime does dropout visibly lower test error?

    .venv/bin/python benchmarks/pilot_regime.py [--seeds 10] [--out book/data/pilot_regime.json]

Each candidate regime trains the chapters' network (two hidden ReLU layers of 64 units, Adam at learning
rate 1e-2, minibatches of 50, 40 epochs, 300 training and 300 validation examples) with and without
dropout (p = 0.5 after each hidden layer), the same seeds in both arms, and records the test error of the
last epoch's weights, the paired difference, the training error, how far the test loss rose from its
lowest point, and the CPU time per trained network. The candidates:

- the 8x8 digits with clean labels (the book's earlier regime);
- the 8x8 digits with 10%, 20% and 40% of the training and validation labels replaced by another class
  (the memorisation regime of Arpit et al. 2017), test labels clean;
- the 20% noise regime with dropout on the inputs too (p = 0.2, the paper's usual input rate);
- MNIST-1D (the ``mnist1d`` package's ``make_dataset``, generated here: no download).

The chapters read the result file and quote it; they do not rerun the pilot (it takes minutes, more than a
chapter's budget). Not a test: the numbers depend on the machine only through the CPU times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dropout_lib.regime import Arm, fit, mnist1d, noisy_digits, paired  # noqa: E402

HIDDEN, LR, EPOCHS, P = (64, 64), 1e-2, 40, 0.5


def candidate(name, regime, seeds, noise, p_input=0.0, data_seconds=0.0):
    arms = [Arm(seed=s, lr=LR, **kw) for s in seeds for kw in ({}, {"p": P, "p_input": p_input})]
    cpu = time.process_time()
    f = fit(regime, arms, HIDDEN, EPOCHS, eval_every=2)
    cpu = time.process_time() - cpu
    none, drop = f.select(p=0.0), f.select(p=P)
    gain = paired(f.final["test_err"][none], f.final["test_err"][drop], f.wrong_final[none], f.wrong_final[drop])
    loss = f.curves["test_loss"][:, none].mean(1)
    row = {
        "name": name,
        "noise": noise,  # the fraction of training and validation labels replaced (None: MNIST-1D)
        "p_input": p_input,
        "test_err_none": float(f.final["test_err"][none].mean()),
        "test_err_dropout": float(f.final["test_err"][drop].mean()),
        "gain": gain.mean, "gain_lo": gain.lo, "gain_hi": gain.hi, "gain_lo_both": gain.lo_both, "gain_hi_both": gain.hi_both,
        "gain_sd": gain.sd, "detectable": gain.detectable,
        "train_err_none": float(f.final["train_err"][none].mean()),
        "train_err_dropout": float(f.final["train_err"][drop].mean()),
        "test_loss_rise_none": float(loss[-1] - loss.min()),
        "test_err_none_seeds": [float(v) for v in f.final["test_err"][none]],
        "test_err_dropout_seeds": [float(v) for v in f.final["test_err"][drop]],
        "cpu_seconds_per_network": cpu / len(arms),
        "data_cpu_seconds": data_seconds,
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "book" / "data" / "pilot_regime.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    rows = [candidate("digits, clean labels", noisy_digits(0.0), seeds, 0.0)]
    for noise in (0.1, 0.2, 0.4):
        rows.append(candidate(f"digits, {noise:.0%} label noise", noisy_digits(noise), seeds, noise))
    rows.append(candidate("digits, 20% label noise, input dropout 0.2", noisy_digits(0.2), seeds, 0.2, p_input=0.2))
    cpu = time.process_time()
    data = mnist1d()
    rows.append(candidate("MNIST-1D", data, seeds, None, data_seconds=time.process_time() - cpu))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"hidden": list(HIDDEN), "lr": LR, "epochs": EPOCHS, "p": P, "seeds": args.seeds, "n_train": 300,
              "n_val": 300, "torch": torch.__version__, "numpy": np.__version__, "candidates": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
