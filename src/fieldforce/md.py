"""Molecular dynamics in an external electric field, on ASE's integrators.

``run_md(config)`` runs one simulation described by a config dict (the ``fieldforce md``
YAML file). Keys (times in fs, temperatures in K, fields in V/Å):

=====================  ========  ==========================================================
key                    default   meaning
=====================  ========  ==========================================================
structure              required  structure file ASE can read (first frame is used)
model                  required  fieldforce model file
output                 required  output directory
steps                  required  total number of MD steps (a resumed run continues to it)
ensemble               required  ``nve``, ``langevin``, ``nvt-berendsen``, ``bussi`` or
                                 ``nose-hoover`` (ASE's NoseHooverChainNVT)
field                  none      a field config (``ExternalField.from_config``): static,
                                 ramp, sinusoid, pulse, point_charge or grid
temperature_K          0         thermostat target (required > 0 for thermostats) and
                                 temperature of the initial Maxwell–Boltzmann velocities;
                                 with 0 the structure file's momenta are used (or rest)
friction_per_fs        0.01      Langevin friction
thermostat_time_fs     100       relaxation time of Berendsen/Bussi, damping of Nose–Hoover
timestep_fs            0.5       time step
write_interval         10        steps between trajectory frames and log lines
write_born_charges     false     also write the Born charges of every frame (latent-charge
                                 models; extra backward passes on the written steps)
seed                   0         random seed (velocities, Langevin noise)
device                 cpu       torch device of the model
=====================  ========  ==========================================================

Outputs in ``output/``: ``trajectory.xyz`` (extxyz, appended every ``write_interval``
steps: positions, momenta (so velocities), forces, ``energy``, ``dipole``, ``time_fs``,
``step`` and the field: ``efield`` [3] in info for a uniform field, per-atom
``atom_efield`` [N, 3] for a non-uniform one), ``md.log`` (a text table) and, at the end,
``summary.json`` (written atomically).

Latent-charge models add per atom ``charges`` [N] e and, with ``write_born_charges``,
``born_charges`` [N, 9] e (Z*_{i,ab} = V dP_a/dr_ib row-major, the canonical label), from
which the polarization current J = sum_i Z*_i v_i follows
(:func:`fieldforce.analysis.polarization_current`). In a periodic cell they also add
``polarization`` [3] e/Å², followed continuously along the run: a
:class:`~fieldforce.electrostatics.PolarizationTracker` on the latent charges after every
step puts each atom's phase on the branch nearest the previous step's, so P(t) has no
quantum jumps when an atom crosses the cell boundary (the default branch of the
calculator's ``polarization`` has them). ``dipole`` is then the cell dipole V P on that
same branch, and ``md.log`` gets P in e/Å² and µC/cm².

Energy. The potential energy is the electric enthalpy U(R, E) = U0 - mu.E - 1/2 E.alpha.E
(including the field terms). With a static field (uniform or not), NVE conserves
Epot + Ekin; with a time-dependent field it does not (the field does work), and the
reported drift then measures that work, not an integration error. ``md.log``'s field
columns are the uniform field, or the mean of the per-atom fields for a non-uniform one.

Restart. ``resume=True`` continues from the last frame of ``trajectory.xyz`` (positions,
momenta, step and time, to the file's 1e-8 precision) up to ``steps`` in total, appending.
The polarization continues on its branch: the MD never wraps positions, so the tracked
branch is s(t) - round(s(0)) (s fractional coordinates, frame 0 of the file), rebuilt from
the first and last frames and checked against the last frame's recorded polarization.
Thermostat internal state (Nose–Hoover chain variables) is not saved and restarts at zero;
the Langevin noise is reseeded from (seed, step). Without ``resume``, an existing
trajectory is never overwritten.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fieldforce.data.atomic import write_json
from fieldforce.errors import ConfigError, DataError
from fieldforce.md_polarization import TrackedPolarization, check_branch, resumed_branch
from fieldforce.units import UC_PER_CM2

__all__ = ["run_md", "ENSEMBLES", "DEFAULTS"]

ENSEMBLES = ("nve", "langevin", "nvt-berendsen", "bussi", "nose-hoover")
REQUIRED = ("structure", "model", "output", "steps", "ensemble")
DEFAULTS: dict[str, Any] = {"field": None, "temperature_K": 0.0, "friction_per_fs": 0.01,
                            "thermostat_time_fs": 100.0, "timestep_fs": 0.5,
                            "write_interval": 10, "write_born_charges": False, "seed": 0,
                            "device": "cpu"}
LOG_HEADER = ("# time_fs  Epot_eV  Ekin_eV  Etot_eV  T_K  dipole_x  dipole_y  dipole_z"
              "  field_x  field_y  field_z  (e*A, V/A)\n")
LOG_HEADER_POLARIZATION = (LOG_HEADER[:-len("  (e*A, V/A)\n")]
                           + "  P_x  P_y  P_z  P_x  P_y  P_z  (e*A, V/A, P: e/A^2 then uC/cm^2)\n")


def _number(config: dict, key: str, integer: bool = False, minimum: float | None = None,
            strict: bool = False) -> float | int:
    value = config[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = math.isfinite(value) and (minimum is None or (value > minimum if strict
                                                           else value >= minimum))
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ConfigError(f"md config key {key!r}: expected {kind}{bound}, got {value!r}")
    return int(value) if integer else float(value)


def check_config(config: dict, base_dir: str | Path | None = None) -> dict:
    """The config with defaults filled in, paths resolved and values checked."""
    if not isinstance(config, dict):
        raise ConfigError(f"an md config must be a mapping of keys to values, got "
                          f"{type(config).__name__}")
    unknown = [k for k in config if k not in REQUIRED and k not in DEFAULTS]
    if unknown:
        raise ConfigError(f"unknown md config key {unknown[0]!r}; allowed keys: "
                          f"{', '.join(REQUIRED + tuple(DEFAULTS))}")
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise ConfigError(f"md config is missing the required key {missing[0]!r}")
    c = {**DEFAULTS, **config}
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    for key in ("structure", "model", "output"):
        if not isinstance(c[key], (str, os.PathLike)):
            raise ConfigError(f"md config key {key!r}: expected a path, got {c[key]!r}")
        path = Path(c[key]).expanduser()
        c[key] = Path(os.path.normpath(path if path.is_absolute() else base / path))
    for key in ("structure", "model"):
        if not c[key].is_file():
            raise DataError(f"no such file (md config key {key!r})", path=str(c[key]))
    if c["ensemble"] not in ENSEMBLES:
        raise ConfigError(f"md config key 'ensemble': expected one of {', '.join(ENSEMBLES)}, "
                          f"got {c['ensemble']!r}")
    c["steps"] = _number(c, "steps", integer=True, minimum=0)
    c["write_interval"] = _number(c, "write_interval", integer=True, minimum=1)
    c["seed"] = _number(c, "seed", integer=True, minimum=0)
    c["temperature_K"] = _number(c, "temperature_K", minimum=0)
    for key in ("timestep_fs", "friction_per_fs", "thermostat_time_fs"):
        c[key] = _number(c, key, minimum=0, strict=True)
    if not isinstance(c["write_born_charges"], bool):
        raise ConfigError(f"md config key 'write_born_charges': expected true or false, got "
                          f"{c['write_born_charges']!r}")
    if c["ensemble"] != "nve" and c["temperature_K"] <= 0:
        raise ConfigError(f"md config key 'temperature_K': the {c['ensemble']} thermostat "
                          "needs a target temperature > 0 K")
    if c["field"] is not None:
        from fieldforce.fields import ExternalField

        c["field"] = ExternalField.from_config(c["field"], base)
    return c


def _integrator(c: dict, atoms, rng: np.random.Generator):
    from ase import units
    from ase.md.bussi import Bussi
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.nvtberendsen import NVTBerendsen
    from ase.md.verlet import VelocityVerlet

    dt, temp, tau = c["timestep_fs"] * units.fs, c["temperature_K"], c["thermostat_time_fs"]
    if c["ensemble"] == "nve":
        return VelocityVerlet(atoms, timestep=dt)
    if c["ensemble"] == "langevin":
        return Langevin(atoms, timestep=dt, temperature_K=temp,
                        friction=c["friction_per_fs"] / units.fs, fixcm=False, rng=rng)
    if c["ensemble"] == "nvt-berendsen":
        return NVTBerendsen(atoms, timestep=dt, temperature_K=temp, taut=tau * units.fs)
    if c["ensemble"] == "bussi":
        return Bussi(atoms, timestep=dt, temperature_K=temp, taut=tau * units.fs, rng=rng)
    return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=temp, tdamp=tau * units.fs)


def _read_structure(path: Path):
    import ase.io

    try:
        return ase.io.read(path, index=0)
    except Exception as exc:  # noqa: BLE001 - ASE raises many types on bad files
        raise DataError(f"cannot read a structure ({type(exc).__name__}: {exc})",
                        path=str(path)) from None


def _last_frame(path: Path):
    import ase.io

    try:
        atoms = ase.io.read(path, index=-1, format="extxyz")
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read the last frame to resume from ({type(exc).__name__}: "
                        f"{exc})", path=str(path)) from None
    for key in ("step", "time_fs"):
        if key not in atoms.info:
            raise DataError("the last frame has no info key to resume from; was it written "
                            "by fieldforce md?", path=str(path), key=key)
    if "momenta" not in atoms.arrays:
        raise DataError("the last frame has no momenta to resume from", path=str(path),
                        key="momenta")
    return atoms


def _initial_velocities(atoms, c: dict) -> None:
    from ase.md import velocitydistribution as vd

    if c["temperature_K"] <= 0:
        return  # keep the structure's momenta (zero if it had none)
    rng = np.random.default_rng(c["seed"])
    # ASE 3.29 renamed MaxwellBoltzmannDistribution to thermalize_momenta
    thermalize = getattr(vd, "thermalize_momenta", vd.MaxwellBoltzmannDistribution)
    thermalize(atoms, temperature_K=c["temperature_K"], rng=rng)
    vd.Stationary(atoms)
    if not atoms.pbc.any():
        vd.ZeroRotation(atoms)


def _mean_field(calc) -> np.ndarray:
    value = np.asarray(calc.results["efield"], dtype=float)
    return value if value.ndim == 1 else value.mean(axis=0)


def _dipole(calc) -> np.ndarray:
    """The model's dipole [3] e·Å; NaN for models without one (short-range only)."""
    return np.array(calc.results.get("dipole", np.full(3, np.nan)), dtype=float)


