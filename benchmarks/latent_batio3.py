"""Latent-charge model on tetragonal BaTiO3: inferred Born charges, polarization, hysteresis.

    python benchmarks/latent_batio3.py --epochs 150 --threads 2
    python benchmarks/latent_batio3.py --epochs 1 --n-test 4 --md-periods 0.05   # quick check
    python benchmarks/latent_batio3.py --model M.pt --amplitude 0.72 --out X.json  # MD only

Data: ../shared/data/macefield_BaTiO3.xyz (59 MD snapshots of a 3x3x3 BaTiO3 supercell,
135 atoms, DFT energies, forces, Born charges and polarization; read through
examples/specs/macefield_BaTiO3.yaml, which explains why its field label is not read: the
frames are zero-field frames). Split (seed 0): ``--n-test`` frames for testing, the rest
for training, of which ``--n-valid`` for validation.

1. Training, energies and forces only (loss weights 1 and 10, batch 4, ``--epochs``;
   ``--train-set`` replaces any of these, e.g. by the latent family's own defaults),
   ``family: latent`` and the same backbone with ``long_range: false``; test energy and
   force RMSE for both.
2. The latent model's Born charges Z*_i = V dP/dr_i (phase form, acoustic sum rule) on
   the test frames against DFT: RMSE over all 9 components, mean tensor per species,
   the best single scalar factor; next to nominal ionic charges (Ba +2, Ti +4, O -2;
   Z* = q I) as the fixed-charge baseline.
3. Polarization changes: for every test frame, Delta P = P(frame) - P(first frame of the
   file), reduced modulo the polarization quantum (e a_k / V; the DFT values are given on
   a branch near zero), from the model, from the nominal charges and from DFT; RMSE
   and correlation against DFT (e/Å² and µC/cm²).
4. A field-driven hysteresis loop with the trained latent model (``fieldforce md``):
   sinusoidal field along z of amplitude ``--amplitude`` V/Å (default 0.36 = 36 MV/cm)
   and period ``--period-fs`` (2000), ``--md-periods`` periods at ``--temperature``
   (Bussi thermostat, 2 fs steps) from the first frame of the file; remanent
   polarization and coercive field from ``fieldforce.analysis.hysteresis_loop`` after
   the first period, and the loop plotted. Published (MACE-Field trained on E, F,
   stress, P, Z*, alpha): about ±39 µC/cm² and ±11.4 MV/cm at 36 MV/cm, 2 ps period.

Writes benchmarks/results/latent_batio3.json after every stage and the loop to
benchmarks/results/latent_batio3_hysteresis.png (``--out`` names both).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _options import LATENT_VARIANTS, common_arguments, key_values, shared_frames

ROOT = Path(__file__).resolve().parent.parent
NOMINAL = {56: 2.0, 22: 4.0, 8: -2.0}  # Ba, Ti, O formal charges, e
SYMBOLS = {56: "Ba", 22: "Ti", 8: "O"}
UC_PER_CM2 = 1602.176634  # µC/cm² per e/Å²
VARIANTS = LATENT_VARIANTS


def load(data_dir: Path):
    return shared_frames("macefield_BaTiO3", data_dir)


def wrap_polarization(p: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """P [.., 3] e/Å² reduced modulo the quantum e a_k / V into the cell around zero."""
    volume = abs(np.linalg.det(cell))
    frac = (p * volume) @ np.linalg.inv(cell)  # P V = sum_k n_k a_k
    return ((frac - np.round(frac)) @ cell) / volume


def predict(model, frames) -> dict[str, np.ndarray]:
    import torch

    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    born = model.has_charges
    keys = ("energy", "forces") + (("charges", "polarization", "born_charges") if born else ())
    out = {k: [] for k in keys}
    with torch.enable_grad():
        for frame in frames:
            res = evaluate(model, collate([frame]), forces=True, born_charges=born)
            out["energy"].append(float(res["energy"][0].detach()) / len(frame.atoms))
            for k in keys[1:]:
                out[k].append(res[k].detach().numpy())
    return {"energy": np.array(out["energy"]),
            **{k: np.concatenate(out[k]) for k in keys[1:]}}


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def nominal_polarization(frame) -> np.ndarray:
    q = np.array([NOMINAL[int(z)] for z in frame.atoms.numbers])
    return q @ frame.atoms.positions / abs(np.linalg.det(frame.atoms.cell.array))


def delta_p(p: np.ndarray, p_ref: np.ndarray, cells: np.ndarray) -> np.ndarray:
    return np.stack([wrap_polarization(a - p_ref, c) for a, c in zip(p, cells, strict=True)])


def chance_rmse(cells: np.ndarray) -> float:
    """RMSE (e/Å²) of a Delta P error spread uniformly over the quantum cell: Q_k^2 / 12."""
    quanta = [np.linalg.norm(c, axis=1) / abs(np.linalg.det(c)) for c in cells]
    return float(np.sqrt(np.mean(np.square(quanta)) / 12.0))


def charge_scores(born, numbers, z_ref, dp, dp_ref, cells) -> dict:
    """Born-charge errors and Delta P errors, the latter modulo the polarization quantum.

    ``dp``, ``dp_ref``: Delta P [F, 3] e/Å² of the model and of DFT; the error is
    reduced into the quantum cell (a branch-free comparison, so errors above half a
    quantum cannot be seen: compare with :func:`chance_rmse`); the correlation is taken
    after moving the model's value onto the DFT branch.
    """
    scale = float((born * z_ref).sum() / (born * born).sum())
    err = delta_p(dp - dp_ref, np.zeros(3), cells)
    row = {"born_rmse": rmse(born, z_ref), "born_rrmse": rmse(born, z_ref) / float(z_ref.std()),
           "born_best_scale": scale, "born_rmse_best_scale": rmse(scale * born, z_ref),
           "delta_p_rmse_e_per_A2": float(np.sqrt(np.mean(err ** 2))),
           "delta_p_rmse_uC_per_cm2": UC_PER_CM2 * float(np.sqrt(np.mean(err ** 2))),
           "delta_p_correlation": float(np.corrcoef((dp_ref + err).ravel(),
                                                    dp_ref.ravel())[0, 1])}
    for z, name in SYMBOLS.items():
        row[f"mean_born_{name}"] = born[numbers == z].mean(0).round(3).tolist()
    return row


def born_linear_delta_p(frames, first) -> np.ndarray:
    """Delta P [F, 3] e/Å² from the DFT Born charges (mean of the two frames) times the
    minimum-image displacements: what a model with exact Born charges would get."""
    out = []
    for f in frames:
        cell = f.atoms.cell.array
        frac = (f.atoms.positions - first.atoms.positions) @ np.linalg.inv(cell)
        disp = (frac - np.round(frac)) @ cell
        z = 0.5 * (f.labels["born_charges"] + first.labels["born_charges"])
        out.append(np.einsum("nab,nb->a", z, disp) / abs(np.linalg.det(cell)))
    return np.stack(out)


def cubic_reference(atoms):
    """The centrosymmetric reference of a perovskite supercell snapshot: every atom moved
    to its ideal site (Ba corners, Ti body centres, O face centres of the 3x3x3 cells,
    aligned on the first Ba atom), same cell. Returns (reference positions [N, 3],
    minimum-image displacements snapshot - reference [N, 3]), Å."""
    cell = atoms.cell.array
    f = atoms.get_scaled_positions() * 3.0  # in perovskite-cell units
    first_ba = f[np.flatnonzero(atoms.numbers == 56)[0]]
    shift = first_ba - np.round(first_ba)
    ideal = np.round(2.0 * (f - shift)) / 2.0 + shift
    disp = (f - ideal) / 3.0
    disp = (disp - np.round(disp)) @ cell
    return atoms.positions - disp, disp


def spontaneous_polarization(model_path: Path, frame, images: int = 21) -> dict:
    """P_s [3] µC/cm² of ``frame``: the change of the model's polarization along the
    straight path from the centrosymmetric reference (P = 0 by symmetry) to the
    snapshot, followed continuously (a Berry-phase-like path), next to the DFT Born
    charges of the snapshot times the displacements (linear estimate)."""
    import torch

    from fieldforce.data.batch import batch_from_atoms
    from fieldforce.electrostatics import PolarizationTracker
    from fieldforce.models import evaluate, load_model

    model = load_model(model_path)
    reference, disp = cubic_reference(frame.atoms)
    tracker = PolarizationTracker()
    cell = torch.tensor(frame.atoms.cell.array)
    values = []
    for lam in np.linspace(0.0, 1.0, images):
        atoms = frame.atoms.copy()
        atoms.positions = reference + lam * disp
        out = evaluate(model, batch_from_atoms(atoms))
        values.append(tracker(torch.tensor(atoms.positions), out["charges"].detach(), cell,
                              True).numpy())
    volume = abs(np.linalg.det(frame.atoms.cell.array))
    dft = np.einsum("nab,nb->a", frame.labels["born_charges"], disp) / volume
    return {"model_uC_per_cm2": (UC_PER_CM2 * (values[-1] - values[0])).tolist(),
            "dft_born_linear_uC_per_cm2": (UC_PER_CM2 * dft).tolist(),
            "mean_displacement_A": {n: disp[frame.atoms.numbers == z].mean(0).round(4).tolist()
                                    for z, n in SYMBOLS.items()},
            "path_images": images}


def train(name: str, options: dict, data, args):
    from fieldforce.training import Trainer, load_config

    fit, valid = data
    config = load_config({
        "data": {"train": str(args.data_dir / "macefield_BaTiO3.xyz")},
        "model": {**VARIANTS[name], **options},
        "training": {"seed": args.seed, "max_epochs": args.epochs, "patience": args.epochs,
                     "batch_size": 4,
                     "loss_weights": {"energy": 1.0, "forces": 10.0,
                                      **({"born_charges": args.born_charge_weight}
                                         if args.born_charge_weight else {})},
                     **key_values(args.train_set)},
        "output": str(args.work / name)})
    t0 = time.perf_counter()
    trainer = Trainer(config, progress=False, data=(fit, valid, []))
    trainer.fit()
    return trainer, time.perf_counter() - t0


def hysteresis(model_path: Path, frame, args) -> dict:
    import ase.io

    from fieldforce.analysis import hysteresis_loop
    from fieldforce.analysis.trajectory import (
        first_frame_at,
        frame_series,
        frame_times,
        read_trajectory,
    )
    from fieldforce.simulation.md import run_md

    run = args.work / "hysteresis"
    run.mkdir(parents=True, exist_ok=True)
    ase.io.write(run / "start.xyz", frame.atoms)
    steps = int(round(args.md_periods * args.period_fs / 2.0))
    config = {"structure": str(run / "start.xyz"), "model": str(model_path),
              "output": str(run / "md"), "steps": steps, "timestep_fs": 2.0,
              "ensemble": "bussi", "temperature_K": args.temperature,
              "thermostat_time_fs": 100.0, "write_interval": 5, "seed": args.seed,
              "field": {"type": "sinusoid", "amplitude": [0.0, 0.0, args.amplitude],
                        "period_fs": args.period_fs}}
    summary = run_md(config, resume=(run / "md" / "trajectory.xyz").exists(), progress=True)
    traj = run / "md" / "trajectory.xyz"
    frames = read_trajectory(traj)
    times = frame_times(frames, traj)
    start = first_frame_at(times, min(args.period_fs, 0.5 * times[-1]), traj)
    field = frame_series(frames[start:], "efield", traj, (3,), start=start)
    pol = frame_series(frames[start:], "polarization", traj, (3,), start=start)
    loop = hysteresis_loop(field, pol, axis="z")
    plot = args.out.with_name(args.out.stem + "_hysteresis.png")
    labels = "E, F and Z*" if args.born_charge_weight else "E and F only"
    loop.plot(plot, title=f"BaTiO3, latent-charge model trained on {labels}")
    print(loop.table(), flush=True)
    return {"steps": steps, "wall_time_s": summary["wall_time_s"],
            "skipped_fs": float(times[start]), **loop.to_dict(),
            "p_range_uC_per_cm2": [UC_PER_CM2 * float(pol[:, 2].min()),
                                   UC_PER_CM2 * float(pol[:, 2].max())],
            "mean_temperature_K": summary["mean_temperature_K"], "plot": str(plot)}


def main() -> None:
    import torch

    from fieldforce.data.splits import random_split

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser, epochs=150, work="/tmp/fieldforce_latent_batio3",
                     out="latent_batio3.json")
    parser.add_argument("--n-test", type=int, default=12)
    parser.add_argument("--n-valid", type=int, default=5, help="taken from the training frames")
    parser.add_argument("--born-charge-weight", type=float, default=0.0,
                        help="also train on the DFT Born charges with this loss weight "
                             "(default 0: energies and forces only)")
    parser.add_argument("--amplitude", type=float, default=0.36, help="V/Å")
    parser.add_argument("--period-fs", type=float, default=2000.0)
    parser.add_argument("--md-periods", type=float, default=3.0, help="0: no hysteresis run")
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--model", type=Path, default=None,
                        help="a trained latent model: no training, only the hysteresis run")
    args = parser.parse_args()
    options = key_values(args.set)
    torch.set_num_threads(args.threads)
    frames = load(args.data_dir)
    first = frames[0]
    train_frames, test = random_split(frames, [len(frames) - args.n_test, args.n_test],
                                      seed=args.seed)
    fit, valid = random_split(train_frames, [len(train_frames) - args.n_valid, args.n_valid],
                              seed=args.seed + 1)
    print(f"{len(frames)} frames of {len(first.atoms)} atoms: train {len(fit)}, "
          f"valid {len(valid)}, test {len(test)}", flush=True)
    cells = np.stack([f.atoms.cell.array for f in test])
    numbers = np.concatenate([f.atoms.numbers for f in test])
    z_ref = np.concatenate([f.labels["born_charges"] for f in test])
    p_dft = np.stack([f.labels["polarization"] for f in test])
    dp_dft = delta_p(p_dft, first.labels["polarization"], cells)
    p_nom = np.stack([nominal_polarization(f) for f in test])
    dp_nom = delta_p(p_nom, nominal_polarization(first), cells)
    z_nom = np.array([NOMINAL[int(z)] for z in numbers])[:, None, None] * np.eye(3)
    result = {"command": f"python benchmarks/latent_batio3.py --epochs {args.epochs} "
                         f"--threads {args.threads}"
                         + (f" --set {' '.join(args.set)}" if args.set else "")
                         + (f" --train-set {' '.join(args.train_set)}" if args.train_set
                            else "")
                         + (f" --born-charge-weight {args.born_charge_weight:g}"
                            if args.born_charge_weight else ""),
              "model_options": options, "epochs": args.epochs, "seed": args.seed,
              "n_train": len(fit), "n_valid": len(valid), "n_test": len(test),
              "dft": {"born_std": float(z_ref.std()),
                      "delta_p_std_uC_per_cm2": UC_PER_CM2 * float(dp_dft.std()),
                      **{f"mean_born_{n}": z_ref[numbers == z].mean(0).round(3).tolist()
                         for z, n in SYMBOLS.items()}},
              "nominal_charges": charge_scores(z_nom, numbers, z_ref, dp_nom, dp_dft, cells),
              "dft_born_linear": charge_scores(
                  z_ref, numbers, z_ref, born_linear_delta_p(test, first), dp_dft, cells),
              "delta_p_chance_rmse_uC_per_cm2": UC_PER_CM2 * chance_rmse(cells),
              "rows": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    latent_model = args.model
    for name in ([] if args.model else args.variants):
        trainer, seconds = train(name, options, (fit, valid), args)
        pred = predict(trainer.model, test)
        row = {"variant": name, "epochs": trainer.epoch, "seconds": seconds,
               "energy_rmse_meV_per_atom": 1000 * rmse(
                   pred["energy"], [f.labels["energy"] / len(f.atoms) for f in test]),
               "forces_rmse": rmse(pred["forces"],
                                   np.concatenate([f.labels["forces"] for f in test])),
               "model": trainer.model.config}
        if trainer.model.has_charges:
            p_ref_model = predict(trainer.model, [first])["polarization"][0]
            dp_model = delta_p(pred["polarization"], p_ref_model, cells)
            row.update(charge_scores(pred["born_charges"], numbers, z_ref, dp_model, dp_dft,
                                     cells))
            for z, n in SYMBOLS.items():
                row[f"mean_charge_{n}"] = float(pred["charges"][numbers == z].mean())
            latent_model = args.work / name / "model.pt"
        result["rows"].append(row)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{name}: {row['epochs']} epochs in {seconds:.0f} s", flush=True)
    if latent_model is not None:
        ps = result["spontaneous_polarization"] = spontaneous_polarization(latent_model, first)
        print(f"P_s of the first snapshot: model {np.round(ps['model_uC_per_cm2'], 2)}, DFT "
              f"Z* x displacement {np.round(ps['dft_born_linear_uC_per_cm2'], 2)} µC/cm²",
              flush=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if latent_model is not None and args.md_periods > 0:
        result["hysteresis"] = {"amplitude_MV_per_cm": 100 * args.amplitude,
                                "period_fs": args.period_fs, "periods": args.md_periods,
                                "temperature_K": args.temperature,
                                "model": str(latent_model),
                                **hysteresis(latent_model, first, args)}
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("| variant | epochs | E RMSE meV/atom | F RMSE eV/Å | Z* RMSE e (rel.) "
          "| ΔP RMSE µC/cm² (corr.) | <q_Ba>, <q_Ti>, <q_O> e |")
    print("|---|---|---|---|---|---|---|")
    for r in result["rows"] + [{"variant": "nominal charges", **result["nominal_charges"]},
                               {"variant": "DFT Z* x displacement",
                                **result["dft_born_linear"]}]:
        ef = (f"{r['epochs']} | {r['energy_rmse_meV_per_atom']:.2f} | {r['forces_rmse']:.4f}"
              if "epochs" in r else "– | – | –")
        zc = (f"{r['born_rmse']:.3f} ({100 * r['born_rrmse']:.0f} %) | "
              f"{r['delta_p_rmse_uC_per_cm2']:.2f} ({r['delta_p_correlation']:.2f})"
              if "born_rmse" in r else "– | –")
        q = (", ".join(f"{r[f'mean_charge_{n}']:+.2f}" for n in ("Ba", "Ti", "O"))
             if "mean_charge_O" in r else "–")
        print(f"| {r['variant']} | {ef} | {zc} | {q} |")
    print(f"DFT: std of Z* components {result['dft']['born_std']:.3f} e, of Delta P "
          f"{result['dft']['delta_p_std_uC_per_cm2']:.2f} µC/cm² (an error spread over the "
          f"quantum: {result['delta_p_chance_rmse_uC_per_cm2']:.2f}); mean Z* "
          + "; ".join(f"{n} {result['dft'][f'mean_born_{n}']}" for n in SYMBOLS.values()))
    if "hysteresis" in result:
        h = result["hysteresis"]
        print(f"hysteresis: P_r {h['remanent_uC_per_cm2']:.2f} µC/cm², E_c "
              f"{h['coercive_MV_per_cm']:.2f} MV/cm, P_z range {h['p_range_uC_per_cm2']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
