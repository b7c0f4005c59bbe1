"""Long-run stability: NVE MD in a field for up to 1 ns, resumable, in pieces.

    python benchmarks/long_run_stability.py --system cluster --max-hours 2   # repeat to go on

``cluster``: the water trimer of the shipped data with the demo's response model
(``runs/demo/training/model.pt``, from ``make demo``), NVE in a static 0.05 V/Å field.
``periodic``: 8 water molecules in a periodic box (``examples/water_box.xyz``) with the
latent-charge model of ``examples/train_liquid_water_latent.yaml`` (trained on periodic
liquid water; ``--model`` for another), NVE in the same field after ``--equilibrate-ps``
(5) ps of Bussi NVT at 300 K from the shipped grid-like start. (The cluster-trained
``examples/train_water_latent.yaml`` model extrapolated in bulk water from the first step
and let two atoms meet after 0.5 ps:
``benchmarks/runs/long_run_stability_periodic_cluster_model``.) Each call continues the
run (``fieldforce md --resume``) for at most
``--max-hours`` and then reports, over everything simulated so far: the energy drift per
atom per ps (a linear fit of Epot + Ekin, and the largest excursion), the molecular
integrity (every H within 1.3 Å of exactly one O, every O-H in 0.75-1.3 Å, no O-O closer
than 2.2 Å; in the frames, one per ps), the simulated time, the wall time and the rate.
The table is printed and written to ``benchmarks/results/long_run_stability_<system>.json``;
the run itself lives in ``benchmarks/runs/long_run_stability/`` (tracked, so a later
session continues it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def integrity(frames) -> dict:
    """Water integrity over the frames: fractions of frames with every molecule intact."""
    broken, worst_oh, closest_oo = 0, 0.0, np.inf
    for atoms in frames:
        d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        oxygens = np.flatnonzero(atoms.numbers == 8)
        hydrogens = np.flatnonzero(atoms.numbers == 1)
        oh = d[np.ix_(hydrogens, oxygens)]
        nearest = oh.min(1)
        bonded = (oh < 1.3).sum(1)
        oo = d[np.ix_(oxygens, oxygens)] + np.eye(len(oxygens)) * 1e9
        owners = np.bincount(oh.argmin(1), minlength=len(oxygens))
        intact = bool((bonded == 1).all() and (nearest > 0.75).all() and (owners == 2).all()
                      and oo.min() > 2.2)
        broken += not intact
        worst_oh = max(worst_oh, float(nearest.max()))
        closest_oo = min(closest_oo, float(oo.min()))
    return {"frames": len(frames), "frames_not_intact": broken,
            "largest_nearest_OH_A": worst_oh, "closest_OO_A": closest_oo}


def equilibrate(structure: Path, model: Path, out: Path, args) -> None:
    """``start.xyz``: the last frame (positions and momenta) of ``--equilibrate-ps`` of
    Bussi NVT at 300 K in the field from ``structure``. The shipped box is 8 molecules on
    a grid with random orientations: started in NVE it releases ~2 eV and runs at ~900 K,
    which tests nothing about liquid water at room temperature."""
    import ase.io

    from fieldforce.simulation.md import MDRun

    steps = int(round(args.equilibrate_ps * 1000 / args.timestep_fs))
    config = {"structure": str(structure), "model": str(model),
              "output": str(out / "equilibration"), "ensemble": "bussi",
              "temperature_K": 300.0, "thermostat_time_fs": 100.0,
              "timestep_fs": args.timestep_fs, "steps": steps,
              "write_interval": int(round(1000 / args.timestep_fs)), "seed": 0,
              "field": {"type": "static", "vector": [0.0, 0.0, args.field]}}
    trajectory = out / "equilibration" / "trajectory.xyz"
    MDRun(config, resume=trajectory.exists(), progress=False).run()
    last = ase.io.read(trajectory, -1)
    temporary = out / "start.xyz.tmp"
    ase.io.write(temporary, last, format="extxyz")
    temporary.replace(out / "start.xyz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=("cluster", "periodic"), default="cluster")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--ps", type=float, default=1000.0, help="total simulated time")
    parser.add_argument("--max-hours", type=float, default=1.0)
    parser.add_argument("--field", type=float, default=0.05, help="V/Å along z")
    parser.add_argument("--timestep-fs", type=float, default=0.5)
    parser.add_argument("--equilibrate-ps", type=float, default=5.0,
                        help="periodic: NVT at 300 K before the NVE run")
    # tracked in git, so that the next session continues the run (frames every 1 ps keep
    # the files small: ~1.3 MB for 1 ns of the trimer)
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "long_run_stability")
    args = parser.parse_args()

    import ase.io

    from fieldforce.datasets import load_water
    from fieldforce.simulation.md import MDRun

    out = args.runs / args.system
    out.mkdir(parents=True, exist_ok=True)
    # the model is copied into the run on its first call: every piece uses the same one
    model = out / "model.pt"
    if not model.exists():
        source = args.model or (ROOT / "runs" / "demo" / "training" / "model.pt"
                                if args.system == "cluster"
                                else ROOT / "runs" / "liquid_water_latent" / "model.pt")
        if not Path(source).is_file():
            raise SystemExit(f"{source}: no model (make demo, or fieldforce train "
                             "examples/train_liquid_water_latent.yaml, or --model)")
        import shutil

        shutil.copyfile(source, model)
    if args.system == "cluster":
        structure = out / "start.xyz"
        if not structure.exists():
            ase.io.write(structure, load_water("trimer")[0].atoms)
        temperature = 300.0  # thermal velocities at the start (the first call only)
    else:
        structure = out / "start.xyz"
        if not structure.exists():
            equilibrate(ROOT / "examples" / "water_box.xyz", model, out, args)
        temperature = 0.0  # keep the equilibrated momenta of start.xyz
    steps = int(round(args.ps * 1000 / args.timestep_fs))
    config = {"structure": str(structure), "model": str(model), "output": str(out / "md"),
              "ensemble": "nve", "temperature_K": temperature,
              "timestep_fs": args.timestep_fs,
              "steps": steps, "write_interval": int(round(1000 / args.timestep_fs)), "seed": 0,
              "field": {"type": "static", "vector": [0.0, 0.0, args.field]}}
    trajectory = out / "md" / "trajectory.xyz"
    resume = trajectory.exists()
    deadline = time.monotonic() + 3600 * args.max_hours
    run = MDRun(config, resume=resume, progress=False)
    # an NVE start from thermal velocities: temperature_K sets them on the first call only
    run.attach(lambda r: r.request_stop("the piece's wall-time limit")
               if time.monotonic() > deadline else None, interval=100)
    summary = run.run()

    log = np.loadtxt(out / "md" / "md.log", comments="#", ndmin=2)
    t_ps, etot = log[:, 0] / 1000.0, log[:, 3]
    n_atoms = summary["n_atoms"]
    slope = float(np.polyfit(t_ps, etot, 1)[0]) / n_atoms if len(t_ps) > 1 else None
    frames = ase.io.read(trajectory, ":")
    # the rate over the pieces whose wall time is known (a piece that was killed has none)
    timed = [s for s in summary["segments"] if s.get("wall_time_s")]
    wall = sum(s["wall_time_s"] for s in timed)
    timed_ps = sum(s["steps_done"] for s in timed) * args.timestep_fs / 1000.0
    result = {
        "system": args.system, "model": str(model), "field_V_per_A": args.field,
        "timestep_fs": args.timestep_fs, "n_atoms": n_atoms, "target_ps": args.ps,
        "simulated_ps": float(t_ps[-1]), "wall_time_s": wall,
        "ps_per_hour": timed_ps / (wall / 3600.0) if wall else None,
        "drift_eV_per_atom_per_ps": slope,
        "largest_excursion_eV_per_atom": float(np.abs(etot - etot[0]).max() / n_atoms),
        "mean_temperature_K": summary["mean_temperature_K"],
        "integrity": integrity(frames), "domain": summary.get("domain"),
        "segments": len(summary["segments"]),
    }
    print("| system | simulated ps | drift eV/atom/ps | max excursion eV/atom | mean T K | "
          "frames not intact | ps/hour |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.system} | {result['simulated_ps']:.1f} of {args.ps:g} | "
          f"{slope if slope is None else f'{slope:.2e}'} | "
          f"{result['largest_excursion_eV_per_atom']:.2e} | "
          f"{result['mean_temperature_K'] or float('nan'):.0f} | "
          f"{result['integrity']['frames_not_intact']} of {result['integrity']['frames']} | "
          f"{result['ps_per_hour'] or 0:.1f} |")
    path = HERE / "results" / f"long_run_stability_{args.system}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
