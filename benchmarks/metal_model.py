"""The metal model against its DFT data: held-out errors, fixed-geometry barriers, the
adatom's dipole and polarizability differences (W next to experiment), the per-layer
profile of atomic dipoles and polarizabilities, and the cost of a model step.

    fieldforce train examples/train_metal.yaml          # -> runs/metal/model.pt
    python benchmarks/metal_model.py --config examples/train_metal.yaml --model runs/metal/model.pt

Barriers here are at the DFT data's own geometries (the hop images, EMT paths for Cu):
E(highest image) - E(first image) at the first image's field (the images of one applied
strength felt fields a few hundredths of a V/Å apart; DFT energies are moved to the
common field with their own dipoles and polarizabilities), DFT and model on the same
frames, so the comparison has no relaxation in it. dmu and dalpha are the saddle
image's dipole and polarizability along the normal minus the first image's, the DFT
dipoles moved to the first image's field (mu_i + alpha_i dF) like the energies. Writes
benchmarks/results/metal_model.json (``--out``) and
benchmarks/results/metal_layer_profile.png (``--profile``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from fieldforce.data.io import read_frames
from fieldforce.datasets import load_metal
from fieldforce.datasets.metal_finish import frame_key
from fieldforce.models import load_model
from fieldforce.simulation.calculator import FieldForceCalculator
from fieldforce.training import evaluate_frames, load_config
from fieldforce.training.sources import select_frames, split_data

RESULTS = Path(__file__).parent / "results"
#: S. C. Wang and T. T. Tsong, Phys. Rev. B 26, 6470 (1982): W adatom on W(110), from the
#: field dependence of its directional walk in an FIM: 0.97 D and 14.4 Å³
#: (1 D = 0.20819 e·Å; alpha/(4 pi eps0) in Å³ -> e·Å²/V: divide by k_e = 14.3996 eV·Å/e²)
EXPERIMENT_W110 = {"dmu_eA": 0.97 * 0.20819434, "dalpha_eA2_per_V": 14.4 / 14.3996454,
                   "source": "Wang and Tsong, Phys. Rev. B 26, 6470 (1982)"}


def model_results(model, frame, field: float | None = None) -> dict:
    """The model at the frame's geometry and field (or ``field`` V/Å along z), per-atom
    parts included."""
    atoms = frame.atoms.copy()
    efield = np.asarray(frame.efield, float) if field is None else np.array([0, 0, field])
    calc = FieldForceCalculator(model, efield=efield, per_atom=True)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    return {"energy": energy, "dipole": calc.results["dipole"],
            "polarizability": calc.results["polarizability"],
            "atomic_dipoles": calc.results.get("atomic_dipoles"),
            "atomic_polarizabilities": calc.results.get("atomic_polarizabilities")}


def path_comparison(model, frames, held_out: set | None = None) -> dict:
    """Per system and requested field: DFT and model barriers at fixed geometry, and at
    zero requested field the dipole and polarizability differences. ``held_out``: keys
    (``metal_finish.frame_key``: geometry and requested field) of the test frames; each row
    says which of its images are (a barrier between held-out frames is a prediction,
    between training frames a fit)."""
    out: dict = {}
    # a path is the images of one system at one requested field; the DFT-relaxed states
    # (W(110): minimum and saddle, info 'relaxed') are a path of their own
    def path_of(f) -> str:
        return f.atoms.info["system"] + (" relaxed" if f.atoms.info.get("relaxed") else "")

    for system in sorted({path_of(f) for f in frames}):
        rows = {}
        for target in sorted({f.atoms.info["target_field"] for f in frames
                              if path_of(f) == system}):
            images = sorted((f for f in frames if path_of(f) == system
                             and f.atoms.info["target_field"] == target),
                            key=lambda f: f.atoms.info["image"])
            if len(images) < 2 or images[0].atoms.info["image"] != 0:
                continue
            # the images felt slightly different fields at one applied strength (the
            # adatom's own dipole adds mu / (eps0 A L)): move every DFT energy to the
            # first image's field along U(F) = U(F_i) - mu_i dF - 1/2 alpha_i dF², and
            # evaluate the model there
            f0 = float(images[0].efield[2])
            dft = np.array([float(f.labels["energy"]) - float(f.labels["dipole"][2]) * df
                            - 0.5 * float(f.labels["polarizability"][2, 2]) * df**2
                            for f in images for df in [f0 - float(f.efield[2])]])
            pred = [model_results(model, f, field=f0) for f in images]
            mod = np.array([p["energy"] for p in pred])
            top = int(np.argmax(dft))
            row = {"field_felt": [float(f.efield[2]) for f in images],
                   "images": [int(f.atoms.info["image"]) for f in images],
                   "barrier_dft": float(dft[top] - dft[0]),
                   "barrier_model": float(mod[top] - mod[0]), "saddle_image": top,
                   "held_out": [frame_key(f) in (held_out or set()) for f in images]}
            # the DFT dipoles moved to the same field to first order, mu_i + alpha_i dF
            # (their felt fields differ by up to ~0.03 V/Å, x alpha ~1.5 = 0.04 e·Å)
            moved = {"dipole": [float(f.labels["dipole"][2])
                                + float(f.labels["polarizability"][2, 2])
                                * (f0 - float(f.efield[2])) for f in (images[0], images[top])],
                     "polarizability": [float(f.labels["polarizability"][2, 2])
                                        for f in (images[0], images[top])]}
            for key, index in (("dipole", (2,)), ("polarizability", (2, 2))):
                d = moved[key]
                m = [float(np.asarray(p[key])[index]) for p in (pred[0], pred[top])]
                row[f"d{key}_dft"] = d[1] - d[0]
                row[f"d{key}_model"] = m[1] - m[0]
            rows[str(target)] = row
        out[system] = rows
    return out


def _layers(z: np.ndarray) -> list[list[int]]:
    """Atom indices grouped in layers by height (gaps > 0.5 Å), bottom first."""
    layers: list[list[int]] = []
    for i in np.argsort(z):
        if layers and z[i] - z[layers[-1][-1]] < 0.5:
            layers[-1].append(int(i))
        else:
            layers.append([int(i)])
    return layers


def layer_profile(model, frames, path: Path) -> list[dict]:
    """Atomic mu_z and alpha_zz per layer (by height) of each slab in ``frames``, and a plot
    (one row per slab) with eps0 x (volume per atom) marked: the alpha_zz an interior atom
    must carry when a slab's dipole is a sum of atom-centred dipoles (the screening charges
    sit a slab thickness apart, so the slab's alpha grows by eps0 A d per thickness d)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fieldforce.units import EPSILON0 as eps0

    fig, axes = plt.subplots(len(frames), 2, figsize=(7, 3.0 * len(frames)), squeeze=False)
    out = []
    for row, frame in zip(axes, frames, strict=True):
        res = model_results(model, frame)
        atoms = frame.atoms
        z = atoms.positions[:, 2]
        layers = _layers(z)
        mu = np.asarray(res["atomic_dipoles"])[:, 2]
        alpha = np.asarray(res["atomic_polarizabilities"])[:, 2, 2]
        table = [{"height": float(z[idx].mean()), "atoms": len(idx),
                  "mu_z": float(mu[idx].mean()), "alpha_zz": float(alpha[idx].mean())}
                 for idx in layers]
        full = [r for r in table if r["atoms"] == max(t["atoms"] for t in table)]
        spacing = float(np.mean(np.diff([r["height"] for r in full]))) if len(full) > 1 else 0
        area = float(np.linalg.norm(np.cross(atoms.cell[0], atoms.cell[1])))
        screening = eps0 * area / full[0]["atoms"] * spacing
        h = [r["height"] for r in table]
        row[0].barh(h, [r["mu_z"] for r in table], height=0.4)
        row[0].set_xlabel("atomic μ$_z$ (e·Å), mean per layer")
        row[1].barh(h, [r["alpha_zz"] for r in table], height=0.4, color="C1")
        row[1].axvline(screening, color="k", ls="--", lw=1, label="ε$_0$ × volume per atom")
        row[1].set_xlabel("atomic α$_{zz}$ (e·Å²/V), mean per layer")
        row[1].legend(fontsize=7, loc="lower right")
        row[0].set_ylabel("height (Å)")
        row[0].set_title(f"{atoms.info.get('system')} {atoms.info.get('config_type')}, "
                         f"F = {frame.efield[2]:+.2f} V/Å", fontsize=9, loc="left")
        out.append({"system": atoms.info.get("system"),
                    "config_type": atoms.info.get("config_type"), "layers": table,
                    "eps0_volume_eA2_per_V": screening})
    fig.tight_layout()
    from fieldforce.data.atomic import save_figure

    save_figure(fig, path, dpi=150)
    plt.close(fig)
    return out


