"""Latent-charge against short-range model on periodic liquid water (LES benchmark data).

    python benchmarks/latent_liquid_water.py --epochs 40 --threads 2
    python benchmarks/latent_liquid_water.py --epochs 1 --n-train 4 --n-test 2   # quick check
    python benchmarks/latent_liquid_water.py --code les --python /tmp/cace/bin/python \
        --epochs 150 --seed 1 --threads 1          # the reference CACE-LES, same split

Data: ../shared/data/lesfit_liquid_water_RPBE-D3.xyz (ChengUCB/les_fit; 50 frames of
192-atom liquid water in a 12.429 Å periodic cube, RPBE-D3 energies and forces in eV,
eV/Å), read through examples/specs/lesfit_liquid_water.yaml (``--data-dir`` points
elsewhere). Split (``--split-seed``, 0): ``--n-test`` frames for testing, ``--n-train`` for
training of which ``--n-valid`` for validation (early-stopping selection); ``--seed``
is the training seed only, so seeds share the split.
Variants: ``family: latent`` with its defaults and the same with ``long_range: false``;
same seed, epochs and loss (energy 1, forces 10; ``--train-set`` replaces any training
option, e.g. the package's force weight 100 and cosine schedule). The number of epochs
is limited by the time budget (a few minutes per training on 2 cores), so neither model
is trained to convergence. Reported: energy RMSE (meV/atom) and force RMSE (eV/Å) on the test
frames, and the mean latent charge per species. Writes
benchmarks/results/latent_liquid_water.json after every variant.

``--code les`` trains the reference CACE-LES instead, from its own code in its own
environment (``peer_les.py``'s program and set-up: the authors' water fit, r 5.5 Å, no
message passing, one charge channel, Ewald weight 0.01, batch 2, force weight 1000, the
restarted StepLR cycles and energy-weight stages scaled to ``--epochs`` of the authors'
500) on the identical split, scored the same way; its charges in e from its own Coulomb
energy, the global sign chosen oxygen-negative (zero-field energies and forces leave it;
``sign_flipped`` says whether that flipped the raw charges). Rows keyed ``les@seedS@epochsN``
in benchmarks/results/latent_liquid_water_les.json (seeds may run side by side).
"""

from __future__ import annotations

import argparse
import fcntl
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
        row.update(charge_row(np.concatenate(charges), np.concatenate(numbers)))
    return row


def charge_row(q: np.ndarray, z: np.ndarray) -> dict:
    """Mean and spread of the charges per species (e)."""
    row = {}
    for num, name in ((8, "O"), (1, "H")):
        row[f"mean_charge_{name}"] = float(q[z == num].mean())
        row[f"std_charge_{name}"] = float(q[z == num].std())
    return row


def run_les(args, fit, valid, test) -> dict:
    """Train the reference CACE-LES on the split in the peer's interpreter and score it."""
    from peer_cace import write_extxyz
    from peer_les import peer_output, train_peer

    key = f"les@seed{args.seed}@epochs{args.epochs}"
    work = args.work / key
    work.mkdir(parents=True, exist_ok=True)
    paths = {name: work / f"{name}.xyz" for name in ("train", "valid", "test")}
    for name, frames in zip(("train", "valid", "test"), (fit, valid, test), strict=True):
        write_extxyz(paths[name], frames)
    start = time.perf_counter()
    train_peer(args.python, paths, work, args.epochs, args.cutoff, args.seed, args.threads,
               args.ewald_weight)
    meta, pred = peer_output(work)
    n_atoms = np.array([len(f.atoms) for f in test])
    energy = np.array([f.labels["energy"] for f in test])
    forces = np.concatenate([f.labels["forces"] for f in test])
    z = np.concatenate([f.atoms.numbers for f in test])
    sign = -1.0 if pred["charges"][z == 8].mean() > 0 else 1.0
    row = {"code": "CACE-LES", "seed": args.seed, "epochs_option": args.epochs,
           "cutoff": args.cutoff, "ewald_weight": args.ewald_weight, "threads": args.threads,
           "split_seed": args.split_seed, "n_train": len(fit), "n_valid": len(valid),
           "n_test": len(test), "dtype": "float32",
           "command": f"python benchmarks/latent_liquid_water.py --code les --python <peer "
                      f"python> --epochs {args.epochs} --seed {args.seed} --threads "
                      f"{args.threads}",
           **meta, "wall_seconds": time.perf_counter() - start,
           "energy_rmse_meV_per_atom": 1000 * float(np.sqrt(np.mean(
               ((pred["energy"] - energy) / n_atoms) ** 2))),
           "forces_rmse": float(np.sqrt(np.mean((pred["forces"] - forces) ** 2))),
           "sign_flipped": sign < 0, **charge_row(sign * pred["charges"], z)}
    out = args.out.with_name(args.out.stem + "_les.json")
    with open(args.work / "results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(out.read_text()) if out.exists() else {}
        results[key] = row
        out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"CACE-LES {key}: {row['steps']} steps in {row['train_seconds']:.0f} s; E "
          f"{row['energy_rmse_meV_per_atom']:.3f} meV/atom, F {row['forces_rmse']:.4f} eV/Å, "
          f"<q_O> {row['mean_charge_O']:+.3f}, <q_H> {row['mean_charge_H']:+.3f} e "
          f"(flipped: {row['sign_flipped']}); wrote {out}", flush=True)
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
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--code", choices=("fieldforce", "les"), default="fieldforce")
    parser.add_argument("--python", help="the peer environment's python (--code les)")
    parser.add_argument("--cutoff", type=float, default=5.5, help="CACE-LES cutoff, Å")
    parser.add_argument("--ewald-weight", type=float, default=0.01,
                        help="CACE-LES CombinePotential weight of the Ewald energy")
    parser.add_argument("--scan-model", type=Path, default=None,
                        help="no training: scale this trained latent model's charges by "
                             "0, 1, 3, 10 and score 12 training frames (writes "
                             "latent_liquid_water_charge_scan.json)")
    args = parser.parse_args()
    options = key_values(args.set)
    torch.set_num_threads(args.threads)
    frames = load(args.data_dir)
    rest = len(frames) - args.n_train - args.n_test
    train, test, _ = random_split(frames, [args.n_train, args.n_test, rest],
                                  seed=args.split_seed)
    n_valid = min(args.n_valid, len(train) - 1)
    fit, valid = random_split(train, [len(train) - n_valid, n_valid], seed=args.split_seed + 1)
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
    if args.code == "les":
        if not args.python:
            parser.error("--code les needs --python (the peer environment's interpreter)")
        run_les(args, fit, valid, test)
        return
    result = {"command": f"python benchmarks/latent_liquid_water.py --epochs {args.epochs} "
                         f"--threads {args.threads}"
                         + (f" --seed {args.seed}" if args.seed else "")
                         + (f" --set {' '.join(args.set)}" if args.set else "")
                         + (f" --train-set {' '.join(args.train_set)}" if args.train_set
                            else "")
                         + (f" --variants {' '.join(args.variants)}"
                            if args.variants != list(VARIANTS) else "")
                         + (f" --out {args.out.relative_to(ROOT)}"
                            if args.out.is_relative_to(ROOT) else f" --out {args.out}"),
              "model_options": options, "training_options": key_values(args.train_set),
              "epochs": args.epochs, "seed": args.seed, "split_seed": args.split_seed,
              "threads": args.threads,
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
