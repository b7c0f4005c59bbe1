"""On-the-fly learning against random selection: a water trimer in a 0.1 V/Å field.

    python benchmarks/on_the_fly.py [--steps 4000] [--max-calls 40] [--threshold 0.4]
                                    [--aimd-steps 1600] [--work DIR]

DFT: PySCF HF/6-31G (cheap on purpose: ~1-2 s per trimer with forces and dipole, ~3 s
with its polarizability, on one shared core). Model: the response model with kernel heads
(``head: gpr``, 200/100 sparse environments per species).

1. Reference: DFT molecular dynamics (the same DFT as the labels, independent of every
   model): Langevin 300 K, 0.5 fs, ``--aimd-steps`` from examples/water_trimer.xyz, a
   frame every 10 steps (energy, forces, dipole). Random pool: the frames of its first
   half; test set: 20 frames evenly spread over the last 40 % (the gap decorrelates them
   from the pool).
2. ``fieldforce learn`` from 4 rattled copies of the start: Langevin MD at 300 K, 0.5 fs,
   ``--steps``, checked every 20 steps; DFT when the largest force uncertainty
   (calibrated on line) passes ``--threshold`` eV/Å (0: 3x its median on the training
   frames); at most ``--max-calls``.
3. Random selection (the standard comparison): as many pool frames as on-the-fly
   learning labelled in total, drawn at random.
4. Learning curves: the kernel model refitted (energies, forces, dipoles: the labels
   both sets have) on the first n frames of each set (the on-the-fly order; a random
   order of the random pool), force and dipole RMSE on the test set; the DFT calls
   on-the-fly learning needs to reach the errors random selection reaches with all its
   frames. Cost: DFT, fit and MD seconds of the learning run.

Prints a table; writes benchmarks/results/on_the_fly.json. Resumable in parts: the DFT MD
and the learn run resume, labelled sets are kept in ``--work``.
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


def dft_md(path: Path, steps: int, backend, seed: int = 3, every: int = 10):
    """Frames (energy, forces, dipole at the field) of DFT Langevin MD at 300 K, a frame
    every ``every`` steps, appended to ``path`` as it runs (resumes from its last frame)."""
    import ase.io
    from ase import units
    from ase.calculators.calculator import Calculator, all_changes
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from fieldforce.data.frame import Frame

    class DFT(Calculator):
        implemented_properties = ["energy", "forces", "dipole"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            labels = backend.label(self.atoms, np.array(FIELD), ["energy", "forces",
                                                                 "dipole"])
            self.results = {k: np.asarray(labels[k]) for k in ("energy", "forces",
                                                                "dipole")}

    done = ase.io.read(path, ":") if path.exists() else []
    if done:
        atoms = done[-1].copy()
        step = int(atoms.info["step"])
    else:
        atoms = ase.io.read(ROOT / "examples" / "water_trimer.xyz")
        MaxwellBoltzmannDistribution(atoms, temperature_K=300,
                                     rng=np.random.default_rng(seed))
        step = 0
    atoms.calc = DFT()
    while step < steps:
        dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.01,
                       rng=np.random.default_rng([seed, step]))
        dyn.run(every)
        step += every
        atoms.info = {"step": step}
        ase.io.write(path, atoms, format="extxyz", append=True)
        if step % 200 == 0:
            print(f"DFT MD: step {step}/{steps}", flush=True)
    frames = []
    for a in ase.io.read(path, ":"):
        labels = {"energy": np.asarray(a.get_potential_energy()),
                  "forces": a.get_forces(), "dipole": np.asarray(a.calc.results["dipole"]),
                  "efield": np.array(FIELD)}
        atoms = a.copy()
        atoms.calc = None
        frames.append(Frame(atoms, labels))
    return frames


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
    """Test RMSEs of the kernel model fitted on ``frames`` (energies, forces, dipoles)."""
    from fieldforce.models import build_model
    from fieldforce.training.evaluation import evaluate_frames

    model = build_model({**MODEL, "species": [1, 8]})
    model.fit(frames, {"energy": 1, "forces": 1, "dipole": 1})
    table, _ = evaluate_frames(model.eval(), test)
    return {k: table[k]["rmse"] for k in ("energy", "forces", "dipole")}


def main() -> None:
    from fieldforce.pipelines.learn import learn
    from fieldforce.reference.backend import get_backend

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--max-calls", type=int, default=40)
    parser.add_argument("--threshold", type=float, default=0.4,
                        help="absolute threshold on the (on-line calibrated) largest force "
                             "uncertainty, eV/Å; 0: 3x the training median instead")
    parser.add_argument("--aimd-steps", type=int, default=1600,
                        help="steps of the DFT MD that gives the test set and random pool")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fieldforce_on_the_fly"))
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "on_the_fly.json")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    backend = get_backend(LABEL["backend"], **LABEL["settings"])
    reference = dft_md(work / "dft_md.xyz", args.aimd_steps, backend)
    half, tail = len(reference) // 2, int(0.6 * len(reference))
    pool = [f for f in reference[:half] if physical(f.atoms)]
    late = reference[tail:]
    test = late[::max(len(late) // 20, 1)][:20]
    dft_md_seconds = time.perf_counter() - start
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
    if len(otf) > len(pool):
        raise SystemExit(f"the random pool has {len(pool)} frames, fewer than the "
                         f"{len(otf)} on-the-fly frames: raise --aimd-steps")
    rng = np.random.default_rng(0)
    random_frames = [pool[i] for i in rng.choice(len(pool), size=len(otf), replace=False)]
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
              "calls": state["calls"], "curve": curve,
              "reference": {"dft_md_steps": args.aimd_steps, "pool_frames": len(pool),
                            "test_frames": len(test),
                            "test_steps": [int(f.atoms.info["step"]) for f in test],
                            "seconds_this_call": dft_md_seconds},
              "frames_to_reach_random_full": needed,
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