def _frame(atoms, step: int, time_fs: float, polarization: np.ndarray | None = None):
    """A copy of ``atoms`` with the current results as plain extxyz keys (no calculator).

    info: step, time_fs, energy (eV), dipole [3] e·Å (V P for a tracked ``polarization``),
    efield [3] V/Å (uniform fields), polarization [3] e/Å² (when given); arrays: momenta
    (from ``atoms``), forces [N, 3] eV/Å, atom_efield [N, 3] V/Å (non-uniform), charges [N]
    e and born_charges [N, 9] e (latent-charge models, when computed).
    """
    calc, out = atoms.calc, atoms.copy()
    out.calc = None
    out.info = {}  # the input file's tags (e.g. its DFT label metadata) do not apply here
    dipole = _dipole(calc) if polarization is None else polarization * atoms.get_volume()
    out.info.update(step=int(step), time_fs=float(time_fs),
                    energy=float(calc.results["energy"]), dipole=dipole)
    if polarization is not None:
        out.info["polarization"] = np.array(polarization, dtype=float)
    field = np.asarray(calc.results["efield"], dtype=float)
    if field.ndim == 1:
        out.info["efield"] = field.copy()
    else:
        out.arrays["atom_efield"] = field.copy()
    out.arrays["forces"] = calc.results["forces"].copy()
    if "charges" in calc.results:
        out.arrays["charges"] = calc.results["charges"].copy()
    if "born_charges" in calc.results:
        out.arrays["born_charges"] = calc.results["born_charges"].reshape(len(atoms), 9).copy()
    return out


