"""Committees of trained seeds: how much their mean gains over one member, and whether
their spread tells where the errors are (issue 13).

    python benchmarks/committee.py --dataset water \
        --run "wd_scaling3_6_cutoff5+feature_scaling=global+weight_decay=0.03+max_steps=20000" \
        --seeds 0 1 2

``--run`` names a ``backbone_variants.py`` result (variant and its ``+key=value``
options); its seeds' models are read from ``runs/backbone_variants/<dataset>_<run>_s<seed>
_nNone/model.pt`` (train them first with ``backbone_variants.py --seed N``). On the same
test split as ``backbone_variants.py``: the force and energy RMSE of every member, and of
the committee of the first k seeds for k = 2..K (:class:`fieldforce.CommitteeModel`, the
members' mean); the committee's spreads calibrated on the validation part (the factor
spread -> error), then on the test part the fraction of errors within one and two
predicted standard deviations (0.683 / 0.954 if Gaussian and calibrated) and the rank
correlation of |error| with sigma (Spearman). ``--frames valid`` scores the validation
frames instead of the test split (entry ``<run>@valid``; the spread is still calibrated
on them, so its coverage there is in-sample and says nothing). Writes
``benchmarks/results/committee_<dataset>.json`` (one entry per run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    from backbone_variants import DATASETS, splits

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=list(DATASETS), default="water")
    parser.add_argument("--run", required=True, help="a backbone_variants.py result key "
                        "without its @seed suffix")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--frames", choices=("test", "valid"), default="test",
                        help="the frames scored: the test split or the validation frames")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "backbone_variants")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/committee_<dataset>.json")
    args = parser.parse_args()
    args.out = args.out or ROOT / "benchmarks" / "results" / f"committee_{args.dataset}.json"
    if len(args.seeds) < 2:
        raise SystemExit("--seeds: a committee needs two or more")
    import torch

    from fieldforce.data.atomic import write_json
    from fieldforce.models import CommitteeModel, load_model
    from fieldforce.training.evaluation import evaluate_frames

    torch.set_num_threads(args.threads)
    _, valid, test = splits(0, args.dataset, args.data_dir)
    scored = test if args.frames == "test" else valid
    paths = [args.work / f"{args.dataset}_{args.run}_s{seed}_nNone" / "model.pt"
             for seed in args.seeds]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"no trained model at {', '.join(missing)}: run backbone_variants.py "
                         "with that variant, options and --seed first")
    members = [load_model(p) for p in paths]

    def scores(model) -> dict:
        table, _ = evaluate_frames(model, scored)
        row = {"forces_eV_per_A": table["forces"]["rmse"],
               "energy_meV_per_atom": 1000 * table["energy"]["rmse"]}
        for name in ("forces", "energy"):
            if "calibration" in table[name]:
                row[f"{name}_calibration"] = table[name]["calibration"]
        return row

    result = {"dataset": args.dataset, "run": args.run, "seeds": args.seeds,
              "frames": args.frames, "n_valid": len(valid), "n_test": len(test),
              "members": {str(s): scores(m) for s, m in zip(args.seeds, members, strict=True)},
              "committees": {}}
    for k in range(2, len(members) + 1):
        committee = CommitteeModel.from_models(members[:k])
        factors = committee.calibrate(valid)
        result["committees"][str(k)] = {**scores(committee), "calibration_factors": factors}
    each = [row["forces_eV_per_A"] for row in result["members"].values()]
    result["member_mean_forces_eV_per_A"] = sum(each) / len(each)

    print(f"{args.dataset}: {args.run}, scored on the {args.frames} frames"
          + (" (spread coverage in-sample)" if args.frames == "valid" else ""))
    print("| model | forces eV/Å | energy meV/atom | forces within 1σ / 2σ, Spearman | "
          "spread factor (F) |")
    print("|---|---|---|---|---|")
    for seed, row in result["members"].items():
        print(f"| seed {seed} | {row['forces_eV_per_A']:.4f} | "
              f"{row['energy_meV_per_atom']:.2f} | | |")
    for k, row in result["committees"].items():
        cal = row.get("forces_calibration", {})
        print(f"| committee of {k} | {row['forces_eV_per_A']:.4f} | "
              f"{row['energy_meV_per_atom']:.2f} | {cal.get('within_1sigma', float('nan')):.2f}"
              f" / {cal.get('within_2sigma', float('nan')):.2f}, "
              f"{cal.get('spearman', float('nan')):.2f} | "
              f"{row['calibration_factors'].get('forces', float('nan')):.1f} |")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.run + ("" if args.frames == "test" else f"@{args.frames}")] = result
    write_json(results, args.out)


if __name__ == "__main__":
    main()
