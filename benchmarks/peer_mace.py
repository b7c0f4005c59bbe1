"""MACE as the peer of the backbone variants (issue 13): the same split, side by side.

    python -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.13.0 mace-torch
    python benchmarks/peer_mace.py --python /tmp/peers/bin/python --size small --epochs 200

MACE runs from its own package in its own environment (never vendored): this script
writes the split of ``backbone_variants.py`` (the shipped water clusters' zero-field
frames, 80/20, seed 0; 10 % of the training part for validation) as extxyz files, trains
with ``mace_run_train`` (float64, energies and forces, the given size), then evaluates
the test frames and times one energy + forces evaluation of 192-atom periodic water with
MACE's ASE calculator, all in the peer's interpreter. Results go to
``benchmarks/results/peer_mace.json`` (one entry per size). ``--dataset`` and
``--train-size`` select the same published set and training subset as
``backbone_variants.py`` (results in ``peer_mace_<dataset>.json``, entries ``size@nN``,
``@sS`` for a training seed other than 0; the
step cost is timed for water models only). Stopped, it resumes from MACE's last
checkpoint when rerun with the same arguments (``train_seconds`` is then the rerun's,
for the epochs after ``resumed_from_epoch``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from fieldforce.data.atomic import write_json

ROOT = Path(__file__).resolve().parent.parent
SIZES = {  # hidden irreps and interaction layers, as in the "small MACE"
    "small": {"hidden_irreps": "96x0e", "num_interactions": 2, "max_L": 0},
    "medium": {"hidden_irreps": "64x0e + 64x1o", "num_interactions": 2, "max_L": 1},
}
EVALUATE = """
import json, statistics, sys, time
import numpy as np, ase.io
from mace.calculators import MACECalculator
calc = MACECalculator(model_paths=sys.argv[1], device="cpu", default_dtype="float64")
test = ase.io.read(sys.argv[2], ":")
de, df = [], []
for atoms in test:
    ref_e, ref_f = atoms.info["REF_energy"], atoms.arrays["REF_forces"]
    atoms.calc = calc
    de.append((atoms.get_potential_energy() - ref_e) / len(atoms))
    df.append((atoms.get_forces() - ref_f).ravel())
times = [None]
if sys.argv[3] != "none":  # the step cost on 192-atom water (water models only)
    box = ase.io.read(sys.argv[3]).repeat((2, 2, 2))
    box.calc = calc
    box.get_forces()
    times = []
    for _ in range(5):
        box.positions[0, 0] += 1e-4
        start = time.perf_counter(); box.get_forces(); times.append(time.perf_counter() - start)
print(json.dumps({"energy_meV_per_atom": 1000 * float(np.sqrt(np.mean(np.square(de)))),
                  "forces_eV_per_A": float(np.sqrt(np.mean(np.square(np.concatenate(df))))),
                  "step_cost_192_s": None if times == [None] else statistics.median(times),
                  "n_test": len(test)}))
"""


def write_split(work: Path, dataset: str = "water", data_dir: Path | None = None,
                train_size: int | None = None) -> dict[str, Path]:
    import sys

    import ase.io

    sys.path.insert(0, str(Path(__file__).parent))
    from backbone_variants import splits

    paths = {}
    parts = splits(0, dataset, data_dir, train_size)
    for name, frames in zip(("train", "valid", "test"), parts, strict=True):
        images = []
        for f in frames:
            atoms = f.atoms.copy()
            atoms.info = {"REF_energy": float(f.labels["energy"])}
            atoms.arrays["REF_forces"] = f.labels["forces"]
            images.append(atoms)
        paths[name] = work / f"{name}.xyz"
        ase.io.write(paths[name], images, format="extxyz")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True, help="the peer environment's python")
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", default="water",
                        choices=("water", "liquid_water", "des370k_dimers", "batio3"))
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--train-size", type=int, default=None,
                        help="first N frames of the training part (a learning curve)")
    parser.add_argument("--r-max", type=float, default=4.0, help="MACE cutoff, Å")
    parser.add_argument("--seed", type=int, default=0,
                        help="MACE's training seed (initialisation, batch order); the "
                             "split stays backbone_variants' seed 0")
    # under benchmarks/runs (not ignored by git), so a run stopped at a session's end
    # survives into a fresh checkout with its checkpoints and resumes there
    parser.add_argument("--work", type=Path,
                        default=ROOT / "benchmarks" / "runs" / "peer_mace")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/peer_mace[_DATASET].json")
    args = parser.parse_args()
    suffix = "" if args.dataset == "water" else f"_{args.dataset}"
    args.out = args.out or ROOT / "benchmarks" / "results" / f"peer_mace{suffix}.json"
    key = (args.size + (f"@n{args.train_size}" if args.train_size else "")
           + (f"@s{args.seed}" if args.seed else ""))
    work = args.work / f"{args.dataset}_{key}"
    work.mkdir(parents=True, exist_ok=True)
    paths = write_split(work, args.dataset, args.data_dir, args.train_size)
    size = SIZES[args.size]
    env = {"OMP_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"}
    command = [args.python, "-m", "mace.cli.run_train", f"--name={args.dataset}_{args.size}",
               f"--train_file={paths['train']}", f"--valid_file={paths['valid']}",
               "--energy_key=REF_energy", "--forces_key=REF_forces", "--E0s=average",
               "--model=MACE", f"--hidden_irreps={size['hidden_irreps']}",
               f"--num_interactions={size['num_interactions']}", f"--max_L={size['max_L']}",
               f"--r_max={args.r_max}", "--batch_size=5", f"--max_num_epochs={args.epochs}",
               "--device=cpu", "--default_dtype=float64", f"--seed={args.seed}",
               "--forces_weight=100", "--energy_weight=1", "--restart_latest"]
    # a run stopped (a session's end) resumes from MACE's last checkpoint: this call's
    # training time then covers only the epochs after it, which the entry says
    done = [int(c.stem.rsplit("epoch-", 1)[1]) for c in work.glob("checkpoints/*_epoch-*.pt")]
    resumed = max(done, default=None)
    start = time.perf_counter()
    subprocess.run(command, cwd=work, env=env, check=True)
    seconds = time.perf_counter() - start
    model = work / f"{args.dataset}_{args.size}.model"
    evaluated = subprocess.run([args.python, "-c", EVALUATE, str(model), str(paths["test"]),
                                str(ROOT / "examples" / "water_box.xyz")
                                if args.dataset == "water" else "none"], cwd=work, env=env,
                               check=True, capture_output=True, text=True)
    row = {**json.loads(evaluated.stdout.strip().splitlines()[-1]), "size": size,
           "epochs": args.epochs, "train_seconds": seconds, "threads": args.threads,
           "resumed_from_epoch": resumed,
           "seconds_per_epoch": seconds / max(1, args.epochs - (resumed or 0)),
           "r_max": args.r_max, "dataset": args.dataset, "seed": args.seed,
           "n_train": sum(1 for line in paths["train"].read_text().splitlines()
                          if "Properties=" in line)}
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[key] = row
    write_json(results, args.out)
    print(f"MACE {args.size}: E {row['energy_meV_per_atom']:.3f} meV/atom, F "
          f"{row['forces_eV_per_A']:.4f} eV/Å, {seconds:.0f} s training, 192-atom step "
          f"{1000 * (row['step_cost_192_s'] or float('nan')):.0f} ms")


if __name__ == "__main__":
    main()
