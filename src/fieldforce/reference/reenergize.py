"""Relabel the energies of a GPAW-labelled set with another of GPAW's energies, one SCF run
per frame, keeping every other label once the run has shown it repeats the old one.

With smeared occupations GPAW reports two energies of one SCF run: the free energy E - TS
(variational: what the forces and dU/dF = -mu differentiate) and the extrapolation to zero
smearing (:class:`~fieldforce.reference.gpaw_backend.GPAWSettings`, ``energy``). Forces,
dipoles and polarizabilities do not depend on which is reported, so a set labelled with
one flavour gets the other from one SCF run per frame at the field it was asked at (a
third of a slab label, which also runs the polarizability's two), resumable like any
labelling job (:func:`~fieldforce.reference.labelling.label_frames`). The run must repeat
the label it updates, within :data:`REPEAT_TOL`: the field felt, the dipole, and its
enthalpy in the old flavour (the backend records it as ``energy_<flavour>``) against the
old energy. Otherwise the frame was labelled at other settings, and the error names it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fieldforce.data.frame import Frame
from fieldforce.errors import BackendError
from fieldforce.reference.labelling import LabelReport, label_frames

#: how closely the new run must repeat the label it updates: field felt (V/Å), dipole
#: (e·Å), enthalpy in the old flavour (eV); SCF convergence (1e-6 eV and electrons per
#: valence electron, ~150 of them for the metal slabs) sets the scale
REPEAT_TOL = {"efield": 1e-4, "dipole": 1e-3, "energy": 2e-3}


def reenergize(labelled: Path, out: Path, old, new, *, workers: int = 1,
               max_seconds: float | None = None) -> tuple[LabelReport, str | None]:
    """Write ``out``: the frames of ``labelled`` (labelled by the GPAW backend ``old``) with
    the energies of the GPAW backend ``new``, which differs from ``old`` in ``energy``
    only. Returns the labelling report and, once every frame is done, a summary line (None
    while the job is unfinished: rerun to continue; the SCF runs wait beside ``out`` in
    ``OUT.energies.xyz`` and its parts folder). BackendError, naming file, frame and key,
    for a frame ``old`` did not label or a run that does not repeat its label."""
    from fieldforce.data.atomic import refuse_overwriting
    from fieldforce.data.io import read_frames, write_frames

    flavour = f"energy_{old.config.energy}"  # what `new`'s runs record of the old flavour
    frames = read_frames(labelled)
    for i, f in enumerate(frames):
        if f.atoms.info.get("label_fingerprint") != old.settings_fingerprint():
            raise BackendError(f"{labelled}, frame {i}: key 'label_fingerprint' is not that "
                               f"of the old settings (energy: {old.config.energy}); a set "
                               "labelled otherwise")
    refuse_overwriting({"output": out}, {"labelled set": labelled})
    todo = []
    for f in frames:  # the structure at the field it was asked at, as the labelling saw it
        atoms = f.atoms.copy()
        atoms.info = {k: v for k, v in atoms.info.items() if not k.startswith("label_")}
        todo.append(Frame(atoms, {"efield": np.asarray(f.atoms.info["label_field"], float)},
                          f.source, f.index))
    energies = out.with_name(out.name + ".energies.xyz")
    report = label_frames(todo, energies, new, ("energy", "dipole"), workers=workers,
                          max_seconds=max_seconds)
    if report.stopped_early or report.failed:
        return report, None
    merged, misses = [], []
    for i, (before, after) in enumerate(zip(frames, read_frames(energies), strict=True)):
        miss = {"efield": np.abs(after.efield - before.efield).max(),
                "dipole": np.abs(after.labels["dipole"] - before.labels["dipole"]).max(),
                "energy": abs(float(after.atoms.info[flavour]) - float(before.labels["energy"]))}
        bad = [k for k, v in miss.items() if v > REPEAT_TOL[k]]
        if bad:
            raise BackendError(
                f"{labelled}, frame {i}: the new run does not repeat the old label's "
                f"{', '.join(bad)} (off by " + ", ".join(f"{miss[k]:.2e}" for k in bad)
                + f"; tolerance {REPEAT_TOL}); labelled at other settings?")
        misses.append(miss)
        frame = before.copy()
        frame.labels["energy"] = np.asarray(after.labels["energy"], float)
        frame.atoms.info[flavour] = float(before.labels["energy"])
        # forces, dipole and polarizability are what labelling with `new` gives
        frame.atoms.info["label_fingerprint"] = new.settings_fingerprint()
        merged.append(frame)
    write_frames(merged, out)
    energies.unlink()  # kept until here: a failed check reruns nothing
    worst = {k: float(max(m[k] for m in misses)) for k in REPEAT_TOL}
    shift = np.array([float(f.labels["energy"]) - float(f.atoms.info[flavour])
                      for f in merged])
    return report, (f"wrote {out}: {len(merged)} frames with {new.config.energy} energies; "
                    f"the runs repeat the old labels to {worst}; {new.config.energy} - "
                    f"{old.config.energy} {shift.min():.4f} to {shift.max():.4f} eV per frame")


__all__ = ["REPEAT_TOL", "reenergize"]
