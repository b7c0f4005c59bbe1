"""IR spectrum of liquid water from NVT MD with a trained latent-charge model.

    python benchmarks/latent_liquid_water.py --epochs 300          # trains the model
    python benchmarks/latent_liquid_ir.py --ps 20 --threads 2      # this script
    python benchmarks/latent_liquid_ir.py --ps 0.2 --equilibrate-ps 0.05   # quick check

The model is the latent-charge model that benchmarks/latent_liquid_water.py trains
(``--model``; default its work directory) on the LES liquid-water data (RPBE-D3,
energies and forces only). MD (``fieldforce md``): 192 atoms from the first frame of
../shared/data/lesfit_liquid_water_RPBE-D3.xyz, Bussi thermostat at 300 K with a weak
coupling (``--thermostat-fs``, 1 ps) so the dynamics stays close to NVE, ``--timestep-fs``
(0.5 fs), Born charges and velocities written every ``--sample-fs`` (2 fs). The run
resumes from its trajectory when interrupted (run it again with the same arguments).

Spectrum: the polarization-current autocorrelation <J(0).J(t)> with J = sum_i Z*_i v_i
(``fieldforce.analysis.polarization_current_spectrum``; Hann window over
``--correlation-fs``, harmonic quantum correction at 300 K) after ``--equilibrate-ps``.
The same trajectory's current with fixed TIP3P charges (J = sum q_i v_i) is analysed
alike, to separate the band positions (the dynamics) from the intensities (the
charges). Reported: the maximum in each band against the experimental bands of liquid H2O
(O-H stretch ~3400, H-O-H bend ~1640, libration ~600-700 cm^-1); the absorption
alpha * n of each band (the classical current spectrum, no quantum correction) relative
to the stretch's, maximum and area, against experiment: alpha * n = 4 pi nu k n from
Segelstein's optical constants of liquid water at 25 C (shipped as
``benchmarks/data/water_nk_segelstein1981.txt``, public domain), over the same band
windows, and the maxima of Ray's compilation; the spectrum plotted to
benchmarks/results/latent_liquid_ir.png, and the three absorptions (each normalised to
its stretch's area) side by side in ``*_absorption.png``. Writes
benchmarks/results/latent_liquid_ir.json. A finished trajectory is resumed with no new
steps, so running the command again re-analyses it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: band windows (cm^-1) and the experimental band positions of liquid H2O at 300 K
#: (Bertie & Lan, Appl. Spectrosc. 50, 1047 (1996): 3404, 1643, ~685 cm^-1).
BANDS = {"libration": ((300.0, 1100.0), 685.0), "bend": ((1400.0, 1900.0), 1643.0),
         "stretch": ((2800.0, 4000.0), 3404.0)}
#: the experimental band maxima of the absorption, alpha * n = 4 pi nu k n, relative to the
#: stretch: k at each band's maximum from Ray's compilation of liquid water at 25 C
#: (Appl. Opt. 11, 1836 (1972), table 2: k 0.27 at 2.97 um, 0.12 at 6.1 um, 0.39 at 17 um)
#: and n there from the same paper's dispersion formula (1.291, 1.296, 1.318). A band's
#: maximum of nu k lies above its maximum of k, by little for the narrow bend and stretch
#: and more for the broad libration, so the libration ratio is a lower bound.
EXPERIMENT_NU_K_N = {"libration": 588.2 * 0.39 * 1.318, "bend": 1639.3 * 0.12 * 1.296,
                     "stretch": 3367.0 * 0.27 * 1.291}
#: n and k of liquid water at 25 C, 200-4500 cm^-1 (Segelstein 1981; see the file's header)
SEGELSTEIN = ROOT / "benchmarks" / "data" / "water_nk_segelstein1981.txt"


def experimental_absorption() -> tuple[np.ndarray, np.ndarray]:
    """(wavenumbers cm^-1 ascending, alpha * n = 4 pi nu k n in cm^-1) of liquid water at
    25 C from Segelstein's table."""
    wavelength, n, k = np.loadtxt(SEGELSTEIN, unpack=True)
    nu = 1e4 / wavelength
    order = np.argsort(nu)
    return nu[order], (4 * np.pi * nu * k * n)[order]


def band_heights_and_areas(nu: np.ndarray, y: np.ndarray) -> tuple[dict, dict]:
    """Per band window: the maximum and the area (trapezoid) of ``y`` over ``nu``."""
    height, area = {}, {}
    for name, ((lo, hi), _) in BANDS.items():
        rows = (nu >= lo) & (nu <= hi)
        height[name] = float(y[rows].max())
        area[name] = float(np.trapezoid(y[rows], nu[rows]))
    return height, area


