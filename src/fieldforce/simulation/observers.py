"""Observers of an MD run: what happens around each step, attached to ASE's dynamics.

An :class:`Observer` is attached to an :class:`~fieldforce.simulation.md.MDRun` with an
interval; the run attaches it to ASE's dynamics object (``dyn.attach``), which calls it
after every ``interval``-th step (ASE's rule: when the step number is a multiple of the
interval; step 0 of a fresh run included). Its other hooks are optional:

* ``start(run)`` — once, after the initial evaluation, before any step;
* ``before_step(run, step)`` — before the state of step ``step`` is computed: before it
  is integrated, or, for step 0 of a fresh run, before the initial evaluation (e.g. ask
  the calculator for Born charges on a step that will be written);
* ``__call__(run)`` — after the step, at its interval (``run.step``, ``run.time_fs``,
  ``run.atoms``, ``run.calc`` describe the state just reached; ``run.initial`` is true
  for the call at the start of a fresh run);
* ``finish(run) -> dict`` — after the last step; entries for the run's summary.

The run's own observers, in the order they are called: :class:`PolarizationObserver`
(periodic models with charges, every step), :class:`StepStatistics` (every step),
:class:`LogWriter` and :class:`TrajectoryWriter` (every ``write_interval`` steps and the
last step), :class:`ProgressBar`. A user's callback (``MDRun.attach(fn, interval)``)
comes after them and may stop the run (``run.request_stop(reason)``): the place for an
uncertainty threshold, a field re-solve or an engine bridge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fieldforce.data.trajectory import make_frame
from fieldforce.units import UC_PER_CM2

if TYPE_CHECKING:
    from fieldforce.simulation.md import MDRun


class Observer:
    """Base class: does nothing at every hook; subclasses override what they need."""

    interval: int = 1

    def start(self, run: MDRun) -> None:
        """Once, after the initial evaluation and before the first step."""

    def before_step(self, run: MDRun, step: int) -> None:
        """Before step ``step`` (the step number it will reach) is integrated."""

    def __call__(self, run: MDRun) -> None:
        """After every ``interval``-th step."""

    def finish(self, run: MDRun) -> dict[str, Any]:
        """After the last step: entries for the summary."""
        return {}


class Callback(Observer):
    """A plain function ``fn(run)`` called every ``interval`` steps."""

    def __init__(self, function: Callable[[MDRun], Any], interval: int = 1) -> None:
        if not callable(function):
            raise TypeError(f"an MD callback must be callable, got {function!r}")
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"an MD callback interval must be a positive integer, "
                             f"got {interval!r}")
        self.function, self.interval = function, interval

    def __call__(self, run: MDRun) -> None:
        self.function(run)


class PolarizationObserver(Observer):
    """P(t) of a periodic model with charges, on the branch that follows the atoms.

    Updated after every step (a :class:`~fieldforce.electrostatics.PolarizationTracker`
    needs frames less than half a cell apart); ``value`` is the latest P [3] e/Å², and
    the summary gets its mean over the steps of this run.
    """

    def __init__(self, tracked) -> None:
        self.tracked = tracked  # fieldforce.simulation.polarization.TrackedPolarization

    @property
    def value(self) -> np.ndarray | None:
        return self.tracked.value

    def __call__(self, run: MDRun) -> None:
        run.atoms.get_potential_energy()  # the charges of this step
        self.tracked.update(run.atoms, run.calc.results["charges"], count=not run.initial)

    def finish(self, run: MDRun) -> dict[str, Any]:
        t = self.tracked
        mean = t.total / t.count if t.count else None
        return {"mean_polarization_e_per_A2": mean.tolist() if mean is not None else None,
                "mean_polarization_uC_per_cm2": ((mean / UC_PER_CM2).tolist()
                                                 if mean is not None else None)}


class StepStatistics(Observer):
    """Total energy and temperature of every step of this run: mean temperature and, for
    NVE, the drift of Epot + Ekin (the summary)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.total_energy: list[float] = []
        self.temperatures: list[float] = []

    def __call__(self, run: MDRun) -> None:
        if run.initial:
            return
        epot, ekin, temperature = run.energies()
        self.times.append(run.time_fs)
        self.total_energy.append(epot + ekin)
        self.temperatures.append(temperature)

    def finish(self, run: MDRun) -> dict[str, Any]:
        drift = None
        if run.settings.ensemble == "nve" and len(self.times) >= 2:
            slope = np.polyfit(np.asarray(self.times), np.asarray(self.total_energy), 1)[0]
            drift = float(slope * 1000.0 / len(run.atoms))  # eV/fs -> eV/atom/ps
        return {"mean_temperature_K": (float(np.mean(self.temperatures))
                                       if self.temperatures else None),
                "energy_drift_eV_per_atom_per_ps": drift}