def step_cost(model, frame, repeats: int = 20) -> dict:
    """Seconds per energy + forces + dipole evaluation on the 2x2 slab and a 4x4 copy."""
    out = {}
    for name, atoms in (("2x2", frame.atoms.copy()), ("4x4", frame.atoms.repeat((2, 2, 1)))):
        calc = FieldForceCalculator(model, efield=[0, 0, 0.5])
        atoms.calc = calc
        atoms.get_forces()
        start = time.perf_counter()
        for _ in range(repeats):
            atoms.positions[-1, 0] += 1e-4
            atoms.get_forces()
            calc.get_property("dipole", atoms)
        out[name] = {"atoms": len(atoms), "seconds": (time.perf_counter() - start) / repeats}
    return out


def _jsonable(value):
    """numpy scalars and arrays for json.dumps."""
    return np.asarray(value).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="examples/train_metal.yaml")
    parser.add_argument("--model", default="runs/metal/model.pt")
    parser.add_argument("--data", default=None,
                        help="labelled metal frames (default: the shipped set); e.g. a "
                             "snapshot of the labelling job made with make_metal finish")
    parser.add_argument("--out", type=Path, default=RESULTS / "metal_model.json")
    parser.add_argument("--profile", type=Path, default=RESULTS / "metal_layer_profile.png",
                        help="the per-layer plot")
    args = parser.parse_args()
    model = load_model(args.model)
    config = load_config(args.config)
    _, _, test = split_data(config)
    table, _ = evaluate_frames(model, test)
    everything = load_metal() if args.data is None else read_frames(args.data)
    # the systems the model was trained on (the config's data.select)
    everything = select_frames(everything, config["data"].get("select"), "metal frames")
    frames = [f for f in everything if f.atoms.info["config_type"] == "adatom_path"]
    paths = path_comparison(model, frames, {frame_key(f) for f in test})
    adatom = next(f for f in frames if f.atoms.info["system"] == "Cu(100)")
    thick = sorted((f for f in everything if f.atoms.info["config_type"] == "clean_thick"),
                   key=lambda f: len(f.atoms))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    profile = layer_profile(model, [adatom] + thick[-1:], args.profile)
    cost = step_cost(model, adatom)
    result = {"test_errors": table, "test_frames": len(test), "paths": paths,
              "layer_profile": profile, "step_cost": cost,
              "experiment_W110": EXPERIMENT_W110}
    args.out.write_text(json.dumps(result, indent=1, default=_jsonable))
    print(f"held-out frames: {len(test)}")
    for name, m in table.items():
        if "rmse" in m:
            print(f"  {name:15s} RMSE {m['rmse']:.4g} {m['unit']}")
    print(f"{'system':8s} {'F':>5s} {'Em DFT':>8s} {'Em model':>9s} {'dmu DFT':>8s} "
          f"{'dmu mod':>8s} {'dalpha DFT':>10s} {'dalpha mod':>10s}  images")
    for system, rows in paths.items():
        for target, r in rows.items():
            held = ("held out" if all(r["held_out"]) else "trained" if not any(r["held_out"])
                    else f"{sum(r['held_out'])} of {len(r['held_out'])} held out")
            print(f"{system:8s} {float(target):5.2f} {r['barrier_dft']:8.4f} "
                  f"{r['barrier_model']:9.4f} {r['ddipole_dft']:8.4f} {r['ddipole_model']:8.4f} "
                  f"{r['dpolarizability_dft']:10.4f} {r['dpolarizability_model']:10.4f}  {held}")
    print(f"W(110) experiment: dmu {EXPERIMENT_W110['dmu_eA']:.3f} e·Å, dalpha "
          f"{EXPERIMENT_W110['dalpha_eA2_per_V']:.3f} e·Å²/V ({EXPERIMENT_W110['source']})")
    for name, c in cost.items():
        print(f"model step {name} ({c['atoms']} atoms): {c['seconds'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
