"""Learning curves of the response model on the SA-GPR water data (dipole, polarizability).

    python benchmarks/response_accuracy.py                 # 50, 100, 200, 500, 800 training
    python benchmarks/response_accuracy.py --sizes 50 200  # a subset
    python benchmarks/response_accuracy.py --data-dir ../shared/data
    python benchmarks/response_accuracy.py --head gpr      # the kernel heads (issue 15)

Data: ../shared/data/sagpr_water_monomer.xyz and sagpr_water_dimer.xyz (Grisafi et
al., PRL 120, 036002 (2018); 1000 structures each, atomic units, read through the
specs in examples/specs). For each dataset: 200 structures held out for testing
(seed 0), training sets of N structures drawn from the rest, 10 % of each
training set used for early stopping. The model is trained on dipoles and
polarizabilities only (no energies: the point is the response); with ``--head gpr``
the kernel heads (closed-form fit, noise by 5-fold cross-validation on the training
set, ``--sparse`` environments per species). Reported:
relative RMSE (RMSE / standard deviation of the test labels, components pooled)
per property. Writes benchmarks/results/response_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(dataset: str, data_dir: Path, sizes: list[int], epochs: int, out_dir: Path,
        cutoff: float, head: str = "neural", sparse: int = 200) -> list:
    import yaml

    from fieldforce.data.io import read_frames
    from fieldforce.data.spec import load_spec
    from fieldforce.data.splits import random_split
    from fieldforce.training import Trainer, load_config
    from fieldforce.training.evaluation import evaluate_frames

    spec = yaml.safe_load((ROOT / "examples" / "specs" / f"{dataset}.yaml").read_text())
    spec["path"] = str(data_dir / f"{dataset}.xyz")
    frames = read_frames(load_spec(spec))
    rest, test = random_split(frames, [len(frames) - 200, 200], seed=0)
    rows = []
    for n in sizes:
        train, _ = random_split(rest, [n, len(rest) - n], seed=1)
        fit, valid = random_split(train, [0.9, 0.1], seed=2)
        config = load_config({
            "data": {"train": "fieldforce:water", "valid_fraction": 0.1},
            "model": {"descriptor": {"cutoff": cutoff}} if head == "neural" else {
                "head": "gpr", "descriptor": {"cutoff": cutoff},
                "response_sparse_points": sparse, "sparse_points": 1},
            "training": {"seed": 0, "max_epochs": epochs, "patience": 40, "lr_patience": 10,
                         "batch_size": 16, "loss_weights": {"dipole": 1.0,
                                                            "polarizability": 1.0}},
            "output": str(out_dir / f"{dataset}_{n}")})
        t0 = time.perf_counter()
        # the kernel fit needs no early-stopping set: it gets the whole training set
        split = (fit, valid, []) if head == "neural" else (train, [], [])
        trainer = Trainer(config, progress=False, data=split)
        trainer.fit()
        table, _ = evaluate_frames(trainer.model, test)
        row = {"dataset": dataset, "cutoff": cutoff, "n_train": n, "head": head,
               **({"sparse_per_species": sparse} if head == "gpr" else {}),
               "seconds": time.perf_counter() - t0,
               "epochs": trainer.epoch,
               **{f"rrmse_{k}": v["rrmse"] for k, v in table.items() if "rrmse" in v},
               **{f"rmse_{k}": v["rmse"] for k, v in table.items() if "rmse" in v},
               **{f"calibration_{k}": v["calibration"] for k, v in table.items()
                  if "calibration" in v}}
        rows.append(row)
        print(f"{dataset:22s}{n:6d}{100 * row['rrmse_dipole']:10.2f} %"
              f"{100 * row['rrmse_polarizability']:10.2f} %{row['epochs']:8d}"
              f"{row['seconds']:9.0f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500, 800])
    parser.add_argument("--datasets", nargs="+",
                        default=["sagpr_water_monomer", "sagpr_water_dimer"])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--cutoff", type=float, default=4.0,
                        help="descriptor cutoff, Å (the model default is 4.0)")
    parser.add_argument("--head", choices=["neural", "gpr"], default="neural")
    parser.add_argument("--sparse", type=int, default=200,
                        help="--head gpr: sparse environments per species")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fieldforce_response_accuracy"))
    parser.add_argument("--out", type=Path, default=None,
                        help="default: results/response_accuracy.json (neural), "
                             "results/response_accuracy_gpr.json (gpr)")
    args = parser.parse_args()
    if args.out is None:
        suffix = "" if args.head == "neural" else f"_{args.head}"
        args.out = ROOT / "benchmarks" / "results" / f"response_accuracy{suffix}.json"
    print(f"{'dataset':22s}{'train':>6s}{'dipole':>12s}{'polariz.':>12s}{'epochs':>8s}"
          f"{'time':>11s}   (relative RMSE on 200 held-out)")
    rows = []
    for dataset in args.datasets:
        rows += run(dataset, args.data_dir, args.sizes, args.epochs, args.work, args.cutoff,
                    args.head, args.sparse)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
