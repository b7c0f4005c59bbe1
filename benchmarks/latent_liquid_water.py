"""Latent-charge against short-range model on periodic liquid water (LES benchmark data).

    python benchmarks/latent_liquid_water.py --epochs 40 --threads 2
    python benchmarks/latent_liquid_water.py --epochs 1 --n-train 4 --n-test 2   # quick check

Data: ../shared/data/lesfit_liquid_water_RPBE-D3.xyz (ChengUCB/les_fit; 50 frames of
192-atom liquid water in a 12.429 Å periodic cube, RPBE-D3 energies and forces in eV,
eV/Å), read through examples/specs/lesfit_liquid_water.yaml (``--data-dir`` points
elsewhere). Split (seed 0): ``--n-test`` frames for testing, ``--n-train`` for
training of which ``--n-valid`` for validation (early-stopping selection).
Variants: ``family: latent`` with its defaults and the same with ``long_range: false``;
same seed, epochs and loss (energy 1, forces 10; ``--train-set`` replaces any training
option, e.g. the package's force weight 100 and cosine schedule). The number of epochs
is limited by the time budget (a few minutes per training on 2 cores), so neither model
is trained to convergence. Reported: energy RMSE (meV/atom) and force RMSE (eV/Å) on the test
frames, and the mean latent charge per species. Writes
benchmarks/results/latent_liquid_water.json after every variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _options import LATENT_VARIANTS, common_arguments, key_values, shared_frames

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = LATENT_VARIANTS


def load(data_dir: Path):
    return shared_frames("lesfit_liquid_water", data_dir)


def scores(model, frames) -> dict:
    import torch

    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    e_err, f_err, charges, numbers = [], [], [], []
    with torch.enable_grad():
        for frame in frames:
            batch = collate([frame])
            out = evaluate(model, batch, forces=True)
            n = len(frame.atoms)
            e_err.append((float(out["energy"][0].detach()) - frame.labels["energy"]) / n)
            f_err.append(out["forces"].detach().numpy() - frame.labels["forces"])
            if "charges" in out:
                charges.append(out["charges"].detach().numpy())
                numbers.append(frame.atoms.numbers)
    row = {"energy_rmse_meV_per_atom": 1000 * float(np.sqrt(np.mean(np.square(e_err)))),
           "forces_rmse": float(np.sqrt(np.mean(np.concatenate(f_err) ** 2)))}
    if charges:
        q, z = np.concatenate(charges), np.concatenate(numbers)
        for num, name in ((8, "O"), (1, "H")):
            row[f"mean_charge_{name}"] = float(q[z == num].mean())
            row[f"std_charge_{name}"] = float(q[z == num].std())
    return row


def charge_scan(model_path: Path, frames, factors=(0.0, 1.0, 3.0, 10.0)) -> list[dict]:
    """Energy and force errors of a trained latent model with its charges multiplied by
    each factor (charge unit scaled; the short-range part unchanged): is the fit
    sensitive to the charges at all?"""
    from fieldforce.models import load_model

    model = load_model(model_path)
    unit = float(model.charge_unit)
    rows = []
    for factor in factors:
        model.charge_unit.fill_(unit * factor)
        rows.append({"factor": factor, **scores(model, frames)})
        print(f"charges x {factor:g}: force RMSE {rows[-1]['forces_rmse']:.4f} eV/Å, energy "
              f"RMSE {rows[-1]['energy_rmse_meV_per_atom']:.3f} meV/atom", flush=True)
    return rows


def main() -> None:
    import torch

    from fieldforce.data.splits import random_split
    from fieldforce.training import Trainer, load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser, epochs=40, work="/tmp/fieldforce_latent_liquid",
                     out="latent_liquid_water.json")
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-valid", type=int, default=5, help="taken from the training frames")
    parser.add_argument("--n-test", type=int, default=10)
    parser.add_argument("--scan-model", type=Path, default=None,
                        help="no training: scale this trained latent model's charges by "
                             "0, 1, 3, 10 and score 12 training frames (writes "
                             "latent_liquid_water_charge_scan.json)")
    args = parser.parse_args()
    options = key_values(args.set)
    torch.set_num_threads(args.threads)
    frames = load(args.data_dir)
    rest = len(frames) - args.n_train - args.n_test
    train, test, _ = random_split(frames, [args.n_train, args.n_test, rest], seed=args.seed)
    n_valid = min(args.n_valid, len(train) - 1)
    fit, valid = random_split(train, [len(train) - n_valid, n_valid], seed=args.seed + 1)
    print(f"{len(frames)} frames of {len(frames[0].atoms)} atoms: train {len(fit)}, "
          f"valid {len(valid)}, test {len(test)}", flush=True)
    if args.scan_model is not None:
        out = args.out.with_name("latent_liquid_water_charge_scan.json")
        out.write_text(json.dumps({
            "command": f"python benchmarks/latent_liquid_water.py --scan-model {args.scan_model}",
            "model": str(args.scan_model), "frames": "the first 12 training frames",
            "rows": charge_scan(args.scan_model, fit[:12])}, indent=1) + "\n")
        print(f"wrote {out}")
        return
    result = {"command": f"python benchmarks/latent_liquid_water.py --epochs {args.epochs} "
                         f"--threads {args.threads}"
                         + (f" --set {' '.join(args.set)}" if args.set else "")
                         + (f" --train-set {' '.join(args.train_set)}" if args.train_set
                            else ""),
              "model_options": options, "training_options": key_values(args.train_set),
              "epochs": args.epochs, "seed": args.seed, "threads": args.threads,
              "n_train": len(fit), "n_valid": len(valid), "n_test": len(test), "rows": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.variants:
        config = load_config({
            "data": {"train": str(args.data_dir / "lesfit_liquid_water_RPBE-D3.xyz")},
            "model": {**VARIANTS[name], **options},
            "training": {"seed": args.seed, "max_epochs": args.epochs, "patience": args.epochs,
                         "batch_size": 4, "loss_weights": {"energy": 1.0, "forces": 10.0},
                         **key_values(args.train_set)},
            "output": str(args.work / name)})
        t0 = time.perf_counter()
        trainer = Trainer(config, progress=False, data=(fit, valid, []))
        trainer.fit()
        seconds = time.perf_counter() - t0
        row = {"variant": name, "epochs": trainer.epoch, "seconds": seconds,
               "seconds_per_epoch": seconds / max(trainer.epoch, 1),
               **scores(trainer.model, test), "model": trainer.model.config}
        result["rows"].append(row)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{name}: {row['epochs']} epochs in {seconds:.0f} s", flush=True)
    print("| variant | epochs | s/epoch | energy RMSE meV/atom | force RMSE eV/Å "
          "| <q_O>, <q_H> e |")
    print("|---|---|---|---|---|---|")
    for r in result["rows"]:
        q = (f"{r['mean_charge_O']:+.3f}, {r['mean_charge_H']:+.3f}" if "mean_charge_O" in r
             else "–")
        print(f"| {r['variant']} | {r['epochs']} | {r['seconds_per_epoch']:.1f} | "
              f"{r['energy_rmse_meV_per_atom']:.3f} | {r['forces_rmse']:.4f} | {q} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
