"""The metal model's field-dependent barriers checked by DFT at the model's own geometries.

    fieldforce train examples/train_metal.yaml          # -> runs/metal/model.pt
    python benchmarks/metal_barrier_dft.py --model runs/metal/model.pt \\
        --systems "Cu(100)" "Cu(111)" --fields -0.5 0 0.5       # resumable: rerun to continue

For each system: the model's climbing-image NEB of the adatom hop (end states from
``metal_slabs.hop_path`` on the dataset's 2x2 cell, relaxed by the model at each field),
then GPAW single points (the dataset's level of theory: energy, forces and dipole; the
backend aims the field the slab feels at the requested one within its ``field_tol``) at
the model's relaxed initial state and saddle at every field. Compared, per field:

* the barrier at fixed geometry, DFT against the model evaluated at the same geometries
  and at the same fields the DFT slabs felt (no correction: like for like);
* the DFT barrier moved to the requested field (E(F) = E(F') - mu (F - F') - 1/2 alpha
  (F - F')², mu from DFT, alpha from the model: a sub-meV correction) against the model's
  NEB barrier, and the fit E_m(F) = E_m0 - dmu F - 1/2 dalpha F² of each;
* the largest DFT force on a free atom at the model's stationary points (how stationary
  the model's geometries are for DFT).

The single points are labelled into ``benchmarks/runs/metal_barrier_dft/`` (resumable
like any labelling job: a rerun with the same model, fields and images reuses the NEB,
``STEM_neb.json`` beside the points, and every finished point, found by its structure);
a run stopped by ``--max-hours`` reports the fields whose two points are finished and
marks the entry ``"complete": false``.
Writes ``benchmarks/results/metal_barrier_dft.json`` and ``metal_barrier_dft.png``; a run
of some systems keeps the other systems' entries (each names its model and command).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "benchmarks" / "runs" / "metal_barrier_dft"
RESULTS = ROOT / "benchmarks" / "results"
PROPERTIES = ("energy", "forces", "dipole")


def model_paths(model, system: str, fields, images: int) -> dict:
    """The model's NEB at each field: barriers and the relaxed initial state and saddle."""
    from fieldforce.datasets import metal_slabs
    from fieldforce.simulation import FieldForceCalculator
    from fieldforce.simulation.neb import field_barriers

    ends = metal_slabs.hop_path(system, images=3)
    result = field_barriers(lambda vector: FieldForceCalculator(model, efield=vector),
                            ends[0], ends[-1], fields, images=images)
    return {"result": result,
            "points": [(band[0], band[int(s)]) for band, s in
                       zip(result.paths, result.saddle_index, strict=True)]}


def single_points(system: str, fields, points, model_path: str) -> list:
    """The unlabelled DFT frames: initial state and saddle at each field, tagged
    ``config_type: model_neb`` (with the model's path) so that, once labelled, they can
    join the metal dataset as the states a model got wrong."""
    from fieldforce.data import Frame

    frames = []
    for field, pair in zip(fields, points, strict=True):
        for name, atoms in zip(("initial", "saddle"), pair, strict=True):
            atoms = atoms.copy()
            atoms.calc = None
            atoms.info = {"system": system, "config_type": "model_neb", "state": name,
                          "target_field": float(field), "neb_model": model_path}
            frames.append(Frame(atoms, {"efield": np.array([0.0, 0.0, float(field)])}))
    return frames


def model_at(model, frame, field: float) -> dict:
    from fieldforce.simulation import FieldForceCalculator

    atoms = frame.atoms.copy()
    calc = FieldForceCalculator(model, efield=[0.0, 0.0, field])
    atoms.calc = calc
    return {"energy": float(atoms.get_potential_energy()),
            "dipole": float(calc.get_property("dipole", atoms)[2]),
            "polarizability": float(np.asarray(calc.get_property("polarizability",
                                                                 atoms))[2, 2])}


def compare(model, labelled, fields) -> list[dict]:
    """Per field: like-for-like and moved-to-the-requested-field barriers."""
    rows = []
    for field in fields:
        pair = {f.atoms.info["state"]: f for f in labelled
                if abs(f.atoms.info["target_field"] - field) < 1e-9}
        if set(pair) != {"initial", "saddle"}:
            continue
        felt = {k: float(f.efield[2]) for k, f in pair.items()}
        dft = {k: float(f.labels["energy"]) for k, f in pair.items()}
        mu = {k: float(f.labels["dipole"][2]) for k, f in pair.items()}
        at_felt = {k: model_at(model, f, felt[k]) for k, f in pair.items()}
        moved = {k: dft[k] - mu[k] * (field - felt[k])
                 - 0.5 * at_felt[k]["polarizability"] * (field - felt[k]) ** 2 for k in pair}
        free = {k: ~np.isin(np.arange(len(f.atoms)), f.atoms.constraints[0].index)
                for k, f in pair.items()}
        rows.append({
            "field": float(field), "felt": felt,
            "barrier_dft_felt": dft["saddle"] - dft["initial"],
            "barrier_model_felt": at_felt["saddle"]["energy"] - at_felt["initial"]["energy"],
            "barrier_dft": moved["saddle"] - moved["initial"],
            "dmu_dft": mu["saddle"] - mu["initial"],
            "dmu_model_felt": at_felt["saddle"]["dipole"] - at_felt["initial"]["dipole"],
            "dft_max_force": {k: float(np.linalg.norm(f.labels["forces"][free[k]], axis=1).max())
                              for k, f in pair.items()},
        })
    return rows