def relative_absorption(spectrum) -> dict:
    """Per band: the maximum and the area of ``spectrum`` (an absorption alpha * n: the
    classical current spectrum, no quantum correction) relative to the stretch's, with
    the experimental ratios next to them: maximum and area from Segelstein's table,
    maximum from Ray's compilation (``experiment_height_ray``)."""
    height, area = band_heights_and_areas(spectrum.frequencies_cm, spectrum.intensity)
    exp_height, exp_area = band_heights_and_areas(*experimental_absorption())
    return {name: {"height": height[name] / height["stretch"],
                   "area": area[name] / area["stretch"],
                   "experiment_height": exp_height[name] / exp_height["stretch"],
                   "experiment_area": exp_area[name] / exp_area["stretch"],
                   "experiment_height_ray": (EXPERIMENT_NU_K_N[name]
                                             / EXPERIMENT_NU_K_N["stretch"])}
            for name in BANDS}


def plot_absorption(path: Path, spectra: dict) -> None:
    """alpha * n of each labelled (nu, y) pair, normalised to the area of its stretch band,
    on one axis (the intensities' comparison: shapes and ratios, not absolute values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = BANDS["stretch"][0]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, (nu, y) in spectra.items():
        rows = (nu >= lo) & (nu <= hi)
        ax.plot(nu, y / np.trapezoid(y[rows], nu[rows]), label=label, lw=1.2)
    ax.set_xlim(200, 4200)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("wavenumber / cm$^{-1}$")
    ax.set_ylabel(r"$\alpha n$, per stretch-band area")
    ax.set_title("liquid water, 300 K: absorption from the polarization current")
    ax.legend(frameon=False)
    fig.tight_layout()
    temporary = path.with_suffix(".tmp.png")
    fig.savefig(temporary, dpi=130)
    plt.close(fig)
    temporary.replace(path)


def band_maxima(spectrum) -> dict:
    """Per band: the maximum (cm^-1, parabolic refinement) and its height, and the
    intensity-weighted mean position over the band window (robust to noise)."""
    nu, y = spectrum.frequencies_cm, spectrum.intensity
    out = {}
    for name, ((lo, hi), experiment) in BANDS.items():
        rows = np.flatnonzero((nu >= lo) & (nu <= hi))
        i = rows[np.argmax(y[rows])]
        shift = 0.0
        if 0 < i < len(y) - 1:
            y0, y1, y2 = y[i - 1:i + 2]
            if y0 - 2 * y1 + y2 < 0:
                shift = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
        position = float(nu[i] + shift * (nu[1] - nu[0]))
        centroid = float((nu[rows] * y[rows]).sum() / y[rows].sum())
        out[name] = {"position_cm": position, "height": float(y[i]), "centroid_cm": centroid,
                     "experiment_cm": experiment, "shift_cm": position - experiment}
    return out


def main() -> None:
    import ase.io
    import torch

    from fieldforce.analysis import ir_spectrum, polarization_current
    from fieldforce.analysis.trajectory import (
        first_frame_at,
        frame_born_charges,
        frame_times,
        frame_velocities,
        read_trajectory,
        uniform_timestep,
    )
    from fieldforce.simulation.md import run_md

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", type=Path,
                        default=Path("/tmp/fieldforce_latent_liquid/latent/model.pt"))
    parser.add_argument("--ps", type=float, default=20.0, help="production length, ps")
    parser.add_argument("--equilibrate-ps", type=float, default=2.0)
    parser.add_argument("--timestep-fs", type=float, default=0.5)
    parser.add_argument("--sample-fs", type=float, default=2.0)
    parser.add_argument("--thermostat-fs", type=float, default=1000.0)
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--correlation-fs", type=float, default=2000.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fieldforce_latent_liquid_ir"))
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "latent_liquid_ir.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.model.exists():
        raise SystemExit(f"{args.model}: no trained model; run "
                         "benchmarks/latent_liquid_water.py first (or pass --model)")
    args.work.mkdir(parents=True, exist_ok=True)
    start = args.work / "start.xyz"
    if not start.exists():
        ase.io.write(start, ase.io.read(args.data_dir / "lesfit_liquid_water_RPBE-D3.xyz",
                                        index=0))
    interval = int(round(args.sample_fs / args.timestep_fs))
    steps = int(round((args.ps + args.equilibrate_ps) * 1000 / args.timestep_fs))
    traj = args.work / "md" / "trajectory.xyz"
    config = {"structure": str(start), "model": str(args.model), "output": str(traj.parent),
              "steps": steps, "timestep_fs": args.timestep_fs, "ensemble": "bussi",
              "temperature_K": args.temperature, "thermostat_time_fs": args.thermostat_fs,
              "write_interval": interval, "write_born_charges": True, "seed": args.seed}
    summary = run_md(config, resume=traj.exists(), progress=True)
    frames = read_trajectory(traj)
    times = frame_times(frames, traj)
    first = first_frame_at(times, args.equilibrate_ps * 1000, traj)
    frames = frames[first:]
    dt = uniform_timestep(times[first:], traj, first)
    # the two currents, once each: J = sum Z* v, and the same trajectory with fixed TIP3P
    # charges (J = sum q v: where the bands sit when the intensities do not come from the
    # latent charges)
    velocities = frame_velocities(frames, traj, first)
    current = polarization_current(frame_born_charges(frames, traj, first), velocities)
    charges = np.where(frames[0].numbers == 8, -0.834, 0.417)
    fixed_current = np.einsum("n,tna->ta", charges, velocities)
    window = min(args.correlation_fs, 0.5 * (len(frames) - 1) * dt)
    spectrum, fixed = (ir_spectrum(j, dt, method="current", max_correlation_fs=window,
                                   temperature=args.temperature)
                       for j in (current, fixed_current))
    spectrum.metadata["current"] = "sum_i Z*_i v_i"
    bands, fixed_bands = band_maxima(spectrum), band_maxima(fixed)
    # intensities: the classical current spectrum is alpha * n itself (the harmonic
    # quantum correction turns C_classical into C_quantum, and alpha * n ∝ omega (1 -
    # exp(-beta hbar omega)) C_quantum = beta hbar omega^2 C_classical), so no correction
    classical = [ir_spectrum(j, dt, method="current", max_correlation_fs=window)
                 for j in (current, fixed_current)]
    absorption, fixed_absorption = (relative_absorption(c) for c in classical)
    absorption_plot = args.out.with_name(args.out.stem + "_absorption.png")
    plot_absorption(absorption_plot, {
        "experiment (Segelstein 1981, 25 °C)": experimental_absorption(),
        "J = sum Z* v, latent model": (classical[0].frequencies_cm, classical[0].intensity),
        "J = sum q v, TIP3P charges": (classical[1].frequencies_cm, classical[1].intensity)})
    plot = args.out.with_suffix(".png")
    spectrum.plot(plot, title="liquid water, latent-charge model (RPBE-D3 data), "
                              "J = sum Z* v")
    result = {"command": " ".join(["python", "benchmarks/latent_liquid_ir.py",
                                   *map(shlex.quote, sys.argv[1:])]),
              "model": str(args.model), "timestep_fs": args.timestep_fs,
              "sample_fs": dt, "production_ps": (times[-1] - times[first]) / 1000,
              "equilibrate_ps": args.equilibrate_ps, "thermostat_fs": args.thermostat_fs,
              "temperature_K": args.temperature,
              "mean_temperature_K_last_call": summary["mean_temperature_K"],
              "md_wall_time_s_last_call": summary["wall_time_s"],
              "ns_per_day_last_call": summary["ns_per_day"],
              "resolution_cm": spectrum.metadata.get("resolution_cm"),
              "bands": bands, "peaks": [vars(p) for p in spectrum.peaks()],
              "bands_tip3p_current": fixed_bands,
              "peaks_tip3p_current": [vars(p) for p in fixed.peaks()],
              "absorption_relative_to_stretch": absorption,
              "absorption_relative_to_stretch_tip3p_current": fixed_absorption,
              "plot": str(plot), "absorption_plot": str(absorption_plot),
              "experiment_absorption": str(SEGELSTEIN.relative_to(ROOT)),
              "spectrum": spectrum.to_dict()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(frames)} frames, {result['production_ps']:.2f} ps, {dt:g} fs apart")
    print("| band | J = sum Z* v: maximum (height), mean / cm^-1 | J = sum q_TIP3P v: "
          "maximum (height), mean / cm^-1 | experiment / cm^-1 |")
    print("|---|---|---|---|")
    for name, b in bands.items():
        f = fixed_bands[name]
        print(f"| {name} | {b['position_cm']:.0f} ({b['height']:.2f}), {b['centroid_cm']:.0f} | "
              f"{f['position_cm']:.0f} ({f['height']:.2f}), {f['centroid_cm']:.0f} | "
              f"{b['experiment_cm']:.0f} |")
    print("| band | absorption maximum / stretch's (area / stretch's): J = sum Z* v | "
          "J = sum q_TIP3P v | experiment: Segelstein maximum (area); Ray's maximum |")
    print("|---|---|---|---|")
    for name, a in absorption.items():
        f = fixed_absorption[name]
        print(f"| {name} | {a['height']:.2f} ({a['area']:.2f}) | {f['height']:.2f} "
              f"({f['area']:.2f}) | {a['experiment_height']:.2f} ({a['experiment_area']:.2f}); "
              f"{a['experiment_height_ray']:.2f} |")
    print(f"wrote {args.out} and {plot}")


if __name__ == "__main__":
    main()
