"""Read and write labelled structures as extended XYZ (through ASE).

``read_frames`` takes a canonical file (canonical keys, internal units), a
data-spec YAML, or a :class:`DataSpec`, converts every label to internal units
and canonical shape, validates it, and returns :class:`Frame` objects whose
``atoms`` carry geometry and tags only.

``write_frames`` writes the canonical form: labels under canonical names,
internal units, tensors as 9 numbers row-major, Born charges as a 9-column
per-atom array. It writes to a temporary file and renames it, so a reader never
sees a half-written file. ``.gz`` names are compressed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fieldforce.data.atomic import atomic_path
from fieldforce.data.frame import Frame
from fieldforce.data.labels import LABELS, SYMMETRIC_LABELS
from fieldforce.data.spec import DataSpec, load_spec
from fieldforce.data.validation import check_geometry, check_symmetric, coerce_label
from fieldforce.errors import DataError, FieldforceError
from fieldforce.units import parse_unit

# Keys ASE itself uses in info/arrays; never taken as tags.
_ASE_KEYS = {"numbers", "positions", "species", "pos", "Z", "pbc", "Lattice", "Properties"}


def _is_spec_path(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def read_frames(source: str | Path | DataSpec, index: str | int | slice = ":") -> list[Frame]:
    """Read labelled frames in internal units.

    Parameters
    ----------
    source
        canonical extxyz path (``.xyz``/``.extxyz``, optionally ``.gz``), a data-spec
        YAML path, or a :class:`DataSpec`.
    index
        ASE-style frame selection (``":"``, ``0``, ``"10:20"``).

    Raises
    ------
    DataError, ConfigError, UnitError
        one sentence naming the file, frame and key.
    """
    if isinstance(source, DataSpec):
        spec = source
    elif _is_spec_path(Path(source)):
        spec = load_spec(source)
    else:
        spec = DataSpec(path=Path(source))
    return _read_with_spec(spec, index)


def source_files(source: str | Path | DataSpec) -> dict[str, Path]:
    """The files behind a data source: the spec file and the data it names, or the file."""
    if isinstance(source, DataSpec):
        return {"input data": source.path}
    path = Path(source)
    if _is_spec_path(path) and path.is_file():
        try:
            return {"data spec": path, "input data": load_spec(path).path}
        except FieldforceError:
            return {"data spec": path}
    return {"input data": path}


def _read_with_spec(spec: DataSpec, index) -> list[Frame]:
    import ase.io

    path = spec.path
    where = str(path)
    if not path.exists():
        origin = f" (named in {spec.origin})" if spec.origin else ""
        raise DataError(f"no such file{origin}", path=where)
    if path.is_dir():
        raise DataError("is a directory, not a structure file", path=where)
    from fieldforce.data.extxyz import read_text, scan

    # ASE stops quietly at a frame cut short (a truncated file reads as fewer frames):
    # the layout is checked first, so that no frame is lost without a word
    text = read_text(path)
    problem = scan(text, line_end_required=True, check_values=False).problem
    if problem is not None and problem.no_line_end:
        import warnings

        warnings.warn(f"{where}, frame {problem.frame}: line {problem.line}: "
                      f"{problem.message}", stacklevel=3)
    elif problem is not None:
        raise problem.error(path)
    try:
        # from the text already in memory: ASE seeks back once per frame, and a seek in
        # a gzip stream decompresses from the start (quadratic in the file's length)
        images = ase.io.read(io.StringIO(text), index=index, format="extxyz")
    except FieldforceError:
        raise
    except Exception as exc:  # noqa: BLE001 - ASE raises many types on bad text
        from fieldforce.data.extxyz import explain

        raise explain(path, exc) from None
    if not isinstance(images, list):
        images = [images]
    if not images:
        raise DataError("holds no frames (an empty file?)", path=where)
    first = 0
    if isinstance(index, int):
        first = index
    elif isinstance(index, str) and ":" in index and index.split(":")[0].strip():
        first = int(index.split(":")[0])
    length = parse_unit(spec.positions_unit, "length").factor
    factors = {n: parse_unit(u, LABELS[n].dimension).factor for n, u in spec.units.items()}
    return [_to_frame(atoms, first + k, spec, where, length, factors)
            for k, atoms in enumerate(images)]


def _raw_sources(atoms) -> dict:
    """Everything ASE parsed for one frame: info, per-atom arrays, calculator results."""
    raw = dict(atoms.info)
    raw.update({k: v for k, v in atoms.arrays.items() if k not in ("numbers", "positions")})
    if atoms.calc is not None:
        raw.update(getattr(atoms.calc, "results", {}))
    return raw


def _to_frame(atoms, index: int, spec: DataSpec, where: str, length: float, factors) -> Frame:
    from ase import Atoms

    raw = _raw_sources(atoms)
    n = len(atoms)
    labels: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for name in LABELS:
        key = spec.file_key(name)
        if key not in raw:
            if name in spec.keys:
                raise DataError(f"missing (the spec maps {name} to it)",
                                path=where, frame=index, key=key)
            continue
        used.add(key)
        arr = coerce_label(name, raw[key], n, path=where, frame=index, key=key)
        arr = arr * factors.get(name, 1.0)
        if name in SYMMETRIC_LABELS:
            check_symmetric(name, arr, path=where, frame=index, key=key)
        labels[name] = arr
    if "free_energy" in raw:
        used.add("free_energy")
    pbc = atoms.pbc
    if not atoms.cell.array.any():
        # Some files write an all-zero Lattice for molecules; that means "no cell".
        pbc = False
    clean = Atoms(numbers=atoms.numbers, positions=atoms.positions * length,
                  cell=atoms.cell.array * length, pbc=pbc)
    # fixed atoms (extxyz move_mask: e.g. a slab's bottom layers) and tags (ase.build's
    # layer numbers) travel with the structure
    clean.set_constraint([c.copy() for c in atoms.constraints])
    if atoms.has("tags"):
        clean.set_tags(atoms.get_tags())
    keep = spec.tags
    for key, value in atoms.info.items():
        if key in used or key in _ASE_KEYS:
            continue
        if keep is None or key in keep:
            clean.info[key] = value
    frame = Frame(clean, labels, where, index)
    check_geometry(frame)
    return frame


def _canonical_atoms(frame: Frame):
    atoms = frame.atoms.copy()
    atoms.calc = None
    for name, value in frame.labels.items():
        spec = LABELS[name]
        arr = np.asarray(value, dtype=float)
        if spec.per_atom:
            # [N] scalars, [N, 3] vectors, [N, 9] row-major tensors
            atoms.arrays[name] = arr.reshape(len(atoms), -1) if spec.shape else arr.reshape(-1)
        elif spec.shape == ():
            atoms.info[name] = float(arr)
        else:
            atoms.info[name] = arr.reshape(-1)
    return atoms


def write_frames(frames: Iterable[Frame], path: str | Path) -> Path:
    """Write frames as canonical extxyz, atomically. Returns the path written."""
    import ase.io

    path = Path(path)
    images = [_canonical_atoms(f) for f in frames]
    with atomic_path(path) as tmp:
        ase.io.write(tmp, images, format="extxyz", write_info=True)
    return path
