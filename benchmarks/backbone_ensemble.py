"""Does averaging independently trained models close the generalisation gap? (issue 13)

    python benchmarks/backbone_variants.py --variants new_wd0.1 [--seed 1 | --seed 2]
    python benchmarks/backbone_ensemble.py --variant new_wd0.1 --seeds 0 1 2

Loads the models that ``backbone_variants.py`` trained for one variant on the shipped
water clusters (same split, different initial weights and batch orders: ``--seeds``),
and scores every member and the mean prediction of every subset of two or more on the
same test frames (energies per atom, forces; ``--frames valid`` or ``held_out`` scores
the validation frames, or both sets together, instead). If the members' errors were independent
the mean of three would be ~1/sqrt(3) of a member's; if they are shared (the model
class interpolates the same way whatever the seed), averaging gains little. Writes
``benchmarks/results/backbone_ensemble.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="new_wd0.1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", choices=("test", "valid", "held_out"), default="test",
                        help="the frames scored: the test split, the validation frames, "
                             "or both together (rows keyed VARIANT@valid, VARIANT@held_out)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "backbone_variants")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "backbone_ensemble.json")
    args = parser.parse_args()
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from backbone_variants import splits
    from fieldforce.data.atomic import write_json
    from fieldforce.models import load_model
    from fieldforce.training.evaluation import predict

    torch.set_num_threads(1)
    _, valid, test = splits(0)
    scored = {"test": test, "valid": valid, "held_out": valid + test}[args.frames]
    members = {}
    for seed in args.seeds:
        path = args.work / f"water_{args.variant}_s{seed}_nNone" / "model.pt"
        if not path.exists():
            raise SystemExit(f"{path}: not trained; run benchmarks/backbone_variants.py "
                             f"--variants {args.variant} --seed {seed} first")
        members[seed] = predict(load_model(path), scored)
    reference = members[args.seeds[0]]

    def errors(energy: np.ndarray, forces: np.ndarray) -> dict:
        e = energy - reference["energy"]["ref"]  # predict() scores energies per atom
        return {"energy_meV_per_atom": 1000 * float(np.sqrt(np.mean(e ** 2))),
                "forces_eV_per_A": float(np.sqrt(np.mean(
                    (forces - reference["forces"]["ref"]) ** 2)))}

    rows = {}
    for size in range(1, len(args.seeds) + 1):
        for subset in itertools.combinations(args.seeds, size):
            energy = np.mean([members[s]["energy"]["pred"] for s in subset], axis=0)
            forces = np.mean([members[s]["forces"]["pred"] for s in subset], axis=0)
            rows["+".join(map(str, subset))] = {"seeds": list(subset), **errors(energy, forces)}
    print(f"| {args.variant}: seeds averaged | energy meV/atom | forces eV/Å |")
    print("|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['energy_meV_per_atom']:.3f} | {row['forces_eV_per_A']:.4f} |")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    key = args.variant + ("" if args.frames == "test" else f"@{args.frames}")
    results[key] = {"command": f"python benchmarks/backbone_ensemble.py --variant "
                               f"{args.variant} --seeds " + " ".join(map(str, args.seeds))
                               + ("" if args.frames == "test" else f" --frames {args.frames}"),
                    "frames": args.frames, "n_test": len(scored), "rows": rows}
    write_json(results, args.out)


if __name__ == "__main__":
    main()
