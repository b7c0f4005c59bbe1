"""Resumable relaxations of adatom states for the metal dataset: a minimum, or a saddle
held by symmetry.

DFT relaxations of 30-50-atom metal slabs take hours to days of a core (each BFGS step is
one SCF), longer than a session: :func:`relax` keeps every step in an ASE trajectory and
the optimizer's Hessian in a restart file, so a killed or time-limited run continues
where it stopped and ends where an uninterrupted one would.

**Saddles by symmetry** (``hold_lateral``): an adatom hop between two equivalent sites
related by a mirror or a two-fold axis through the midpoint of the path has its saddle on
that symmetry element; holding the adatom's lateral position there and relaxing
everything else (its height included) finds the saddle as a constrained minimum, without
a NEB (whose 5-7 images would cost 5-7 times more). Valid only when the midpoint is a
symmetry point of the surface, which the caller asserts (W(110): the long-bridge site
between two three-fold hollows; Cu(100): the bridge site).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from fieldforce.data.atomic import atomic_path, write_json
from fieldforce.errors import DataError


@dataclass
class RelaxResult:
    """How a :func:`relax` call ended.

    Attributes
    ----------
    converged
        the largest force on a free degree of freedom is below ``fmax``.
    steps
        optimizer steps taken in all calls so far (the trajectory's length minus one).
    energy
        eV, at the last step.
    max_force
        eV/Å, the largest force on a free degree of freedom at the last step.
    stopped_by
        ``"converged"``, ``"max_steps"`` or ``"max_seconds"`` (rerun to continue);
        ``"unconverged"`` from :func:`relaxed_geometry` on a run killed mid-way.
    held_lateral_force
        eV/Å, the largest lateral force on an atom held by :func:`hold_lateral` (None
        without one): ~0 when the held site really is a stationary point by symmetry, the
        check of the saddle's assumption.
    """

    converged: bool
    steps: int
    energy: float
    max_force: float
    stopped_by: str
    held_lateral_force: float | None = None


def hold_lateral(atoms: Atoms, index: int) -> None:
    """Add a constraint holding atom ``index`` at its x and y (free along z) to those
    ``atoms`` already have (module docstring: saddles by symmetry)."""
    from ase.constraints import FixCartesian

    atoms.set_constraint([*atoms.constraints, FixCartesian(index, mask=(True, True, False))])


def _max_force(atoms: Atoms) -> float:
    return float(np.sqrt((atoms.get_forces() ** 2).sum(axis=1)).max())


def _held_lateral_force(atoms: Atoms) -> float | None:
    from ase.constraints import FixCartesian

    held = [int(i) for c in atoms.constraints if isinstance(c, FixCartesian)
            for i in np.atleast_1d(c.index)]
    if not held:
        return None
    raw = atoms.get_forces(apply_constraint=False)
    return float(np.abs(raw[held, :2]).max())


def relax(atoms: Atoms, calculator, folder: Path, fmax: float = 0.05,
          max_steps: int = 200, max_seconds: float | None = None) -> RelaxResult:
    """Relax ``atoms`` (their constraints kept) with ``calculator`` by BFGS to forces
    below ``fmax`` eV/Å, resumably: ``folder/relax.traj`` holds every step,
    ``folder/bfgs.json`` the optimizer's state, ``folder/relax.json`` the result and,
    once converged, ``folder/relaxed.xyz`` the structure (written atomically). Called
    again on the same folder it continues from the last step; ``max_steps`` counts the
    steps of all calls, ``max_seconds`` this call's wall time (checked after each step).
    """
    import ase.io
    from ase.io.trajectory import Trajectory
    from ase.optimize import BFGS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path, restart = folder / "relax.traj", folder / "bfgs.json"
    atoms = atoms.copy()
    taken = 0
    if path.exists() and path.stat().st_size > 0:
        try:
            history = ase.io.read(path, ":")
        except Exception:  # noqa: BLE001 - a step killed while being written: drop it
            history = []
            with Trajectory(path) as trajectory:
                for k in range(len(trajectory)):
                    try:
                        history.append(trajectory[k])
                    except Exception:  # noqa: BLE001
                        break
        if history:
            atoms.positions = history[-1].positions
            taken = len(history) - 1
    atoms.calc = calculator
    start = time.perf_counter()
    with Trajectory(path, "a", atoms) as trajectory, open(folder / "relax.log", "a") as log:
        optimizer = BFGS(atoms, restart=str(restart), logfile=None)
        if taken == 0:
            # the starting point, step 0 (computed first: GPAW's calculator refuses to
            # report properties before its first calculation)
            atoms.get_forces()
            trajectory.write()
        stopped_by = "max_steps"
        if _max_force(atoms) < fmax:
            stopped_by = "converged"
        else:
            for _ in range(max(0, max_steps - taken)):
                began = time.perf_counter()
                optimizer.step()
                taken += 1
                atoms.get_forces()  # before writing, so the step's frame carries its results
                trajectory.write()
                log.write(f"step {taken:4d}  E {atoms.get_potential_energy():.6f} eV  "
                          f"max force {_max_force(atoms):.4f} eV/Å  "
                          f"{time.perf_counter() - began:.0f} s\n")
                log.flush()
                if _max_force(atoms) < fmax:
                    stopped_by = "converged"
                    break
                if max_seconds is not None and time.perf_counter() - start > max_seconds:
                    stopped_by = "max_seconds"
                    break
    result = RelaxResult(stopped_by == "converged", taken, float(atoms.get_potential_energy()),
                         _max_force(atoms), stopped_by, _held_lateral_force(atoms))
    write_json(asdict(result), folder / "relax.json")
    if result.converged:
        final = atoms.copy()
        final.calc = None
        with atomic_path(folder / "relaxed.xyz", ".xyz") as tmp:
            ase.io.write(tmp, final, format="extxyz")
    return result


def _logged_step(log: Path, step: int) -> tuple[float, float] | None:
    """(energy eV, largest force eV/Å) of ``step`` from a relaxation's ``relax.log``, None
    when the step has no line (not finished)."""
    lines = Path(log).read_text().splitlines() if Path(log).exists() else []
    for line in lines[::-1]:
        words = line.split()
        if len(words) >= 8 and words[0] == "step" and int(words[1]) == step:
            return float(words[3]), float(words[7])
    return None


def relaxed_geometry(folder: Path, unconverged: bool = False) -> tuple[Atoms, RelaxResult]:
    """The structure a :func:`relax` run in ``folder`` ended with, and how it stands.

    A converged run's ``relaxed.xyz``; with ``unconverged``, the last step of the
    trajectory of a run that has not converged (a look ahead: its forces are above the
    tolerance; the result is rebuilt from the trajectory, as a run killed mid-way leaves
    no ``relax.json``). The ``hold_lateral`` constraint of a saddle is dropped (it held
    the relaxation, not the structure); FixAtoms constraints stay.
    """
    import ase.io
    from ase.constraints import FixAtoms, FixCartesian

    folder = Path(folder)
    done = folder / "relax.json"
    result = RelaxResult(**json.loads(done.read_text())) if done.exists() else None
    if result is not None and result.converged:
        atoms = ase.io.read(folder / "relaxed.xyz")
    elif not (folder / "relax.traj").exists():
        raise DataError("no relax.traj (not a relaxation folder, or its first step has not "
                        "finished)", path=str(folder))
    else:
        history = ase.io.read(folder / "relax.traj", ":")
        # the last step whose energy and forces were computed: the frame's own results,
        # or for frames written before them (runs before 2026-12-05) the log's line; a
        # frame with neither is a step still being computed or killed mid-way
        for steps in range(len(history) - 1, -1, -1):
            atoms = history[steps]
            stored = {} if atoms.calc is None else atoms.calc.results
            if "energy" in stored and "forces" in stored:
                energy, force = float(atoms.get_potential_energy()), _max_force(atoms)
                held = _held_lateral_force(atoms)
                break
            logged = _logged_step(folder / "relax.log", steps)
            if logged is not None or steps == 0:
                energy, force = logged or (float("nan"), float("nan"))
                held = None
                break
        if not unconverged:
            raise DataError(f"the relaxation has not converged (max force {force:.3f} eV/Å "
                            f"at step {steps}); rerun it, or ask for the unconverged "
                            "geometry explicitly", path=str(folder))
        result = RelaxResult(False, steps, energy, force, "unconverged", held)
    atoms.calc = None
    # atoms fixed in all three directions stay fixed (FixAtoms, or extxyz's per-atom
    # move_mask read back as FixCartesian); partial holds such as hold_lateral's go
    fixed = np.zeros(len(atoms), bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            fixed[c.index] = True
        elif isinstance(c, FixCartesian) and np.all(c.mask):
            fixed[np.atleast_1d(c.index)] = True
    atoms.set_constraint(FixAtoms(mask=fixed) if fixed.any() else [])
    return atoms, result


__all__ = ["RelaxResult", "hold_lateral", "relax", "relaxed_geometry"]
