"""Where the demo task's energy errors lie: per cluster size, with and without a field.

    python benchmarks/default_candidates.py --candidates new_dipole100_wd0.1 wd0.1_scaling3_6
    python benchmarks/demo_energy_errors.py new_dipole100_wd0.1 wd0.1_scaling3_6 [--seed 1]

Reads the models ``default_candidates.py`` trained (``runs/default_candidates/NAME[@seedS]``)
and scores them on the same held-out frames (``fieldforce:water``, 10 % validation, 15 %
test, the split drawn by ``--seed``), grouped by the number of molecules and by whether
the frame is in a field. Per group: the energy RMSE and the mean error (meV/atom), so that
an error that is a constant offset (RMSE = |mean|) is told apart from scatter, and the
frames with the largest errors. Nothing is trained here. Rows are added to
``benchmarks/results/demo_energy_errors.json``, keyed ``NAME[@seedS]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from default_candidates import demo_test_frames

ROOT = Path(__file__).resolve().parent.parent


def energy_errors(model, frames) -> np.ndarray:
    """(n_frames,) predicted minus DFT energy per atom, meV (the field each frame holds)."""
    import torch

    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    errors = []
    with torch.enable_grad():
        for frame in frames:
            out = evaluate(model, collate([frame]), forces=False)
            errors.append((float(out["energy"][0].detach()) - frame.labels["energy"])
                          / len(frame.atoms))
    return 1000 * np.array(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="default_candidates.py candidate names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "default_candidates")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "demo_energy_errors.json")
    args = parser.parse_args()
    import torch

    from fieldforce.data.atomic import write_json
    from fieldforce.models import load_model

    torch.set_num_threads(1)
    test = demo_test_frames(args.seed)
    molecules = np.array([len(f.atoms) // 3 for f in test])
    in_field = np.array([bool(np.any(np.asarray(f.labels.get("efield", 0.0)) != 0))
                         for f in test])
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    print(f"{len(test)} test frames (seed {args.seed}); energy error per group, meV/atom: "
          "RMSE (mean)")
    for name in args.names:
        key = name + (f"@seed{args.seed}" if args.seed else "")
        errors = energy_errors(load_model(args.work / key / "model.pt"), test)
        groups = {}
        for n in sorted(set(molecules)):
            for field in (False, True):
                pick = (molecules == n) & (in_field == field)
                if pick.any():
                    groups[f"{n}_molecules{'_field' if field else ''}"] = {
                        "frames": int(pick.sum()),
                        "rmse": float(np.sqrt(np.mean(errors[pick] ** 2))),
                        "mean": float(errors[pick].mean())}
        worst = np.argsort(-np.abs(errors))[:5]
        results[key] = {"seed": args.seed, "rmse": float(np.sqrt(np.mean(errors ** 2))),
                        "groups": groups,
                        "worst": [{"test_index": int(i), "molecules": int(molecules[i]),
                                   "field": bool(in_field[i]), "error": float(errors[i])}
                                  for i in worst]}
        print(f"{key}: all {results[key]['rmse']:.3f}; " + "; ".join(
            f"{g} ({v['frames']}) {v['rmse']:.3f} ({v['mean']:+.3f})" for g, v in groups.items()))
    print(f"wrote {write_json(results, args.out)}")


if __name__ == "__main__":
    main()
