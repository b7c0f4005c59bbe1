"""Which weights to keep at the end of a cosine run: the best-validation snapshot or the last.

    python benchmarks/kept_weights.py runs/backbone_variants/water_new_wd0.1_s0_nNone ...

Reads finished training folders (``checkpoint.pt`` holds both the best-validation state
and the final one, and the validation history) of ``backbone_variants.py`` (its split:
``water``, ``batio3`` or ``des370k_dimers`` from the folder's name; ``latent_born_dimers.py``'s
folders: the DES370K split) or ``default_candidates.py`` (the
demo's split; ``@seed1`` in the name: seed 1), or with ``--split liquid_water`` of
``latent_liquid_water.py`` and scores both states on the test frames:
energy RMSE and mean error (meV/atom), force RMSE (eV/Å), with the ratio of the last
validation loss to the best, and the state the trainer's ``keep: auto`` rule picks
(:func:`fieldforce.training.schedule.kept_state`). Nothing is trained. Rows are added to
``benchmarks/results/kept_weights.json``, keyed by folder name.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))


def test_frames(folder: Path, split: str):
    """The test frames of the run in ``folder`` (``split`` auto: from its benchmark's
    naming)."""
    if split == "liquid_water":  # latent_liquid_water.py's split (split seed 0)
        from fieldforce.data.splits import random_split
        from latent_liquid_water import load

        frames = load(ROOT.parent / "shared" / "data")
        return random_split(frames, [40, 10, len(frames) - 50], seed=0)[1]
    if "default_candidates" in str(folder):
        from default_candidates import demo_test_frames

        return demo_test_frames(int(folder.name.split("@seed")[1]) if "@seed" in folder.name
                                else 0)
    from backbone_variants import splits

    # latent_born_dimers.py trains on backbone_variants' DES370K split too
    dataset = ("des370k_dimers" if "des370k" in folder.name or "born_dimers" in str(folder)
               else "batio3" if folder.name.startswith("batio3_") else "water")
    return splits(0, dataset)[2]


def errors(model, frames) -> dict:
    import torch

    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    energy, forces = [], []
    with torch.enable_grad():
        for frame in frames:
            out = evaluate(model, collate([frame]), forces=True)
            energy.append((float(out["energy"][0].detach()) - frame.labels["energy"])
                          / len(frame.atoms))
            forces.append(out["forces"].detach().numpy() - frame.labels["forces"])
    energy = 1000 * np.array(energy)
    return {"energy_rmse": float(np.sqrt(np.mean(energy ** 2))),
            "energy_mean": float(energy.mean()),
            "forces_rmse": float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--split", choices=("auto", "liquid_water"), default="auto",
                        help="liquid_water: the folders are latent_liquid_water.py runs")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "kept_weights.json")
    args = parser.parse_args()
    import torch

    from fieldforce.data.atomic import write_json
    from fieldforce.models import load_model
    from fieldforce.training.schedule import kept_state

    torch.set_num_threads(1)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    print("| run | valid last/best | best: E (mean), F | last: E (mean), F | auto keeps |")
    print("|---|---|---|---|---|")
    for folder in args.folders:
        checkpoint = torch.load(folder / "checkpoint.pt", weights_only=False,
                                map_location="cpu")
        history = checkpoint["history"]
        last_loss = history[-1]["valid_loss"]
        best_loss = min(h["valid_loss"] for h in history)
        model = load_model(folder / "model.pt")
        frames = test_frames(folder, args.split)
        row = {"epochs": len(history), "steps": checkpoint["steps"],
               "best_epoch": 1 + int(np.argmin([h["valid_loss"] for h in history])),
               "valid_ratio": last_loss / best_loss,
               "auto": kept_state("auto", "cosine", "max_steps", best_loss, last_loss)}
        last = dict(checkpoint["model"])
        if checkpoint.get("ema"):
            last.update(checkpoint["ema"])
        for name, state in (("best", checkpoint["best_state"]), ("last", last)):
            model.load_state_dict(state)
            row[name] = errors(model, frames)
        key = folder.name if args.split == "auto" else f"{args.split}:{folder}"
        results[key] = row
        b, la = row["best"], row["last"]
        print(f"| {key} | {row['valid_ratio']:.3f} | {b['energy_rmse']:.3f} "
              f"({b['energy_mean']:+.3f}), {b['forces_rmse']:.4f} | {la['energy_rmse']:.3f} "
              f"({la['energy_mean']:+.3f}), {la['forces_rmse']:.4f} | {row['auto']} |",
              flush=True)
    print(f"wrote {write_json(results, args.out)}")


if __name__ == "__main__":
    main()