class _EveryWriteStep(Observer):
    """Called every ``write_interval`` steps and once more at the run's last step."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.last_written: int | None = None

    def write(self, run: MDRun) -> None:
        raise NotImplementedError

    def __call__(self, run: MDRun) -> None:
        self.write(run)
        self.last_written = run.step

    def finish(self, run: MDRun) -> dict[str, Any]:
        if run.steps_done and self.last_written != run.step:
            self.write(run)
            self.last_written = run.step
        return {}


LOG_HEADER = ("# time_fs  Epot_eV  Ekin_eV  Etot_eV  T_K  dipole_x  dipole_y  dipole_z"
              "  field_x  field_y  field_z  (e*A, V/A)\n")
LOG_HEADER_POLARIZATION = (LOG_HEADER[:-len("  (e*A, V/A)\n")]
                           + "  P_x  P_y  P_z  P_x  P_y  P_z  (e*A, V/A, P: e/A^2 then uC/cm^2)\n")


class LogWriter(_EveryWriteStep):
    """``md.log``: a text table of time, energies, temperature, dipole, field (and P)."""

    def __init__(self, path, interval: int, polarization: PolarizationObserver | None,
                 fresh: bool) -> None:
        super().__init__(interval)
        self.path, self.polarization, self.fresh = path, polarization, fresh
        self.file = None

    def start(self, run: MDRun) -> None:
        self.file = open(self.path, "w" if self.fresh else "a")  # noqa: SIM115 - see close
        # the model's predicted uncertainties (kernel heads): their largest component,
        # in the output's unit, as extra columns (per-atom ones are in the trajectory)
        self.uncertainties = [o.name for o in run.calc.model.output_specs()
                              if o.name.endswith("_uncertainty") and o.role == "property"
                              and not o.per_atom]
        if self.fresh:
            header = LOG_HEADER if self.polarization is None else LOG_HEADER_POLARIZATION
            if self.uncertainties:
                names = "  ".join(f"max_{n}" for n in self.uncertainties)
                header = header.replace("  (e*A", f"  {names}  (e*A", 1)
            self.file.write(header)

    def write(self, run: MDRun) -> None:
        epot, ekin, temperature = run.energies()
        p = None if self.polarization is None else self.polarization.value
        mu = run.dipole() if p is None else p * run.atoms.get_volume()
        row = (f"{run.time_fs:12.3f} {epot:16.6f} {ekin:12.6f} {epot + ekin:16.6f} "
               f"{temperature:10.2f} " + " ".join(f"{x:11.6f}" for x in mu) + " "
               + " ".join(f"{x:11.6f}" for x in run.mean_field()))
        for name in self.uncertainties:
            if name not in run.calc.results:  # on request: computed at write steps only
                run.calc.get_property(name, run.atoms)
            value = run.calc.results.get(name)
            row += f" {float(np.abs(value).max()) if value is not None else float('nan'):12.4e}"
        if p is not None:
            row += (" " + " ".join(f"{x:15.8e}" for x in p) + " "
                    + " ".join(f"{x:12.6f}" for x in p / UC_PER_CM2))
        self.file.write(row + "\n")
        self.file.flush()

    def finish(self, run: MDRun) -> dict[str, Any]:
        super().finish(run)
        self.close()
        return {}

    def note(self, text: str) -> None:
        """A comment line in the log (``# ...``; table readers skip it)."""
        if self.file is not None and not self.file.closed:
            self.file.write(f"# {text}\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


class DomainObserver(Observer):
    """Copies the calculator's training-domain warnings (a stronger field than in the
    training data, an environment far outside it) into ``md.log`` when they first occur,
    and its findings into the summary (``domain``)."""

    def __init__(self, log: LogWriter) -> None:
        self.log, self.written = log, 0

    def __call__(self, run: MDRun) -> None:
        messages = run.calc.domain.messages
        for message in messages[self.written:]:
            self.log.note(f"warning (step {run.step}): {message}")
        self.written = len(messages)

    def finish(self, run: MDRun) -> dict[str, Any]:
        self(run)
        return {"domain": run.calc.domain.summary()}


class TrajectoryWriter(_EveryWriteStep):
    """``trajectory.xyz``: one extxyz frame per write step, in the schema of
    :mod:`fieldforce.data.trajectory` (every ``property`` output the model declares).

    With ``write_born_charges`` it asks the calculator for Born charges on the steps it
    writes, before they are integrated, so they come with that step's forces.
    """

    def __init__(self, path, interval: int, polarization: PolarizationObserver | None,
                 write_born_charges: bool) -> None:
        super().__init__(interval)
        self.path, self.polarization = path, polarization
        self.write_born_charges = write_born_charges

    def before_step(self, run: MDRun, step: int) -> None:
        due = step % self.interval == 0 or step == run.final_step
        run.calc.compute_born_charges = self.write_born_charges and due

    def write(self, run: MDRun) -> None:
        import ase.io

        atoms, calc = run.atoms, run.calc
        run.energies()
        if self.write_born_charges and "born_charges" not in calc.results:
            calc.get_property("born_charges", atoms)
        for name in calc.model.requestable():  # e.g. force uncertainties: at writes only
            if name not in calc.results:
                calc.get_property(name, atoms)
        values, per_atom = {}, set()
        for spec in calc.model.output_specs():
            if spec.role != "property" or spec.name not in calc.results:
                continue
            if spec.on_request and not (spec.name == "born_charges"
                                        and self.write_born_charges) \
                    and spec.name not in calc.model.requestable():
                continue  # stress, or Born charges not asked for
            values[spec.name] = calc.results[spec.name]
            if spec.per_atom:
                per_atom.add(spec.name)
        if "dipole" not in values:
            values["dipole"] = run.dipole()  # NaN: a model without a dipole
        p = None if self.polarization is None else self.polarization.value
        if p is not None:  # the continuous branch, not the calculator's default one
            values["polarization"] = p
            values["dipole"] = p * atoms.get_volume()
        field = np.asarray(calc.results["efield"], dtype=float)
        if field.ndim == 1:
            values["efield"] = field
        else:
            values["atom_efield"] = field
            per_atom.add("atom_efield")
        frame = make_frame(atoms, run.step, run.time_fs, values, per_atom)
        ase.io.write(self.path, frame, format="extxyz", append=True)


FIELD_LOG_HEADER = ("# time_fs  beta  apex_height_A  apex_field_V_per_A  "
                    "rms_displacement_A  elements  remeshed  mesh_s  solve_s\n")


class FieldStateWriter(_EveryWriteStep):
    """For a field that depends on the atoms (e.g. the finite-element field of a metal
    tip): ``field.log``, one line per re-solve (time, enhancement, apex height and field,
    how far the surface had moved, mesh size, whether it was meshed anew, seconds), and
    ``field_state.npz``, the field's :meth:`~fieldforce.fields.ExternalField.state` at the
    last two write steps (keys ``"<step>/<name>"``), from which a resumed run restores
    the field (:func:`restore_field_state`).

    Attached before the trajectory writer: a run killed between the two leaves a state
    one write step newer than the last frame, so the file keeps two.
    """

    def __init__(self, folder, interval: int, fresh: bool) -> None:
        super().__init__(interval)
        self.log_path, self.state_path = folder / "field.log", folder / "field_state.npz"
        self.fresh, self.logged = fresh, 0

    def start(self, run: MDRun) -> None:
        if self.fresh or not self.log_path.exists():
            self.log_path.write_text(FIELD_LOG_HEADER)

    def write(self, run: MDRun) -> None:
        from fieldforce.data.atomic import atomic_path

        field = run.calc.field
        history = field.history
        with open(self.log_path, "a") as log:
            for h in history[self.logged:]:
                moved = h.get("rms_displacement")
                moved = "-" if moved is None else f"{moved:.4f}"
                log.write(f"{h['time_fs']:12.3f} {h['beta']:9.5f} {h['apex_height']:10.4f} "
                          f"{h['apex_field']:10.5f} {moved:>9s} {h['elements']:9d} "
                          f"{int(h.get('remeshed', True)):3d} "
                          f"{h['mesh_seconds']:8.2f} {h['solve_seconds']:8.2f}\n")
        self.logged = len(history)
        state = field.state()
        if state is None:
            return
        records = {}
        if self.state_path.exists():
            with np.load(self.state_path) as old:
                records = {k: old[k] for k in old.files}
        records.update({f"{run.step}/{k}": np.asarray(v) for k, v in state.items()})
        steps = sorted({int(k.split("/")[0]) for k in records})[-2:]
        keep = {k: v for k, v in records.items() if int(k.split("/")[0]) in steps}
        with atomic_path(self.state_path) as temporary:
            np.savez(temporary, **keep)

    def finish(self, run: MDRun) -> dict[str, Any]:
        super().finish(run)
        field = run.calc.field
        history = field.history
        out: dict[str, Any] = {"field_solves_this_run": len(history),
                               "field_seconds_this_run": field.seconds}
        if history:
            out["field_beta_last"] = history[-1]["beta"]
        return out


def restore_field_state(field, atoms, folder, step: int) -> bool:
    """Give ``field`` its state saved at ``step`` in ``folder/field_state.npz``; False if
    there is none for that step (the field then solves afresh at the resumed atoms)."""
    path = folder / "field_state.npz"
    if not path.exists():
        return False
    prefix = f"{step}/"
    with np.load(path) as saved:
        state = {k[len(prefix):]: saved[k] for k in saved.files if k.startswith(prefix)}
    if not state:
        return False
    field.restore(atoms, state)
    return True


class ProgressBar(Observer):
    """A tqdm bar over the steps, with the temperature and energy of the last write."""

    def __init__(self, total: int, initial: int, enabled: bool, write_interval: int) -> None:
        self.total, self.initial, self.enabled = total, initial, enabled
        self.write_interval = write_interval
        self.bar = None

    def start(self, run: MDRun) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=min(self.initial, self.total),
                        disable=not self.enabled, unit="step", desc="md")

    def __call__(self, run: MDRun) -> None:
        if run.initial:
            return
        if run.step % self.write_interval == 0 or run.step == run.final_step:
            epot, _, temperature = run.energies()
            self.bar.set_postfix(T=f"{temperature:.0f}K", Epot=f"{epot:.3f}eV", refresh=False)
        self.bar.update(1)

    def finish(self, run: MDRun) -> dict[str, Any]:
        self.close()
        return {}

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


__all__ = ["Callback", "DomainObserver", "FieldStateWriter", "LogWriter", "Observer",
           "PolarizationObserver", "ProgressBar", "StepStatistics", "TrajectoryWriter",
           "restore_field_state"]