def _recorded(atoms, key: str):
    """A value ``fieldforce md`` wrote into a frame (ASE moves some keys to a calculator)."""
    if key in atoms.info:
        return atoms.info[key]
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    return results.get(key)


@contextlib.contextmanager
def _threads_for(n_atoms: int):
    """One torch thread for small systems: intra-op threads only add overhead there
    (a water dimer step ran up to 20x slower with 2 threads on a busy machine)."""
    threads = torch.get_num_threads()
    if n_atoms < 300:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)




def run_md(config: dict, base_dir: str | Path | None = None, resume: bool = False,
           progress: bool = True) -> dict:
    """Run the MD simulation of ``config`` (see the module docstring); returns the summary.

    ``base_dir`` resolves relative paths (the directory of the YAML file; default: the
    working directory). Summary keys: ``steps_done`` (this call), ``step`` (total reached),
    ``time_fs``, ``wall_time_s``, ``ns_per_day``, ``mean_temperature_K`` (over the steps of
    this call), ``energy_drift_eV_per_atom_per_ps`` (NVE only: slope of Epot + Ekin),
    ``energy_conserved`` (NVE with no field or a static one),
    ``mean_polarization_e_per_A2`` and ``mean_polarization_uC_per_cm2`` ([3], over the
    steps of this call; periodic latent-charge models, else None) and the settings.
    """
    import ase.io
    from tqdm import tqdm

    from fieldforce.calculator import FieldForceCalculator
    from fieldforce.fields import GriddedField, PointChargeField, UniformField

    c = check_config(config, base_dir)
    out_dir: Path = c["output"]
    traj_path, log_path = out_dir / "trajectory.xyz", out_dir / "md.log"
    dt_fs = c["timestep_fs"]
    recorded_p = None
    if resume and traj_path.is_file() and traj_path.stat().st_size > 0:
        atoms = _last_frame(traj_path)
        start_step, time_fs = int(atoms.info["step"]), float(atoms.info["time_fs"])
        recorded_p = _recorded(atoms, "polarization")
        fresh = False
    else:
        if traj_path.exists() and not resume:
            raise ConfigError(f"{traj_path} already exists; pass --resume (resume=True) to "
                              "continue it, or choose a new output directory")
        atoms = _read_structure(c["structure"])
        _initial_velocities(atoms, c)
        start_step, time_fs, fresh = 0, 0.0, True
    for key in ("step", "time_fs", "energy", "dipole", "efield", "polarization"):
        atoms.info.pop(key, None)
    for key in ("forces", "atom_efield", "charges", "born_charges"):  # not carried over
        atoms.arrays.pop(key, None)

    calc = FieldForceCalculator(c["model"], efield=c["field"], time_fs=time_fs,
                                device=c["device"])
    if c["write_born_charges"] and not calc.predicts_charges:
        raise ConfigError(f"md config key 'write_born_charges': the "
                          f"{getattr(calc.model, 'family', '?')!r} model predicts no charges, "
                          "so it has no Born charges; use a latent-charge model or set it false")
    out_dir.mkdir(parents=True, exist_ok=True)
    calc.compute_born_charges = c["write_born_charges"] and fresh  # for frame 0
    atoms.calc = calc
    tracked = None
    if calc.predicts_charges and bool(atoms.pbc.any()):
        reference = None if fresh else resumed_branch(traj_path, atoms)
        tracked = TrackedPolarization(reference)
        if reference is not None and recorded_p is not None:
            check_branch(traj_path, atoms, reference, recorded_p)
    rng = np.random.default_rng([c["seed"], start_step])
    dyn = _integrator(c, atoms, rng)
    n_atoms = len(atoms)

    def state() -> tuple[float, float, float]:
        epot = atoms.get_potential_energy()  # at calc.time_fs
        return epot, atoms.get_kinetic_energy(), atoms.get_temperature()

    def record(step: int, t: float, log) -> None:
        epot, ekin, temp = state()
        if c["write_born_charges"] and "born_charges" not in calc.results:
            calc.get_property("born_charges", atoms)
        p = None if tracked is None else tracked.value
        mu = _dipole(calc) if p is None else p * atoms.get_volume()
        row = (f"{t:12.3f} {epot:16.6f} {ekin:12.6f} {epot + ekin:16.6f} {temp:10.2f} "
               + " ".join(f"{x:11.6f}" for x in mu) + " "
               + " ".join(f"{x:11.6f}" for x in _mean_field(calc)))
        if p is not None:
            row += (" " + " ".join(f"{x:15.8e}" for x in p) + " "
                    + " ".join(f"{x:12.6f}" for x in p / UC_PER_CM2))
        log.write(row + "\n")
        log.flush()
        ase.io.write(traj_path, _frame(atoms, step, t, p), format="extxyz", append=True)

    times, etot, temps = [], [], []
    wall0 = time.perf_counter()
    with open(log_path, "a" if not fresh else "w") as log, tqdm(
            total=c["steps"], initial=min(start_step, c["steps"]), disable=not progress,
            unit="step", desc="md") as bar, _threads_for(n_atoms):
        if fresh:
            log.write(LOG_HEADER if tracked is None else LOG_HEADER_POLARIZATION)
            if tracked is not None:
                state()
                tracked.update(atoms, calc.results["charges"], count=False)
            record(0, time_fs, log)
        step, t0 = start_step, time_fs
        while step < c["steps"]:
            # The forces at the current positions and time are cached; the step's new
            # forces are computed at the new time (FieldForceCalculator.advance_time).
            atoms.get_forces(md=True)
            time_fs = t0 + (step + 1 - start_step) * dt_fs
            calc.advance_time(time_fs)
            write = (step + 1) % c["write_interval"] == 0 or step + 1 == c["steps"]
            calc.compute_born_charges = c["write_born_charges"] and write
            try:
                dyn.step()
            except DataError as err:  # e.g. overlapping atoms: say when, and what it means
                raise DataError(
                    f"MD step {step + 1} (t = {time_fs:g} fs): {err.reason} The simulation "
                    "left the physical region (the model outside its training data, or too "
                    "long a timestep); the frames written so far are intact.",
                    path=str(traj_path)) from err
            dyn.nsteps += 1
            step += 1
            epot, ekin, temp = state()
            times.append(time_fs)
            etot.append(epot + ekin)
            temps.append(temp)
            if tracked is not None:
                tracked.update(atoms, calc.results["charges"])
            if write:
                record(step, time_fs, log)
                bar.set_postfix(T=f"{temp:.0f}K", Epot=f"{epot:.3f}eV", refresh=False)
            bar.update(1)
    wall = time.perf_counter() - wall0

    steps_done = max(step - start_step, 0)
    static = c["field"] is None or isinstance(c["field"], (UniformField, PointChargeField,
                                                           GriddedField))
    drift = None
    if c["ensemble"] == "nve" and len(times) >= 2:
        slope = np.polyfit(np.asarray(times), np.asarray(etot), 1)[0]  # eV/fs
        drift = float(slope * 1000.0 / n_atoms)
    simulated_ns = steps_done * dt_fs * 1e-6
    mean_p = tracked.total / tracked.count if tracked is not None and tracked.count else None
    summary = {
        "steps_done": steps_done, "step": step, "time_fs": time_fs,
        "wall_time_s": wall,
        "ns_per_day": simulated_ns / (wall / 86400.0) if wall > 0 and steps_done else None,
        "mean_temperature_K": float(np.mean(temps)) if temps else None,
        "energy_drift_eV_per_atom_per_ps": drift,
        "energy_conserved": c["ensemble"] == "nve" and static,
        "mean_polarization_e_per_A2": mean_p.tolist() if mean_p is not None else None,
        "mean_polarization_uC_per_cm2": ((mean_p / UC_PER_CM2).tolist() if mean_p is not None
                                         else None),
        "write_born_charges": c["write_born_charges"],
        "ensemble": c["ensemble"], "timestep_fs": dt_fs, "n_atoms": n_atoms,
        "temperature_K": c["temperature_K"], "seed": c["seed"],
        "field": c["field"].to_dict() if c["field"] is not None else None,
        "structure": str(c["structure"]), "model": str(c["model"]),
        "trajectory": str(traj_path), "log": str(log_path),
    }
    write_json(summary, out_dir / "summary.json", indent=2)
    return summary
