"""Continuing an MD run: the last complete frame, the log trimmed to it, and the summary
of the whole run made from its segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fieldforce.errors import DataError


def last_frame(path: Path):
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


def trim_log(path: Path, time_fs: float, step: int | None = None) -> None:
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


def log_rows(path: Path) -> np.ndarray:
    """md.log's table [rows, columns] (time, Epot, Ekin, Etot, T, ...); empty if none."""
    if not path.is_file():
        return np.zeros((0, 5))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty table
        rows = np.loadtxt(path, comments="#", ndmin=2)
    return rows if rows.size else np.zeros((0, 5))


def whole_run(run, observed: dict, wall: float, segment: dict
              ) -> tuple[dict, float, list[dict]]:
    """The statistics of the whole run, this segment combined with those before it
    (from the previous summary.json; else from md.log's rows): step-weighted mean
    temperature and polarization, the NVE drift fitted over all of md.log, total wall
    time, the domain findings of every segment."""
    import json

    previous_path = run.settings.output / "summary.json"
    before_steps = run.start_step
    try:
        previous = json.loads(previous_path.read_text())
    except (OSError, ValueError):
        previous = None
    rows = log_rows(run.log)
    if previous is not None and previous.get("step") == run.start_step:
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
        earlier = rows[rows[:, 0] <= run.time_fs + 1e-6] if len(rows) else rows
        t_before = float(earlier[:, 4].mean()) if len(earlier) else None
        known, wall_before, p_before, domain_before = [], 0.0, None, None
        if previous is not None and 0 < previous.get("step", 0) < run.start_step:
            # the summary of the pieces before the killed one still holds: keep their
            # wall times and their training-domain record (warnings, largest excess)
            known = previous.get("segments") or []
            wall_before = sum(x.get("wall_time_s") or 0.0 for x in known)
            domain_before = previous.get("domain")
        start = known[-1]["start_step"] + known[-1]["steps_done"] if known else 0
        segments = known + [{"start_step": start, "steps_done": before_steps - start,
                             "wall_time_s": None, "mean_temperature_K": t_before,
                             "from": "md.log rows (the run was interrupted)"}]

    def weighted(a, b):
        if a is None or not before_steps:
            return b
        if b is None or not run.steps_done:
            return a
        total = before_steps + run.steps_done
        return ((np.asarray(a) * before_steps + np.asarray(b) * run.steps_done)
                / total).tolist()

    out = dict(observed)
    out["mean_temperature_K"] = weighted(t_before, observed.get("mean_temperature_K"))
    mean_p = weighted(p_before, observed.get("mean_polarization_e_per_A2"))
    if mean_p is not None:
        from fieldforce.units import UC_PER_CM2

        out["mean_polarization_e_per_A2"] = mean_p
        out["mean_polarization_uC_per_cm2"] = (np.asarray(mean_p) / UC_PER_CM2).tolist()
    if run.settings.ensemble == "nve" and len(rows) >= 2:
        slope = np.polyfit(rows[:, 0], rows[:, 3], 1)[0]  # eV/fs, Etot over the whole run
        out["energy_drift_eV_per_atom_per_ps"] = float(slope * 1000.0 / len(run.atoms))
    if domain_before and "domain" in out:
        domain = dict(out["domain"])
        domain["warnings"] = list(domain_before.get("warnings", [])) + [
            m for m in domain["warnings"] if m not in domain_before.get("warnings", [])]
        for key in ("max_field_V_per_A", "max_extrapolation"):
            domain[key] = max(domain.get(key) or 0.0, domain_before.get(key) or 0.0)
        out["domain"] = domain
    return out, wall_before + wall, segments + [segment]


__all__ = ["last_frame", "log_rows", "trim_log", "whole_run"]
