"""On-the-fly learning against random selection: a water trimer in a 0.1 V/Å field.

    python benchmarks/on_the_fly.py [--steps 4000] [--max-calls 40] [--work DIR]

DFT: PySCF HF/6-31G (cheap on purpose: ~2 s per trimer with its polarizability on one
core), energies, forces, dipoles and polarizabilities. Model: the response model with
kernel heads (``head: gpr``, 200/100 sparse environments per species).

1. ``fieldforce learn`` from 4 rattled copies of examples/water_trimer.xyz: Langevin MD at
   300 K, 0.5 fs, ``--steps``, checked every 20 steps; DFT when the largest force
   uncertainty (calibrated on line) passes ``--threshold`` eV/Å (0: 3x its median on the
   training frames); at most ``--max-calls``.
2. Reference MD: an independent run with the final model (other seed) as long as the
   part of the run the learning covered, a frame every 10 steps (frames with atoms closer
   than 0.8 Å dropped: the first versions ran longer or with a third seed, where the final
   model let atoms meet, and DFT labelled the wreck). Test set: 20 frames evenly spread
   over it, labelled with DFT.
3. Random selection: from the other frames of the reference run, as many as on-the-fly
   learning labelled in total, drawn at random and labelled (frames of the same run as
   the test set: a bias in favour of random selection).
4. Learning curves: the kernel model refitted on the first n frames of each set (the
   on-the-fly order; a random order of the random pool), force and dipole RMSE on the test
   set; the DFT calls on-the-fly learning needs to reach the errors random selection
   reaches with all its frames.

Prints a table; writes benchmarks/results/on_the_fly.json. Resumable in parts: the learn
run resumes, labelled sets are kept in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIELD = [0.0, 0.0, 0.1]
LABEL = {"backend": "pyscf", "settings": {"xc": "HF", "basis": "6-31g",
                                          "density_fit": False, "threads": 1}}
MODEL = {"family": "response", "head": "gpr", "sparse_points": 200,
         "response_sparse_points": 100}


def physical(atoms, shortest: float = 0.8) -> bool:
    """No two atoms closer than ``shortest`` Å (an MD run of a model can leave the
    physical region beyond the part of it the learning covered)."""
    d = atoms.get_all_distances()
    return bool(d[np.triu_indices(len(atoms), 1)].min() >= shortest)


def md_frames(model: Path, out: Path, steps: int, seed: int, every: int):
    """Physical frames of an MD run with ``model`` (Langevin 300 K in the field) every
    ``every`` steps."""
    import ase.io

    from fieldforce.simulation.md import run_md

    trajectory = out / "trajectory.xyz"
    if not trajectory.exists():
        run_md({"structure": str(ROOT / "examples" / "water_trimer.xyz"), "model": str(model),
                "output": str(out), "ensemble": "langevin", "temperature_K": 300,
                "timestep_fs": 0.5, "steps": steps, "write_interval": every, "seed": seed,
                "field": {"type": "static", "vector": FIELD}}, progress=False)
    return [a for a in ase.io.read(trajectory, ":")[1:] if physical(a)]


def labelled(atoms_list, path: Path, backend):
    """DFT labels of ``atoms_list`` at the field, kept in ``path`` (resumable)."""
    from fieldforce.data.frame import Frame
    from fieldforce.data.io import read_frames, write_frames

    frames = read_frames(path) if path.exists() else []
    for atoms in atoms_list[len(frames):]:
        atoms = atoms.copy()
        atoms.calc = None
        for key in list(atoms.arrays):
            if key not in ("numbers", "positions"):
                del atoms.arrays[key]
        atoms.info.clear()
        labels = dict(backend.label(atoms, np.array(FIELD), ["energy", "forces", "dipole",
                                                             "polarizability"]))
        labels.pop("info", None)
        labels["efield"] = np.array(FIELD)
        frames.append(Frame(atoms, labels))
        write_frames(frames, path)
    return frames


def errors(frames, test) -> dict:
    from fieldforce.models import build_model
    from fieldforce.training.evaluation import evaluate_frames

    model = build_model({**MODEL, "species": [1, 8]})
    model.fit(frames, {"energy": 1, "forces": 1, "dipole": 1, "polarizability": 1})
    table, _ = evaluate_frames(model.eval(), test)
    return {k: table[k]["rmse"] for k in ("energy", "forces", "dipole", "polarizability")}


def main() -> None:
    from fieldforce.pipelines.learn import learn
    from fieldforce.reference.backend import get_backend

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--max-calls", type=int, default=40)
    parser.add_argument("--threshold", type=float, default=0.1,
                        help="absolute threshold on the (on-line calibrated) largest force "
                             "uncertainty, eV/Å; 0: 3x the training median instead")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fieldforce_on_the_fly"))
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "on_the_fly.json")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    config = {"structure": str(ROOT / "examples" / "water_trimer.xyz"),
              "output": str(work / "learn"), "initial_frames": 4, "rattle_A": 0.05,
              "model": MODEL, "label": LABEL,
              "md": {"ensemble": "langevin", "temperature_K": 300, "timestep_fs": 0.5,
                     "steps": args.steps, "write_interval": 20, "seed": 1,
                     "field": {"type": "static", "vector": FIELD}},
              **({"threshold": args.threshold} if args.threshold > 0 else
                 {"threshold_relative": 3.0}), "check_interval": 20,
              "max_dft_calls": args.max_calls}
    state = learn(config, resume=(work / "learn" / "learn.json").exists(), progress=True)
    from fieldforce.data.io import read_frames

    otf = read_frames(work / "learn" / "data.xyz")
    backend = get_backend(LABEL["backend"], **LABEL["settings"])
    model = work / "learn" / "model.pt"
    # the test and pool runs are as long as the part of the run the learning covered (a
    # budget spent early leaves the rest unchecked)
    covered = max(state["steps"], 200)
    frames_md = md_frames(model, work / "reference_md", covered, seed=7, every=10)
    spacing = max(len(frames_md) // 20, 1)
    test = labelled(frames_md[::spacing][:20], work / "test.xyz", backend)
    pool_md = [a for i, a in enumerate(frames_md) if i % spacing]
    rng = np.random.default_rng(0)
    chosen = [pool_md[i] for i in rng.choice(len(pool_md), size=len(otf), replace=False)]
    random_frames = labelled(chosen, work / "random.xyz", backend)
    sizes = sorted({min(n, len(otf)) for n in (4, 6, 8, 12, 16, 24, 32, 44, len(otf))})
    curve = {"on_the_fly": {n: errors(otf[:n], test) for n in sizes},
             "random": {n: errors(random_frames[:n], test) for n in sizes}}
    full = curve["random"][len(otf)]
    needed = {}
    for prop in ("forces", "dipole"):
        hits = [n for n in sizes if curve["on_the_fly"][n][prop] <= full[prop]]
        needed[prop] = hits[0] if hits else None
    result = {"dft": "PySCF HF/6-31G", "field_V_per_A": FIELD, "md_steps": args.steps,
              "threshold": config.get("threshold"),
              "threshold_relative": config.get("threshold_relative"),
              "learn": {k: state[k] for k in ("dft_calls", "frames", "steps", "ended_by",
                                              "seconds")},
              "calls": state["calls"], "curve": curve, "test_and_pool_steps": covered,
              "frames_to_reach_random_full": needed, "test_frames": len(test),
              "wall_seconds": time.perf_counter() - start}
    print(f"{'frames':>7s} {'F otf':>9s} {'F random':>9s} {'mu otf':>9s} {'mu random':>9s}")
    for n in sizes:
        a, b = curve["on_the_fly"][n], curve["random"][n]
        print(f"{n:7d} {a['forces']:9.4f} {b['forces']:9.4f} {a['dipole']:9.5f} "
              f"{b['dipole']:9.5f}")
    print(f"on-the-fly frames to reach random selection's errors with {len(otf)} frames: "
          f"{needed}")
    print(f"learn: {state['dft_calls']} DFT calls ({state['ended_by']}); seconds "
          f"{state['seconds']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
