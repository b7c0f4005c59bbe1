"""The demo: train -> MD -> analyse, on the data the package ships (``fieldforce demo``).

1. :func:`train_stage` — train the response model on the shipped water data (PBE0 labels:
   energies, forces, dipoles, polarizabilities, 90 frames at finite fields), holding out a
   test split, and score it on the held-out frames;
2. :func:`md_stage` — molecular dynamics of a water trimer in a static 0.1 V/Å field;
3. :func:`spectrum_stage` — the dipole against time and the IR spectrum from the dipole
   autocorrelation, read back from the trajectory through its frame schema;
4. :func:`write_summary` — ``summary.md`` saying what happened, with the numbers.

:func:`run_demo` chains them into ``output/`` (default ``runs/demo/``). The stages are
plain functions of settings and paths, so other pipelines (active learning: train, run MD
until the model is unsure, label, retrain) reuse them. ``quick`` shrinks every stage (a
check of the pipeline, not a result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fieldforce import units

FIELD = 0.1  # V/Å along z for the MD
TEMPERATURE_K = 300.0
TIMESTEP_FS = 1.0  # with the thermostat, stable for flexible water (O-H period ~9 fs)
#: how the report names the weights training kept (``training.keep``)
KEPT = {"last": "weights at the end of the learning-rate schedule",
        "best": "weights of the lowest validation loss"}


@dataclass
class DemoResult:
    """What the demo produced: the training result, the MD summary and config, the
    spectrum, the dipole series and the wall times of the stages (s)."""

    training: dict
    md: dict
    spectrum: Any
    times: np.ndarray
    dipoles: np.ndarray
    seconds: dict[str, float]


def train_stage(output: Path, epochs: int | None, steps: int | None, progress: bool) -> dict:
    """Train the response model on ``fieldforce:water`` (10 % validation, 15 % test) with
    the package's default architecture, loss weights and schedule; ``epochs`` / ``steps``
    cap the run (None: the training defaults)."""
    from fieldforce.training import load_config, train

    training: dict = {"seed": 0}
    if epochs is not None:
        training["max_epochs"] = epochs
    if steps is not None:
        training["max_steps"] = steps
    config = load_config({
        "data": {"train": "fieldforce:water", "valid_fraction": 0.1, "test_fraction": 0.15},
        "model": {},
        "training": training,
        "output": str(output),
    })
    return train(config, progress=progress, overwrite=True)  # a previous demo is replaced


def md_stage(output: Path, model_path: Path, picoseconds: float, progress: bool) -> dict:
    """Langevin MD of the first shipped water trimer at 300 K in the static field; a
    previous demo's MD in ``output/md`` is replaced."""
    from ase.io import write

    from fieldforce.datasets import load_water
    from fieldforce.simulation import run_md

    md_dir = output / "md"
    structure = output / "trimer.xyz"
    write(structure, load_water("trimer")[0].atoms)
    config = {"structure": str(structure), "model": str(model_path),
              "field": {"type": "static", "vector": [0.0, 0.0, FIELD]},
              "ensemble": "langevin", "temperature_K": TEMPERATURE_K, "friction_per_fs": 0.002,
              "timestep_fs": TIMESTEP_FS, "steps": int(round(picoseconds * 1000 / TIMESTEP_FS)),
              "write_interval": 2, "seed": 0, "output": str(md_dir)}
    if (md_dir / "trajectory.xyz").exists():  # a previous demo: start afresh
        for f in md_dir.iterdir():
            f.unlink()
    summary = run_md(config, resume=False, progress=progress)
    return {"config": config, "summary": summary, "trajectory": md_dir / "trajectory.xyz"}


