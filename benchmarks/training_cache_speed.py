"""Training speed with and without the cache of fixed geometries (issue 13).

    python benchmarks/training_cache_speed.py --steps 300 --repeat 2 --threads 1

The training geometries never move, so featomic's density (with its position gradient)
and the interaction pairs are found once per frame (``Backbone.geometry_cache``) instead
of once per optimizer step. This script trains the same model from the same seed with the
cache and without it (the cache's memory budget set to 0), alternately (A B A B), and
reports seconds per optimizer step and the final validation loss of each (the two must
agree to rounding). Tasks: ``water`` (the latent backbone with the new defaults on the
shipped clusters' zero-field frames, as ``backbone_variants.py new``) and ``demo`` (the
response model on ``fieldforce:water``, dipoles and polarizabilities on, as ``fieldforce
demo`` trains it). Results: ``benchmarks/results/training_cache_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def task(name: str, steps: int, work: Path):
    from fieldforce.data.splits import random_split
    from fieldforce.datasets import load_water
    from fieldforce.training import load_config

    if name == "water":
        from backbone_variants import BASE_MODEL, BASE_TRAINING, NEW_TRAINING, merged, splits

        train, valid, _ = splits(0)
        model = merged(BASE_MODEL, {"interactions": 1})
        training = merged(BASE_TRAINING, NEW_TRAINING)
    else:
        frames = load_water()
        rest, _ = random_split(frames, [0.85, 0.15], seed=0)
        train, valid = random_split(rest, [0.9, 0.1], seed=1)
        model = {"family": "response"}
        training = {}
    config = load_config({"data": {"train": "unused.xyz"}, "output": str(work / name),
                          "model": model, "training": {**training, "max_steps": steps,
                                                       "seed": 0}})
    return config, train, valid


def run(name: str, steps: int, cached: bool, work: Path) -> dict:
    import shutil

    from fieldforce.models import backbone
    from fieldforce.training import Trainer

    config, train, valid = task(name, steps, work)
    shutil.rmtree(config["output"], ignore_errors=True)
    budget = backbone.GEOMETRY_CACHE_BYTES
    original = backbone.Backbone.geometry_cache
    if not cached:
        backbone.Backbone.geometry_cache = (
            lambda self, frames, budget_bytes=budget: original(self, frames, 0))
    try:
        start = time.perf_counter()
        trainer = Trainer(config, progress=False, data=(train, valid, []))
        setup = time.perf_counter() - start  # includes building the cache
        epochs = []
        run_epoch = trainer.run_epoch

        def timed_epoch():
            begin = time.perf_counter()
            value = run_epoch()
            epochs.append(time.perf_counter() - begin)
            return value

        trainer.run_epoch = timed_epoch
        result = trainer.fit()
        seconds = time.perf_counter() - start
    finally:
        backbone.Backbone.geometry_cache = original
    return {"seconds": seconds, "setup_seconds": setup, "steps": trainer.steps,
            "s_per_step": sum(epochs) / trainer.steps, "best_valid_loss": trainer.best,
            "valid_forces_rmse": result["valid"]["forces"]["rmse"],
            "cached_frames": len(trainer.cache or {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["water", "demo"],
                        choices=["water", "demo"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fieldforce_cache_speed"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    results = {}
    print("| task | s/step without cache | with cache | speed-up | best valid loss without | "
          "with |")
    print("|---|---|---|---|---|---|")
    for name in args.tasks:
        rows = {"cached": [], "uncached": []}
        for _ in range(args.repeat):
            for cached in (True, False):
                rows["cached" if cached else "uncached"].append(
                    run(name, args.steps, cached, args.work))
        a = statistics.median(r["s_per_step"] for r in rows["cached"])
        b = statistics.median(r["s_per_step"] for r in rows["uncached"])
        results[name] = {"runs": rows, "s_per_step_cached": a, "s_per_step_uncached": b,
                         "speedup": b / a, "threads": args.threads, "steps": args.steps}
        print(f"| {name} | {1000 * b:.1f} ms | {1000 * a:.1f} ms | {b / a:.2f}x | "
              f"{rows['uncached'][0]['best_valid_loss']:.8g} | "
              f"{rows['cached'][0]['best_valid_loss']:.8g} |", flush=True)
    out = HERE / "results" / "training_cache_speed.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