def plot(path: Path, systems: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fieldforce.analysis.barriers import fit_barriers

    fig, axes = plt.subplots(1, len(systems), figsize=(4.2 * len(systems), 3.4),
                             squeeze=False)
    for ax, (system, data) in zip(axes[0], systems.items(), strict=True):
        fields = np.array(data["fields"])
        grid = np.linspace(fields.min(), fields.max(), 50)
        ax.plot(fields, data["model_neb_barriers"], "o", color="C0", label="model NEB")
        if len(fields) >= 3:
            fit = fit_barriers(fields, data["model_neb_barriers"])
            ax.plot(grid, fit(grid), "-", color="C0", lw=1, alpha=0.6)
        rows = data["dft"]
        if rows:
            f = np.array([r["field"] for r in rows])
            ax.plot(f, [r["barrier_dft"] for r in rows], "s", color="C3", mfc="none",
                    label="DFT at the model's geometries")
            if len(rows) >= 3:
                fit = fit_barriers(f, [r["barrier_dft"] for r in rows])
                ax.plot(grid, fit(grid), "--", color="C3", lw=1, alpha=0.6)
        ax.set_title(system, fontsize=10)
        ax.set_xlabel("field along the normal F (V/Å)")
        ax.set_ylabel("migration barrier E$_m$ (eV)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    from fieldforce.data.atomic import save_figure

    save_figure(fig, path, dpi=150)
    plt.close(fig)


def previous_results(path: Path) -> dict:
    """The results file so far: a run of some systems keeps the others' entries (each
    entry names the model and command that made it)."""
    if not path.exists():
        return {"systems": {}}
    old = json.loads(path.read_text())
    for entry in old["systems"].values():  # files from before entries named their run
        entry.setdefault("model", old.get("model"))
        entry.setdefault("command", old.get("command"))
    return {"systems": old["systems"]}


def cached_neb(path: Path, unlabelled: Path, args):
    """The NEB of an earlier run of the same model, fields and images (its barriers from
    ``path``, its points from ``unlabelled``), or (None, None). A rerun must label the
    states it labelled before: the NEB is not reproducible to the 1e-6 Å by which the
    labelling job finds finished points (threads change the rounding, and a band that has
    not converged ends elsewhere)."""
    from types import SimpleNamespace

    from fieldforce.data.io import read_frames

    if not (path.exists() and unlabelled.exists()):
        return None, None
    neb = json.loads(path.read_text())
    if (neb["model"], neb["fields"], neb["images"]) != (
            str(args.model), [float(f) for f in args.fields], args.images):
        return None, None
    print(f"the NEB of {path.name} (same model, fields and images): reusing its states")
    result = SimpleNamespace(fields=np.array(neb["fields"]), barriers=np.array(neb["barriers"]),
                             converged=neb["converged"], dmu=neb["dmu"], dalpha=neb["dalpha"])
    return result, read_frames(unlabelled)


def main() -> None:
    from fieldforce.analysis.barriers import fit_barriers
    from fieldforce.data.atomic import write_json
    from fieldforce.data.io import write_frames
    from fieldforce.datasets import make_metal, metal_slabs
    from fieldforce.models import load_model
    from fieldforce.reference.labelling import label_frames, labelled_so_far, structure_key

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "metal" / "model.pt")
    parser.add_argument("--systems", nargs="+", default=["Cu(100)", "Cu(111)"],
                        choices=make_metal.SYSTEMS)
    parser.add_argument("--fields", type=float, nargs="+", default=[-0.5, 0.0, 0.5])
    parser.add_argument("--images", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1,
                        help="DFT single points run at once (one core each)")
    parser.add_argument("--max-hours", type=float, default=None,
                        help="stop starting new DFT points after this long (rerun to go on)")
    parser.add_argument("--tag", default="",
                        help="check another model of a system already checked: its points "
                             "go to STEM_TAG_points*.xyz and its results entry is "
                             "'SYSTEM TAG' (the untagged entry stays)")
    args = parser.parse_args()
    model = load_model(args.model)
    RUNS.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    command = ("python benchmarks/metal_barrier_dft.py --model " + str(args.model)
               + " --systems " + " ".join(f'"{s}"' for s in args.systems)
               + " --fields " + " ".join(f"{f:g}" for f in args.fields)
               + (f" --tag {args.tag}" if args.tag else ""))
    start = time.perf_counter()
    for system in args.systems:
        stem = metal_slabs.HOP_FILES[system] + (f"_{args.tag}" if args.tag else "")
        unlabelled = RUNS / f"{stem}_points.xyz"
        result, points = cached_neb(RUNS / f"{stem}_neb.json", unlabelled, args)
        if result is None:
            paths = model_paths(model, system, args.fields, args.images)
            result = paths["result"]
            points = single_points(system, args.fields, paths["points"], str(args.model))
            write_frames(points, unlabelled)
            write_json({"model": str(args.model), "fields": [float(f) for f in args.fields],
                        "images": args.images, "barriers": result.barriers.tolist(),
                        "converged": [bool(c) for c in result.converged],
                        "dmu": result.dmu, "dalpha": result.dalpha},
                       RUNS / f"{stem}_neb.json")
        labelled = RUNS / f"{stem}_points_dft.xyz.gz"
        left = None
        if args.max_hours is not None:
            left = max(0.0, 3600 * args.max_hours - (time.perf_counter() - start))
        report = label_frames(unlabelled, labelled, make_metal.dataset_backend(), PROPERTIES,
                              max_seconds=left, workers=args.workers)
        # stopped early: the pairs finished so far. Only this NEB's points: a band that
        # did not converge ends elsewhere when rerun (other threads, other rounding), and
        # the file may hold the earlier run's points, which belong to that run's barrier
        current = {structure_key(f) for f in points}
        done = labelled_so_far(labelled)
        frames = [f for f in done if structure_key(f) in current]
        if len(frames) < len(done):
            print(f"{system}: {len(done) - len(frames)} labelled "
                  f"point(s) in {labelled.name} are not this NEB's states (an earlier run's); "
                  "left out of the comparison")
        rows = compare(model, frames, args.fields)
        entry = f"{system} {args.tag}" if args.tag else system
        # read just before writing: a run beside this one (another tag) may have added
        # its entry while this one labelled for an hour
        out = previous_results(RESULTS / "metal_barrier_dft.json")
        data = {"model": str(args.model), "command": command,
                "fields": [float(f) for f in result.fields],
                "model_neb_barriers": result.barriers.tolist(),
                # an unconverged band's "saddle" is its highest image, not a saddle
                "model_neb_converged": [bool(c) for c in result.converged],
                "model_dmu": result.dmu, "model_dalpha": result.dalpha,
                "dft": rows,
                # a rerun that labelled nothing keeps the cost its predecessor measured
                "dft_seconds_per_point": report.seconds_per_frame if report.labelled else
                out["systems"].get(entry, {}).get("dft_seconds_per_point"),
                "complete": not report.stopped_early}
        if len(args.fields) >= 3:
            fit = fit_barriers(result.fields, result.barriers)
            data["model_fit"] = {"e0": fit.e0, "dmu": fit.dmu, "dalpha": fit.dalpha}
            if len(rows) >= 3:
                fit = fit_barriers([r["field"] for r in rows], [r["barrier_dft"] for r in rows])
                data["dft_fit"] = {"e0": fit.e0, "dmu": fit.dmu, "dalpha": fit.dalpha}
        out["systems"][entry] = data
        write_json(out, RESULTS / "metal_barrier_dft.json")
        print(f"\n{system}: {'F':>5s} {'NEB model':>10s} {'DFT':>8s} | at the felt fields: "
              f"{'DFT':>8s} {'model':>8s} {'dmu DFT':>8s} {'dmu model':>9s} "
              f"{'max |f| DFT (min, saddle)':>26s}")
        for r in rows:
            neb = data["model_neb_barriers"][args.fields.index(r["field"])]
            force = r["dft_max_force"]
            print(f"{'':9s}{r['field']:5.2f} {neb:10.4f} {r['barrier_dft']:8.4f} | "
                  f"{'':20s}{r['barrier_dft_felt']:8.4f} {r['barrier_model_felt']:8.4f} "
                  f"{r['dmu_dft']:8.4f} {r['dmu_model_felt']:9.4f} "
                  f"{force['initial']:12.3f} {force['saddle']:12.3f}")
        if report.stopped_early:
            print(f"{system}: stopped after --max-hours with {len(rows)} of "
                  f"{len(args.fields)} fields' pairs labelled; rerun to continue")
            break
    plot(RESULTS / "metal_barrier_dft.png", out["systems"])
    print(f"wrote {RESULTS / 'metal_barrier_dft.json'}")


if __name__ == "__main__":
    main()
