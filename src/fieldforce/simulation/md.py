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
Thermostat internal state (Nose–Hoover chain variables) is not saved and restarts at zero.
The stochastic thermostats' noise (Langevin, Bussi) is reseeded from (seed, step) at the
start and after every written frame, so a run resumed from any frame draws the same noise
as the uninterrupted run (the same trajectory to the file's precision). Without
``resume``, an existing trajectory is never overwritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fieldforce.data.atomic import refuse_overwriting, write_json
from fieldforce.data.trajectory import frame_value, strip_frame
from fieldforce.errors import ConfigError, DataError
from fieldforce.fields.base import ExternalField
from fieldforce.simulation.observers import (
    Callback,
    DomainObserver,
    FieldStateWriter,
    LogWriter,
    Observer,
    PolarizationObserver,
    ProgressBar,
    StepStatistics,
    TrajectoryWriter,
    restore_field_state,
)
from fieldforce.simulation.polarization import (
    TrackedPolarization,
    check_branch,
    resumed_branch,
)
from fieldforce.simulation.restart import last_frame, trim_log, whole_run
from fieldforce.simulation.settings import ENSEMBLES, MDSettings, check_config

__all__ = ["ENSEMBLES", "MDRun", "MDSettings", "check_config", "run_md"]

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
            atoms = last_frame(self.trajectory)
            self.start_step, self.time_fs = int(atoms.info["step"]), float(atoms.info["time_fs"])
            recorded_p = frame_value(atoms, "polarization")
            self.fresh = False
            trim_log(self.log, self.time_fs, self.start_step)
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
        field = self.calc.field
        self.field_follows_atoms = field is not None and field.depends_on_atoms
        keeps_state = self.field_follows_atoms and type(field).state is not ExternalField.state
        if keeps_state and not self.fresh and not restore_field_state(
                field, atoms, out_dir, self.start_step):
            warnings.warn(f"{out_dir}: no saved field state for step {self.start_step}; the "
                          "field is solved afresh at the resumed positions", stacklevel=2)
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
        from fieldforce.config_files import read_mapping

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
        if self.field_follows_atoms:  # before the frame: see FieldStateWriter
            self.attach(FieldStateWriter(self.trajectory.parent, c.write_interval, self.fresh))
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
                    if step % c.write_interval == 0 and hasattr(dyn, "rng"):
                        # where a resumed run could start: the same noise from here on
                        dyn.rng = np.random.default_rng([c.seed, step])
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
            observed, wall, segments = whole_run(self, observed, wall, segment)
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
