"""Label many structures with a DFT backend: progress, workers, resume, failures.

A labelling job is long and may be killed at any time, so every finished frame
is written at once, atomically, to ``OUT.parts/<hash>.xyz`` beside the output (named
by its structure, requested field and properties), tagged with the backend's settings
fingerprint and the properties asked for. A rerun reuses every part (and every frame of
an existing ``OUT``) whose fingerprint, properties, field and positions match, wherever
that structure now stands in the input (which may have been reordered or extended),
and whose result the backend still accepts (:meth:`Backend.accepts`: e.g. a slab's felt
field within the current aiming tolerance), and labels only the rest.
Frames whose calculation fails are reported, listed in ``OUT.failures.json``
and left out; the others are written to ``OUT`` atomically at the end, and the
parts folder is removed.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fieldforce.data.frame import Frame
from fieldforce.errors import BackendError, FieldforceError
from fieldforce.reference.backend import Backend, check_properties

_FP_KEY = "label_fingerprint"
_PROPS_KEY = "label_properties"
# the field asked for (a backend may label the field it measured, e.g. GPAW slabs)
_FIELD_KEY = "label_field"


@dataclass
class LabelReport:
    """What a labelling job did."""

    output: Path
    total: int
    labelled: int = 0
    reused: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    seconds_per_frame: float = float("nan")
    stopped_early: bool = False

    def __str__(self) -> str:
        lines = [
            f"{self.output}: {self.total} frames, {self.labelled} labelled now, "
            f"{self.reused} reused, {len(self.failed)} failed, {self.seconds:.1f} s"
            + (f" ({self.seconds_per_frame:.2f} s/frame)" if self.labelled else "")
        ]
        if self.stopped_early:
            lines.append("stopped at the time limit; run the same command again to continue")
        for index, reason in sorted(self.failed.items()):
            lines.append(f"  frame {index}: {reason}")
        return "\n".join(lines)


def _frame_field(frame: Frame, efield: np.ndarray | None) -> np.ndarray:
    return np.asarray(efield if efield is not None else frame.efield, dtype=float).reshape(3)


def _matches(done: Frame, todo: Frame, backend: Backend, props: set[str], efield) -> bool:
    """Was ``done`` labelled from ``todo`` with these settings (and does the backend accept
    how close it came to the field asked)?"""
    info = done.atoms.info
    return (
        info.get(_FP_KEY) == backend.settings_fingerprint()
        and set(str(info.get(_PROPS_KEY, "")).split(",")) >= props
        and len(done.atoms) == len(todo.atoms)
        and np.array_equal(done.atoms.numbers, todo.atoms.numbers)
        and np.allclose(done.atoms.positions, todo.atoms.positions, atol=1e-8, rtol=0)
        and np.allclose(np.asarray(info.get(_FIELD_KEY, done.efield), float), efield,
                        atol=1e-10, rtol=0)
        and backend.accepts(done.labels, efield)
    )


def structure_key(frame: Frame) -> bytes:
    """Atomic numbers and positions rounded to 1e-6 Å: the lookup key of a labelled frame
    (:func:`_matches` then checks the tolerance, the field and the settings)."""
    atoms = frame.atoms
    return atoms.numbers.tobytes() + np.round(atoms.positions, 6).tobytes()


def _job_key(frame: Frame) -> bytes:
    """:func:`structure_key` and the field the labelling job was asked for (a labelled
    frame records it: the field the DFT felt may differ within the backend's tolerance)."""
    requested = np.asarray(frame.atoms.info.get(_FIELD_KEY, frame.efield), float)
    return structure_key(frame) + np.round(requested, 9).tobytes()


def finished_parts(parts: Path) -> list[Path]:
    """The part files in ``parts`` that a labelling job finished, in name order.

    A job killed while writing a part leaves the hidden temporary (``.NAME.xyz.XXXX.xyz``,
    see :func:`fieldforce.data.atomic.atomic_path`) half-written: never read those.
    """
    return sorted(p for p in Path(parts).glob("*.xyz") if not p.name.startswith("."))


def labelled_so_far(output: str | Path) -> list[Frame]:
    """What a labelling job into ``output`` has produced: the file, if the job finished,
    and the frames finished in its parts folder ``output.parts`` (a job stopped by its
    time limit, or still running), once each (by structure and requested field), in the
    order of the job's input (the ``label_position`` every labelled frame records)."""
    from fieldforce.data.io import read_frames
    from fieldforce.errors import DataError

    output = Path(output)
    parts = output.with_name(output.name + ".parts")
    if not output.exists() and not parts.is_dir():
        raise DataError(f"{output}: no such labelled file, and no {parts.name} folder of a "
                        "labelling job beside it")
    frames = read_frames(output) if output.exists() else []
    if parts.is_dir():
        frames += [f for p in finished_parts(parts) for f in read_frames(p)]
    unique: dict[bytes, Frame] = {}
    for f in frames:
        unique.setdefault(_job_key(f), f)
    return sorted(unique.values(), key=lambda f: f.atoms.info.get("label_position", -1))


def _part_name(frame: Frame, props: set[str]) -> str:
    import hashlib

    blob = _job_key(frame) + ",".join(sorted(props)).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _label_one(backend: Backend, frame: Frame, efield, props: set[str]) -> Frame:
    import inspect

    charge = frame.labels.get("total_charge")
    if charge is not None and "charge" in inspect.signature(backend.label).parameters:
        labels = dict(backend.label(frame.atoms, efield, props, charge=float(charge)))
    else:  # the backend's own charge setting (a backend written before the argument)
        labels = dict(backend.label(frame.atoms, efield, props))
        made = labels.get("total_charge")
        if charge is not None and made is not None and abs(float(made) - float(charge)) > 1e-9:
            raise BackendError(f"the frame's net charge is {float(charge):g} e but the "
                               f"{backend.name} backend labelled it at {float(made):g} e "
                               "(it takes no per-frame charge)")
    diagnostics = labels.pop("info", {})
    out = Frame(frame.atoms.copy(), labels, frame.source, frame.index)
    out.atoms.info.update(diagnostics)
    # Labels the input carried but the backend did not produce stay (e.g. tags).
    for key, value in frame.labels.items():
        out.labels.setdefault(key, value)
    out.atoms.info[_FP_KEY] = backend.settings_fingerprint()
    out.atoms.info[_PROPS_KEY] = ",".join(sorted(props))
    out.atoms.info[_FIELD_KEY] = np.asarray(efield, dtype=float).copy()
    return out


def _worker(backend: Backend, frame: Frame, efield, props, threads: int):
    """Process-pool entry point: the labelled Frame, or the reason it failed."""
    if hasattr(backend, "config") and getattr(backend.config, "threads", 0) is None:
        backend.config.threads = threads
    try:
        return _label_one(backend, frame, efield, props)
    except FieldforceError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a DFT code can fail in many ways
        return f"{type(exc).__name__}: {exc}"


def label_frames(
    source: str | Path | Sequence[Frame],
    output: str | Path,
    backend: Backend,
    properties: Iterable[str],
    *,
    efield: Sequence[float] | None = None,
    workers: int = 1,
    progress: bool = True,
    max_seconds: float | None = None,
) -> LabelReport:
    """Label every frame of ``source`` and write a canonical extxyz to ``output``.

    Parameters
    ----------
    source
        canonical extxyz path, data-spec YAML, or a list of frames.
    output
        canonical extxyz to write (``.xyz`` or ``.xyz.gz``).
    backend
        a :class:`~fieldforce.reference.backend.Backend`.
    properties
        subset of energy, forces, dipole, polarizability, born_charges.
    efield
        [3] uniform field in V/Å for every frame; ``None``: each frame's own
        ``efield`` label (zero where it has none).
    workers
        parallel processes; each gets ``cores // workers`` threads.
    max_seconds
        stop starting new frames after this wall time (finished frames are
        kept in the parts folder; rerun to continue). ``OUT`` is written only
        when every frame is done or failed.
    """
    from fieldforce.data.atomic import refuse_overwriting, write_json
    from fieldforce.data.io import read_frames, source_files, write_frames

    props = check_properties(properties)
    output = Path(output)
    from_file = not (isinstance(source, Sequence) and not isinstance(source, str))
    if from_file:
        refuse_overwriting({"labelled output": output}, source_files(source))
    frames = read_frames(source) if from_file else list(source)
    for i, f in enumerate(frames):
        if f.index is None:
            f.index = i
    if efield is not None and np.asarray(efield).shape != (3,):
        raise BackendError(f"efield must be 3 numbers in V/Å, got {efield!r}")
    backend.validate(frames)
    strongest = max((float(np.linalg.norm(_frame_field(f, efield))) for f in frames),
                    default=0.0)
    if strongest > backend.max_field:
        warnings.warn(f"fields up to {strongest:g} V/Å exceed {backend.max_field:g} V/Å, the "
                      f"sane bound of the {backend.name} backend: {backend.max_field_reason}",
                      stacklevel=2)
    parts = output.with_name(output.name + ".parts")
    report = LabelReport(output=output, total=len(frames))

    done: dict[int, Frame] = {}
    # every frame labelled before (the output, the parts), found by its structure: the
    # input may have been reordered or extended since
    previous = read_frames(output) if output.exists() else []
    if parts.is_dir():
        for part in finished_parts(parts):
            previous += read_frames(part)
    by_structure: dict[bytes, list[Frame]] = {}
    for cand in previous:
        by_structure.setdefault(structure_key(cand), []).append(cand)
    for position, frame in enumerate(frames):
        fe = _frame_field(frame, efield)
        for cand in by_structure.get(structure_key(frame), []):
            if _matches(cand, frame, backend, props, fe):
                done[position] = cand
                break
    report.reused = len(done)
    todo = [p for p in range(len(frames)) if p not in done]

    start = time.perf_counter()
    parts.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    threads = max(1, cores // max(1, workers))
    bar = _progress(len(frames), report.reused, progress, output.name)

    def finish(position: int, result) -> None:
        if isinstance(result, Frame):
            result.atoms.info["label_position"] = position
            # named by content, not position: a reordered input never overwrites a part
            write_frames([result], parts / f"{_part_name(result, props)}.xyz")
            done[position] = result
            report.labelled += 1
        else:
            report.failed[frames[position].index] = result
        bar.update(1)
        bar.set_postfix(failed=len(report.failed))

    jobs = [(p, frames[p], _frame_field(frames[p], efield)) for p in todo]
    if workers <= 1:
        for position, frame, fe in jobs:
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                report.stopped_early = True
                break
            finish(position, _worker(backend, frame, fe, props, cores))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending = {}
            queue = list(jobs)
            while queue or pending:
                while queue and len(pending) < workers:
                    if max_seconds is not None and time.perf_counter() - start > max_seconds:
                        report.stopped_early = True
                        queue.clear()
                        break
                    position, frame, fe = queue.pop(0)
                    fut = pool.submit(_worker, backend, frame, fe, props, threads)
                    pending[fut] = position
                if not pending:
                    break
                fut = next(as_completed(pending))
                finish(pending.pop(fut), fut.result())
    bar.close()
    report.seconds = time.perf_counter() - start
    if report.labelled:
        report.seconds_per_frame = report.seconds / report.labelled

    if report.stopped_early:
        return report
    ordered = [done[p] for p in sorted(done)]
    failures = output.with_name(output.name + ".failures.json")
    if report.failed:
        write_json({str(k): v for k, v in report.failed.items()}, failures)
    else:  # a rerun that labelled what failed before leaves no stale list
        failures.unlink(missing_ok=True)
    if ordered:
        write_frames(ordered, output)
    for item in parts.iterdir():  # the parts, and any temporary a killed writer left
        item.unlink()
    parts.rmdir()
    return report


def add_label_command(subparsers, workers: int = 1):
    """The ``label INP OUT [--workers N] [--max-hours H]`` subcommand of a dataset maker
    (``python -m fieldforce.datasets.make_*``); run it with :func:`run_label_command`.
    Returns the subcommand's parser (a maker may add its own options)."""
    p = subparsers.add_parser("label", help="label the structures (resumable)")
    p.add_argument("inp", type=Path, help="the unlabelled extxyz")
    p.add_argument("out", type=Path, help="the labelled file (parts beside it until done)")
    p.add_argument("--workers", type=int, default=workers)
    p.add_argument("--max-hours", type=float, default=None,
                   help="stop starting new frames after this many hours (rerun to continue)")
    return p


def run_label_command(args, backend: Backend, properties: Iterable[str]) -> int:
    """Label as :func:`add_label_command`'s arguments say; exit status 0 when done, 3 when
    stopped early by ``--max-hours`` (rerun to continue)."""
    seconds = None if args.max_hours is None else 3600 * args.max_hours
    report = label_frames(args.inp, args.out, backend, properties, workers=args.workers,
                          max_seconds=seconds)
    print(report)
    return 3 if report.stopped_early else 0


def _progress(total: int, initial: int, enabled: bool, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=f"labelling {name}",
                unit="frame", dynamic_ncols=True)
