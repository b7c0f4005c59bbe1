"""The kernel heads (``head: gpr``) against the neural response model: errors on the shipped
water data at equal training data, fit times, calibration, and the cost of an MD step.

    fieldforce train examples/train_water_gpr.yaml   # -> runs/water_gpr/model.pt (kernel)
    python benchmarks/kernel_heads.py [--gpr runs/water_gpr/model.pt] [--neural runs/water/model.pt]

Both models on the same split of the shipped set (seed 0: 474 training, 53 validation,
93 test frames): the kernel model's run's metrics.json (test RMSEs, the calibration of
its uncertainties on the test frames, scaled on the validation frames, its fit time);
the neural default's test RMSEs and training time from ``--neural``'s metrics.json if
that run exists, else from benchmarks/results/default_candidates.json (the same
defaults, split and seed, measured for issue 13). Measured here in one run: seconds per
energy + forces + dipole evaluation in a 0.1 V/Å field for periodic water boxes of 24
and 192 atoms (the MD step), best of ``--repeat``, one thread, kernel / neural ratio
(the neural model untrained if no run exists: its cost does not depend on the weights).
Writes benchmarks/results/kernel_heads.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def step_seconds(model, atoms, repeat: int) -> float:
    import torch

    from fieldforce.data.batch import batch_from_atoms
    from fieldforce.models import evaluate

    batch = batch_from_atoms(atoms)
    field = torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)
    evaluate(model, batch, field=field)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        evaluate(model, batch, field=field)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    import torch

    from fieldforce.models import build_model, load_model
    from response_speed import water_box

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neural", type=Path, default=ROOT / "runs" / "water" / "model.pt")
    parser.add_argument("--gpr", type=Path, default=ROOT / "runs" / "water_gpr" / "model.pt")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "kernel_heads.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result: dict = {"models": {}}
    for name, path in (("neural", args.neural), ("gpr", args.gpr)):
        if name == "neural" and not path.exists():
            stored = json.loads((ROOT / "benchmarks" / "results" /
                                 "default_candidates.json").read_text())["new_dipole100"]
            result["models"][name] = {
                "model": "benchmarks/results/default_candidates.json new_dipole100",
                "seconds": stored["train_seconds"], "n_train": 474,
                "test": {k: {"rmse": v} for k, v in stored["test"].items()}}
            continue
        metrics = json.loads((path.parent / "metrics.json").read_text())
        result["models"][name] = {
            "model": str(path), "seconds": metrics["seconds"], "n_train": metrics["n_train"],
            "test": {k: {"rmse": v["rmse"], **({"calibration": v["calibration"]}
                                              if "calibration" in v else {})}
                     for k, v in metrics["test"].items() if "rmse" in v},
            "fit": metrics.get("fit", {}).get("uncertainty_scales_from_validation")}
    models = {"neural": load_model(args.neural) if args.neural.exists()
              else build_model({"species": [1, 8]}), "gpr": load_model(args.gpr)}
    result["step_seconds"] = {}
    for n_mol in (8, 64):
        atoms = water_box(n_mol)
        times = {name: step_seconds(m, atoms, args.repeat) for name, m in models.items()}
        result["step_seconds"][len(atoms)] = {**times, "gpr_over_neural":
                                              times["gpr"] / times["neural"]}
    print(f"{'':16s}{'neural':>12s}{'gpr':>12s}")
    for prop in ("energy", "forces", "dipole", "polarizability"):
        row = [result["models"][n]["test"].get(prop, {}).get("rmse", float("nan"))
               for n in ("neural", "gpr")]
        print(f"{prop + ' RMSE':16s}{row[0]:12.4g}{row[1]:12.4g}")
    print(f"{'fit seconds':16s}{result['models']['neural']['seconds']:12.0f}"
          f"{result['models']['gpr']['seconds']:12.0f}")
    for n, t in result["step_seconds"].items():
        print(f"{'step ' + str(n) + ' atoms':16s}{t['neural']:12.4f}{t['gpr']:12.4f}"
              f"   gpr/neural {t['gpr_over_neural']:.2f}")
    for prop, v in result["models"]["gpr"]["test"].items():
        c = v.get("calibration")
        if c:
            print(f"calibration {prop}: {c['within_1sigma']:.3f} within 1 sigma, "
                  f"{c['within_2sigma']:.3f} within 2, Spearman {c['spearman']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