def dipole_series(trajectory: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times [T] fs, dipoles [T, 3] e·Å) of a ``fieldforce md`` trajectory."""
    from fieldforce.analysis.trajectory import frame_series, frame_times, read_trajectory

    frames = read_trajectory(trajectory)
    return frame_times(frames, trajectory), frame_series(frames, "dipole", trajectory, (3,))


def plot_dipole(times: np.ndarray, dipoles: np.ndarray, path: Path) -> None:
    """The dipole components (D) against time (ps)."""
    from matplotlib.figure import Figure

    from fieldforce.data.atomic import save_figure

    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    for k, name in enumerate("xyz"):
        ax.plot(times / 1000, dipoles[:, k] / units.DEBYE, lw=0.7, label=f"$\\mu_{name}$")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("dipole (D)")
    ax.set_title(f"water trimer, {TEMPERATURE_K:.0f} K, static field {FIELD} V/Å along z",
                 fontsize=9)
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def spectrum_stage(output: Path, trajectory: Path):
    """(spectrum, times, dipoles): the dipole plot and the IR spectrum (40 cm⁻¹ Gaussian
    broadening) of the trajectory, both written as PNG into ``output``."""
    from fieldforce.analysis import ir_spectrum

    times, dipoles = dipole_series(trajectory)
    plot_dipole(times, dipoles, output / "dipole_vs_time.png")
    dt = float(times[1] - times[0])
    spectrum = ir_spectrum(dipoles, dt, method="derivative", broadening_cm=40.0)
    spectrum.plot(output / "ir_spectrum.png", title="water trimer in 0.1 V/Å, 300 K (model)")
    return spectrum, times, dipoles


PEAK_OPTIONS = {"min_height": 0.1, "min_separation_cm": 150}


def run_demo(output: Path = Path("runs/demo"), epochs: int | None = None,
             steps: int | None = None, md_ps: float = 5.0, quick: bool = False,
             progress: bool = True, echo=print) -> DemoResult:
    """Train, run MD, analyse; everything in ``output`` with a ``summary.md``.

    ``epochs`` / ``steps`` cap the training (None: the training defaults, 10,000 optimizer
    steps with a cosine schedule); ``quick``: 3 epochs and 0.1 ps, a pipeline check.

    ``echo`` prints the progress report (``print``; a no-op function to be silent).
    """
    from fieldforce.training import format_metrics

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    epochs, picoseconds = (3, 0.1) if quick else (epochs, md_ps)
    t0 = time.perf_counter()

    echo("== 1. Training the response model on the shipped water data ==", flush=True)
    result = train_stage(output / "training", epochs, None if quick else steps, progress)
    t_train = time.perf_counter() - t0
    echo(format_metrics(result["test"], "held-out test set"), flush=True)

    echo(f"\n== 2. {picoseconds:g} ps of MD: water trimer, {TEMPERATURE_K:.0f} K, {FIELD} V/Å "
         "along z ==", flush=True)
    md = md_stage(output, output / "training" / "model.pt", picoseconds, progress)
    t_md = time.perf_counter() - t0 - t_train

    echo("\n== 3. IR spectrum from the dipole autocorrelation ==", flush=True)
    spectrum, times, dipoles = spectrum_stage(output, md["trajectory"])
    echo(spectrum.table(**PEAK_OPTIONS))

    demo = DemoResult(training=result, md=md, spectrum=spectrum, times=times,
                      dipoles=dipoles, seconds={"training": t_train, "md": t_md})
    write_summary(demo, output / "summary.md")
    echo(f"\nwrote {output}/summary.md, parity plots, dipole_vs_time.png, ir_spectrum.png "
         f"({time.perf_counter() - t0:.0f} s in all)")
    return demo


def write_summary(demo: DemoResult, path: Path) -> None:
    """``summary.md``: what happened, with the numbers (atomically)."""
    from fieldforce.data.atomic import atomic_path
    from fieldforce.training import format_metrics

    result, md = demo.training, demo.md
    cfg = md["config"]
    mean_mu = demo.dipoles.mean(0)
    dt = float(demo.times[1] - demo.times[0])
    along = mean_mu[2] / max(float(np.linalg.norm(mean_mu)), 1e-12)
    alignment = (f"its component along the field is {mean_mu[2] / units.DEBYE:+.3f} D "
                 f"({100 * along:.0f} % of its length)"
                 + (": the field orients and polarizes the cluster" if along > 0.5 else
                    ": no strong alignment along the field over this run"))
    temperature = md["summary"].get("mean_temperature_K", float("nan"))
    domain = md["summary"].get("domain") or {}
    if domain.get("warnings"):
        extrapolation = (f" The model left its training domain during the run (largest "
                         f"extrapolation {domain['max_extrapolation']:.1f} training standard "
                         f"deviations, warning above {domain['extrapolation_threshold']:g}): "
                         f"{domain['warnings'][0]}. See `md/md.log`.")
    else:
        extrapolation = " The run stayed inside the model's training domain."
    lines = [
        "# fieldforce demo: water in an electric field",
        "",
        "## What happened",
        "",
        f"1. **Training.** The response model U(R, E) = U0(R) - mu(R)·E - 1/2 E·alpha(R)·E "
        f"(SOAP / lambda-SOAP features, per-species networks, one message-passing layer) "
        f"was trained on "
        f"{result['n_train']} frames of the shipped water data (PBE0/aug-cc-pVDZ monomers, "
        f"dimers and trimers, some at fields up to 0.1 V/Å) on energies, forces, dipoles and "
        f"polarizabilities, with {result['n_valid']} frames for validation (kept: the "
        f"{KEPT.get(result.get('kept'), 'final weights')}) and {result['n_test']} held "
        f"out. {result['epochs']} epochs, {result.get('steps', '?')} optimizer steps "
        f"({result['stopped_by']}), "
        f"{demo.seconds['training']:.0f} s.",
        "",
        "2. **Held-out errors** (relative RMSE = RMSE / spread of the DFT labels; energies "
        "per atom):",
        "",
        format_metrics(result["test"], "held-out test set"),
        "",
        "Parity plots: `training/parity_test_*.png`; learning curve: "
        "`training/learning_curve.png`.",
        "",
        f"3. **Molecular dynamics.** A water trimer, Langevin thermostat at 300 K (friction "
        f"{cfg['friction_per_fs']} /fs), timestep {cfg['timestep_fs']} fs, "
        f"{cfg['steps']} steps ({cfg['steps'] * cfg['timestep_fs'] / 1000:g}"
        f" ps) in a static field of {FIELD} V/Å (= {FIELD * 100:g} MV/cm) along z; "
        f"{demo.seconds['md']:.0f} s wall time. Mean temperature {temperature:.0f} K. "
        f"The mean dipole is {_vec(mean_mu / units.DEBYE)} D; {alignment}. Plot: "
        f"`dipole_vs_time.png`; trajectory: `md/trajectory.xyz`.{extrapolation}",
        "",
        f"4. **IR spectrum** from the autocorrelation of the dipole derivative (frames every "
        f"{dt:g} fs, Hann window, 40 cm⁻¹ Gaussian broadening): `ir_spectrum.png`.",
        "",
        demo.spectrum.table(**PEAK_OPTIONS),
        "",
        "For orientation, gas-phase water absorbs near 1595 (bend), 3657 and 3756 cm⁻¹ "
        "(stretches), and hydrogen-bonded clusters show red-shifted OH stretches and "
        "librations below 1000 cm⁻¹. The shipped DFT data are small (620 frames), so treat "
        "the peak positions as a demonstration of the pipeline, not converged spectroscopy.",
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))


def _vec(v) -> str:
    return "[" + ", ".join(f"{x:+.3f}" for x in np.ravel(v)) + "]"


__all__ = ["DemoResult", "dipole_series", "md_stage", "run_demo", "spectrum_stage",
           "train_stage", "write_summary"]
