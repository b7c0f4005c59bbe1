"""Molecular dynamics in an external electric field: ASE's integrators with observers.

``run_md(config)`` runs one simulation described by an ``fieldforce md`` YAML file (the
keys are :class:`MDSettings`; ``fieldforce config md`` prints them with their defaults).
:class:`MDRun` is the same run as an object: build it, :meth:`MDRun.attach` your own
per-step callback with an interval (it may stop the run with
:meth:`MDRun.request_stop`), then :meth:`MDRun.run`. What happens around each step lives
in observers (:mod:`fieldforce.simulation.observers`) attached to ASE's dynamics object:
the polarization tracker, the step statistics, ``md.log``, ``trajectory.xyz`` and the
progress bar. Before each step the run sets the calculator's clock to the time the step
reaches (``FieldForceCalculator.advance_time``), so a time-dependent field is evaluated
at the right time.

Outputs in ``output/``: ``trajectory.xyz`` (extxyz, appended every ``write_interval``
steps and at the last step, in the frame schema of :mod:`fieldforce.data.trajectory`:
positions, momenta (so velocities), ``step``, ``time_fs``, the field (``efield`` [3] in
info for a uniform field, per-atom ``atom_efield`` [N, 3] for a non-uniform one) and every
``property`` output the model declares: energy, forces, dipole, polarizability, charges,
...), ``md.log`` (a text table) and, at the end, ``summary.json`` (written atomically).

Models with charges (latent charges) give per atom ``charges`` [N] e and, with
``write_born_charges``, ``born_charges`` [N, 9] e (Z*_{i,ab} = V dP_a/dr_ib row-major,
the canonical label), from which the polarization current J = sum_i Z*_i v_i follows
(:func:`fieldforce.analysis.polarization_current`). In a periodic cell they also give
``polarization`` [3] e/Å², followed continuously along the run: a
:class:`~fieldforce.electrostatics.PolarizationTracker` on the charges after every step
puts each atom's phase on the branch nearest the previous step's, so P(t) has no quantum
jumps when an atom crosses the cell boundary (the default branch of the calculator's
``polarization`` has them). ``dipole`` is then the cell dipole V P on that same branch,
and ``md.log`` gets P in e/Å² and µC/cm².

Energy. The potential energy is the electric enthalpy U(R, E) = U0 - mu.E - 1/2 E.alpha.E
(including the field terms). With a static field (uniform or not), NVE conserves
Epot + Ekin; with a time-dependent field, or one re-solved as the atoms move, it does not
(the field does work), and the reported drift then measures that work, not an
integration error. ``md.log``'s field columns are the uniform field, or the mean of the
per-atom fields for a non-uniform one.

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
import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from fieldforce.config import Section, option
from fieldforce.data.atomic import refuse_overwriting, write_json
from fieldforce.data.trajectory import frame_value, strip_frame
from fieldforce.errors import ConfigError, DataError
from fieldforce.simulation.observers import (
    Callback,
    DomainObserver,
    LogWriter,
    Observer,
    PolarizationObserver,
    ProgressBar,
    StepStatistics,
    TrajectoryWriter,
)
from fieldforce.simulation.polarization import (
    TrackedPolarization,
    check_branch,
    resumed_branch,
)

__all__ = ["ENSEMBLES", "MDRun", "MDSettings", "run_md"]

ENSEMBLES = ("nve", "langevin", "nvt-berendsen", "bussi", "nose-hoover")


@dataclass(kw_only=True)
class MDSettings(Section):
    """The keys of an ``fieldforce md`` file (times in fs, temperatures in K, fields V/Å)."""

    section: ClassVar[str] = ""  # a whole file
    structure: Path = option(doc="structure file ASE can read (its first frame is used)")
    model: Path = option(doc="fieldforce model file")
    output: Path = option(doc="output directory")
    steps: int = option(doc="total number of MD steps (a resumed run continues to it)",
                        minimum=0)
    ensemble: str = option(doc="nve, langevin, nvt-berendsen, bussi or nose-hoover (ASE's "
                           "NoseHooverChainNVT)", choices=ENSEMBLES)
    field: Any = option(None, "a field config (ExternalField.from_config): static, ramp, "
                        "sinusoid, pulse, point_charge or grid",
                        check=lambda v: isinstance(v, dict) or hasattr(v, "uniform_value"),
                        expected="a field config (a mapping with a 'type' key)")
    temperature_K: float = option(0.0, "thermostat target (> 0 for thermostats) and "
                                  "temperature of the initial Maxwell-Boltzmann velocities; "
                                  "0: the structure file's momenta (or rest)", minimum=0)
    friction_per_fs: float = option(0.01, "Langevin friction, 1/fs", exclusive_minimum=0)
    thermostat_time_fs: float = option(100.0, "relaxation time of Berendsen/Bussi, damping "
                                       "of Nose-Hoover, fs", exclusive_minimum=0)
    timestep_fs: float = option(0.5, "time step, fs", exclusive_minimum=0)
    write_interval: int = option(10, "steps between trajectory frames and log lines",
                                 minimum=1)
    write_born_charges: bool = option(False, "also write the Born charges of every frame "
                                      "(models with charges; extra backward passes on the "
                                      "written steps)")
    seed: int = option(0, "random seed (velocities, Langevin noise)", minimum=0)
    device: str = option("cpu", "torch device of the model")

    def check(self) -> None:
        if self.ensemble != "nve" and self.temperature_K <= 0:
            raise self.invalid("temperature_K", f"a target temperature > 0 K for the "
                                                f"{self.ensemble} thermostat")

    def resolve(self, base_dir: str | Path | None, source: str) -> None:
        """Paths relative to ``base_dir``; the input files must exist; the field built
        (a field config becomes an :class:`~fieldforce.fields.ExternalField`)."""
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        for key in ("structure", "model", "output"):
            path = getattr(self, key)
            setattr(self, key, Path(os.path.normpath(path if path.is_absolute()
                                                     else base / path)))
        for key in ("structure", "model"):
            if not getattr(self, key).is_file():
                raise DataError(f"no such file (md config key {key!r})",
                                path=str(getattr(self, key)))
        if isinstance(self.field, dict):
            from fieldforce.config import context
            from fieldforce.fields import ExternalField

            with context(source, "field"):
                self.field = ExternalField.from_config(self.field, base)


def check_config(config: dict, base_dir: str | Path | None = None,
                 source: str = "md config") -> MDSettings:
    """The md config checked, defaults filled in, paths resolved, the field built."""
    settings = MDSettings.from_dict(config, source=source)
    settings.resolve(base_dir, source)
    return settings


def _integrator(c: MDSettings, atoms, rng: np.random.Generator):
    from ase import units
    from ase.md.bussi import Bussi
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.nvtberendsen import NVTBerendsen
    from ase.md.verlet import VelocityVerlet

    dt, temp, tau = c.timestep_fs * units.fs, c.temperature_K, c.thermostat_time_fs
    if c.ensemble == "nve":
        return VelocityVerlet(atoms, timestep=dt)
    if c.ensemble == "langevin":
        return Langevin(atoms, timestep=dt, temperature_K=temp,
                        friction=c.friction_per_fs / units.fs, fixcm=False, rng=rng)
    if c.ensemble == "nvt-berendsen":
        return NVTBerendsen(atoms, timestep=dt, temperature_K=temp, taut=tau * units.fs)
    if c.ensemble == "bussi":
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
    """The last complete frame of a trajectory to resume from.

    A run killed while writing leaves a partial last frame: it is removed from the file
    (rewritten atomically, with a warning that names the frame and line) and the run
    resumes from the frame before it.
    """
    import io
    import warnings

    import ase.io

    from fieldforce.data.atomic import atomic_path
    from fieldforce.data.extxyz import complete_text

    text, tail = complete_text(path)
    if not text.strip():
        raise DataError("no complete frame to resume from (the first frame is truncated); "
                        "start the run again without --resume in a new output directory",
                        path=str(path))
    try:
        atoms = ase.io.read(io.StringIO(text), index=-1, format="extxyz")
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
    if tail is not None:
        warnings.warn(f"{path}, frame {tail.frame}: line {tail.line}: {tail.message}; "
                      f"resuming from the last complete frame (step {atoms.info['step']}) "
                      "and removing the partial one", stacklevel=3)
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return atoms


def _trim_log(path: Path, time_fs: float, step: int | None = None) -> None:
    """Drop the md.log rows after ``time_fs`` (written before a kill, beyond the frame the
    run resumes from), and the warnings noted after ``step``, atomically; other comment
    lines are kept."""
    import re

    from fieldforce.data.atomic import atomic_path

    if not path.is_file():
        return
    kept, dropped, width = [], 0, None
    for line in path.read_text().splitlines(keepends=True):
        fields = line.split()
        noted = re.match(r"# warning \(step (\d+)\)", line)
        if noted and step is not None and int(noted.group(1)) > step:
            dropped += 1
            continue
        if fields and not line.startswith("#"):
            width = width or len(fields)
            try:
                beyond = float(fields[0]) > time_fs + 1e-6
            except ValueError:
                beyond = True
            # a row cut short by a kill has no line end or too few columns
            if beyond or not line.endswith("\n") or len(fields) != width:
                dropped += 1
                continue
        kept.append(line)
    if dropped:
        with atomic_path(path) as tmp:
            tmp.write_text("".join(kept))


def _initial_velocities(atoms, c: MDSettings) -> None:
    from ase.md import velocitydistribution as vd

    if c.temperature_K <= 0:
        return  # keep the structure's momenta (zero if it had none)
    rng = np.random.default_rng(c.seed)
    # ASE 3.29 renamed MaxwellBoltzmannDistribution to thermalize_momenta
    thermalize = getattr(vd, "thermalize_momenta", vd.MaxwellBoltzmannDistribution)
    thermalize(atoms, temperature_K=c.temperature_K, rng=rng)
    vd.Stationary(atoms)
    if not atoms.pbc.any():
        vd.ZeroRotation(atoms)


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


class MDRun:
    """One MD simulation (see the module docstring); :meth:`run` returns the summary.

    Attributes observers may read: ``atoms``, ``calc`` (the
    :class:`~fieldforce.simulation.calculator.FieldForceCalculator`), ``dyn`` (ASE's
    dynamics object), ``settings`` (:class:`MDSettings`), ``step`` and ``time_fs`` (the
    state just reached), ``start_step``, ``final_step``, ``initial`` (true during the
    call at the start of a fresh run), ``steps_done``, ``trajectory`` and ``log`` (paths).
    """

    def __init__(self, config: dict | MDSettings, base_dir: str | Path | None = None,
                 resume: bool = False, progress: bool = True, source: str = "md config"):
        from fieldforce.simulation.calculator import FieldForceCalculator

        if isinstance(config, MDSettings):
            c = dataclasses.replace(config)  # a copy: resolving must not change the caller's
            c.resolve(base_dir, source)
        else:
            c = check_config(config, base_dir, source)
        self.settings = c
        self.progress = progress
        out_dir: Path = c.output
        self.trajectory, self.log = out_dir / "trajectory.xyz", out_dir / "md.log"
        if out_dir.exists() and not out_dir.is_dir():
            raise ConfigError(f"{out_dir}: the md output is a file, not a directory; choose "
                              "another output path")
        refuse_overwriting({"trajectory": self.trajectory, "md log": self.log,
                            "summary": out_dir / "summary.json"},
                           {"structure": c.structure, "model": c.model})
        recorded_p = None
        if resume and self.trajectory.is_file() and self.trajectory.stat().st_size > 0:
            atoms = _last_frame(self.trajectory)
            self.start_step, self.time_fs = int(atoms.info["step"]), float(atoms.info["time_fs"])
            recorded_p = frame_value(atoms, "polarization")
            self.fresh = False
            _trim_log(self.log, self.time_fs, self.start_step)
        else:
            if self.trajectory.exists() and not resume:
                raise ConfigError(f"{self.trajectory} already exists; pass --resume "
                                  "(resume=True) to continue it, or choose a new output "
                                  "directory")
            atoms = _read_structure(c.structure)
            _initial_velocities(atoms, c)
            self.start_step, self.time_fs, self.fresh = 0, 0.0, True
        self.calc = FieldForceCalculator(c.model, efield=c.field, time_fs=self.time_fs,
                                         device=c.device)
        self.calc.model.check_species(atoms.numbers, where=str(
            self.trajectory if not self.fresh else c.structure))
        outputs = [o.name for o in self.calc.model.output_specs()]
        strip_frame(atoms, [k for k in outputs if k != "momenta"])
        atoms.calc = None
        if c.write_born_charges and not self.calc.has_charges:
            raise ConfigError(f"md config key 'write_born_charges': the "
                              f"{getattr(self.calc.model, 'family', '?')!r} model predicts no "
                              "charges, so it has no Born charges; use a model with charges "
                              "(e.g. latent) or set it false")
        out_dir.mkdir(parents=True, exist_ok=True)
        atoms.calc = self.calc
        self.atoms = atoms
        self.step, self.final_step, self.initial = self.start_step, c.steps, False
        self.steps_done, self.stopped_by = 0, None
        self.dyn = _integrator(c, atoms, np.random.default_rng([c.seed, self.start_step]))
        self.dyn.nsteps = self.start_step
        self.observers: list[Observer] = []
        self._builtin_observers(recorded_p)

    @classmethod
    def from_file(cls, path: str | Path, resume: bool = False, progress: bool = True) -> MDRun:
        """The run of an ``fieldforce md`` YAML file (relative paths from its folder)."""
        from fieldforce.config import read_mapping

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such md config file")
        return cls(read_mapping(path, "md configuration"), base_dir=path.resolve().parent,
                   resume=resume, progress=progress, source=str(path))

    # -- observers --------------------------------------------------------------------

    def _builtin_observers(self, recorded_p) -> None:
        c, calc, atoms = self.settings, self.calc, self.atoms
        polarization = None
        if calc.has_charges and bool(atoms.pbc.any()):
            reference = None if self.fresh else resumed_branch(self.trajectory, atoms)
            polarization = PolarizationObserver(TrackedPolarization(reference))
            if reference is not None and recorded_p is not None:
                check_branch(self.trajectory, atoms, reference, recorded_p)
            self.attach(polarization)
        self.attach(StepStatistics())
        log = self.attach(LogWriter(self.log, c.write_interval, polarization, self.fresh))
        self.attach(DomainObserver(log))
        self.attach(TrajectoryWriter(self.trajectory, c.write_interval, polarization,
                                     c.write_born_charges))
        self.attach(ProgressBar(c.steps, self.start_step, self.progress, c.write_interval))

    def attach(self, observer: Observer | Callable[[MDRun], Any], interval: int | None = None
               ) -> Observer:
        """Call ``observer`` after every ``interval``-th step (ASE's ``dyn.attach``).

        ``observer``: an :class:`~fieldforce.simulation.observers.Observer`, or any
        function ``fn(run)`` (wrapped as a :class:`Callback`; ``interval`` default 1).
        """
        if not isinstance(observer, Observer):
            observer = Callback(observer, 1 if interval is None else interval)
        elif interval is not None:
            observer.interval = interval
        self.observers.append(observer)
        self.dyn.attach(self._call, interval=observer.interval, observer=observer)
        return observer

    def _call(self, observer: Observer) -> None:
        observer(self)

    def request_stop(self, reason: str) -> None:
        """End the run after the current step (recorded as ``stopped_by`` in the summary)."""
        self.stopped_by = str(reason)

    # -- the state, for observers -------------------------------------------------------

    def energies(self) -> tuple[float, float, float]:
        """(Epot eV at the current time, Ekin eV, temperature K) of the current state."""
        atoms = self.atoms
        return atoms.get_potential_energy(), atoms.get_kinetic_energy(), atoms.get_temperature()

    def dipole(self) -> np.ndarray:
        """The model's dipole [3] e·Å; NaN for models without one (short-range only)."""
        return np.array(self.calc.results.get("dipole", np.full(3, np.nan)), dtype=float)

    def mean_field(self) -> np.ndarray:
        """The uniform field [3] V/Å, or the mean of the per-atom fields."""
        value = np.asarray(self.calc.results["efield"], dtype=float)
        return value if value.ndim == 1 else value.mean(axis=0)

    # -- the run ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Integrate up to ``settings.steps`` (or a stop request); the summary, also written
        to ``summary.json``."""
        c, atoms, calc, dyn = self.settings, self.atoms, self.calc, self.dyn
        wall0 = time.perf_counter()
        t0 = self.time_fs
        try:
            with _threads_for(len(atoms)):
                for observer in self.observers:
                    observer.start(self)
                if self.fresh:
                    self.initial = True
                    for observer in self.observers:
                        observer.before_step(self, self.step)
                    self.energies()
                    dyn.call_observers()  # step 0, as ASE's own run() does
                    self.initial = False
                while self.step < c.steps and self.stopped_by is None:
                    # The forces at the current positions and time are cached; the step's
                    # new forces are computed at the new time (advance_time).
                    atoms.get_forces(md=True)
                    step = self.step + 1
                    time_fs = t0 + (step - self.start_step) * c.timestep_fs
                    calc.advance_time(time_fs)
                    for observer in self.observers:
                        observer.before_step(self, step)
                    try:
                        dyn.step()
                    except DataError as err:  # e.g. overlapping atoms: say when, and why
                        raise DataError(
                            f"MD step {step} (t = {time_fs:g} fs): {err.reason} The "
                            "simulation left the physical region (the model outside its "
                            "training data, or too long a timestep); the frames written so "
                            "far are intact.", path=str(self.trajectory)) from err
                    dyn.nsteps += 1
                    self.step, self.time_fs = step, time_fs
                    self.steps_done = step - self.start_step
                    self.energies()
                    dyn.call_observers()
                summary = {}
                for observer in self.observers:
                    summary.update(observer.finish(self) or {})
        finally:
            for observer in self.observers:
                close = getattr(observer, "close", None)
                if close is not None:
                    close()
        return self._summary(summary, time.perf_counter() - wall0)

    def _summary(self, observed: dict, wall: float) -> dict[str, Any]:
        c = self.settings
        field = c.field
        static = field is None or not (field.depends_on_time or field.depends_on_atoms)
        segment = {"start_step": self.start_step, "steps_done": self.steps_done,
                   "wall_time_s": wall, "mean_temperature_K": observed.get(
                       "mean_temperature_K"), "stopped_by": self.stopped_by or "steps"}
        if not self.fresh:
            observed, wall, segments = self._whole_run(observed, wall, segment)
        else:
            segments = [segment]
        simulated_ns = (self.step if not self.fresh else self.steps_done) * c.timestep_fs * 1e-6
        summary = {
            "steps_done": self.steps_done, "step": self.step, "time_fs": self.time_fs,
            "wall_time_s": wall,
            "ns_per_day": (simulated_ns / (wall / 86400.0) if wall > 0 and simulated_ns
                           else None),
            "mean_temperature_K": None, "energy_drift_eV_per_atom_per_ps": None,
            "energy_conserved": c.ensemble == "nve" and static,
            "mean_polarization_e_per_A2": None, "mean_polarization_uC_per_cm2": None,
            **observed,
            "stopped_by": self.stopped_by or "steps",
            "write_born_charges": c.write_born_charges,
            "ensemble": c.ensemble, "timestep_fs": c.timestep_fs, "n_atoms": len(self.atoms),
            "temperature_K": c.temperature_K, "seed": c.seed,
            "field": _field_summary(field),
            "structure": str(c.structure), "model": str(c.model),
            "trajectory": str(self.trajectory), "log": str(self.log),
            "segments": segments,
        }
        write_json(summary, c.output / "summary.json", indent=2)
        return summary

    def _whole_run(self, observed: dict, wall: float, segment: dict
                   ) -> tuple[dict, float, list[dict]]:
        """The statistics of the whole run, this segment combined with those before it
        (from the previous summary.json; else from md.log's rows): step-weighted mean
        temperature and polarization, the NVE drift fitted over all of md.log, total wall
        time, the domain findings of every segment."""
        import json

        previous_path = self.settings.output / "summary.json"
        before_steps = self.start_step
        try:
            previous = json.loads(previous_path.read_text())
        except (OSError, ValueError):
            previous = None
        rows = _log_rows(self.log)
        if previous is not None and previous.get("step") == self.start_step:
            segments = previous.get("segments") or [{
                "start_step": previous.get("step", 0) - previous.get("steps_done", 0),
                "steps_done": previous.get("steps_done"),
                "wall_time_s": previous.get("wall_time_s"),
                "mean_temperature_K": previous.get("mean_temperature_K")}]
            wall_before = sum(x.get("wall_time_s") or 0.0 for x in segments)
            t_before = previous.get("mean_temperature_K")
            p_before = previous.get("mean_polarization_e_per_A2")
            domain_before = previous.get("domain")
        else:  # no summary of the earlier segments (a killed run): md.log has their rows
            earlier = rows[rows[:, 0] <= self.time_fs + 1e-6] if len(rows) else rows
            segments = [{"start_step": 0, "steps_done": before_steps, "wall_time_s": None,
                         "mean_temperature_K": float(earlier[:, 4].mean()) if len(earlier)
                         else None, "from": "md.log rows (the run was interrupted)"}]
            wall_before, t_before, p_before, domain_before = 0.0, segments[0][
                "mean_temperature_K"], None, None

        def weighted(a, b):
            if a is None or not before_steps:
                return b
            if b is None or not self.steps_done:
                return a
            total = before_steps + self.steps_done
            return ((np.asarray(a) * before_steps + np.asarray(b) * self.steps_done)
                    / total).tolist()

        out = dict(observed)
        out["mean_temperature_K"] = weighted(t_before, observed.get("mean_temperature_K"))
        mean_p = weighted(p_before, observed.get("mean_polarization_e_per_A2"))
        if mean_p is not None:
            from fieldforce.units import UC_PER_CM2

            out["mean_polarization_e_per_A2"] = mean_p
            out["mean_polarization_uC_per_cm2"] = (np.asarray(mean_p) / UC_PER_CM2).tolist()
        if self.settings.ensemble == "nve" and len(rows) >= 2:
            slope = np.polyfit(rows[:, 0], rows[:, 3], 1)[0]  # eV/fs, Etot over the whole run
            out["energy_drift_eV_per_atom_per_ps"] = float(slope * 1000.0 / len(self.atoms))
        if domain_before and "domain" in out:
            domain = dict(out["domain"])
            domain["warnings"] = list(domain_before.get("warnings", [])) + [
                m for m in domain["warnings"] if m not in domain_before.get("warnings", [])]
            for key in ("max_field_V_per_A", "max_extrapolation"):
                domain[key] = max(domain.get(key) or 0.0, domain_before.get(key) or 0.0)
            out["domain"] = domain
        return out, wall_before + wall, segments + [segment]


def _log_rows(path: Path) -> np.ndarray:
    """md.log's table [rows, columns] (time, Epot, Ekin, Etot, T, ...); empty if none."""
    if not path.is_file():
        return np.zeros((0, 5))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty table
        rows = np.loadtxt(path, comments="#", ndmin=2)
    return rows if rows.size else np.zeros((0, 5))


def _field_summary(field) -> dict | str | None:
    """The field's config form for summary.json (a Python callable has none: its repr)."""
    if field is None:
        return None
    try:
        return field.to_dict()
    except ConfigError:
        return repr(field)


def run_md(config: dict | MDSettings, base_dir: str | Path | None = None,
           resume: bool = False, progress: bool = True,
           observers: Iterable[Observer | tuple[Callable, int]] = (),
           source: str = "md config") -> dict:
    """Run the MD simulation of ``config`` (see the module docstring); returns the summary.

    ``base_dir`` resolves relative paths (the directory of the YAML file; default: the
    working directory); ``source`` names the config in error messages. ``observers``:
    extra :class:`~fieldforce.simulation.observers.Observer` objects or ``(function,
    interval)`` pairs, called after the built-in ones. Summary keys: ``steps_done`` (this
    call), ``step`` (total reached), ``time_fs``, ``wall_time_s``, ``ns_per_day``,
    ``mean_temperature_K`` (over the steps of this call), ``energy_drift_eV_per_atom_per_ps``
    (NVE only: slope of Epot + Ekin), ``energy_conserved`` (NVE with no field or a static
    one), ``mean_polarization_e_per_A2`` and ``mean_polarization_uC_per_cm2`` ([3], over the
    steps of this call; periodic models with charges, else None), ``stopped_by``
    (``"steps"`` or the reason a callback gave) and the settings.
    """
    run = MDRun(config, base_dir=base_dir, resume=resume, progress=progress, source=source)
    for extra in observers:
        if isinstance(extra, tuple):
            run.attach(extra[0], extra[1])
        else:
            run.attach(extra)
    return run.run()
