"""Regenerate the shipped metal-surface dataset: sample slabs, label them with GPAW.

Run (the shipped file was made exactly so, see ``metal_meta.json``)::

    python -m fieldforce.datasets.make_metal sample --out metal_unlabelled.xyz
    python -m fieldforce.datasets.make_metal label metal_unlabelled.xyz metal.xyz.gz \\
        --workers 16 [--max-hours H]
    python -m fieldforce.datasets.make_metal finish metal.xyz.gz [--partial]

``sample`` builds (with :mod:`fieldforce.datasets.metal_slabs`) Cu(100), Cu(111) and
W(110) slabs (2x2 surface cells, three layers, the bottom one fixed) with an adatom at
its stable and saddle sites and along its hop path, thermal displacements of adatom
slabs and clean slabs, and clean slabs of five and seven layers, each at a field along
the surface normal between -1 and +1 V/Å. Cu hop paths come from a climbing-image NEB
with ASE's EMT potential (only to place the atoms: the labels are DFT); W has no EMT
parameters, so its path is the straight line between sites, each point lifted to a fixed
distance from the surface atoms.
The frames are ordered by priority (hop paths at 0 and +-0.5 V/Å, thermal frames, thick
slabs, paths at +-1 V/Å; all Cu before W, whose frames cost ten times more) so that a
partly labelled set is already useful.

``label`` is labelling with the dataset's GPAW settings (:data:`SETTINGS`), resumable
like any labelling job: it can run in pieces (``--max-hours``) and on many cores.
``finish`` (:mod:`fieldforce.datasets.metal_finish`) writes ``metal_meta.json`` beside the
labelled file; ``--partial`` first collects the frames labelled so far (the parts folder)
into it, ``--extra`` adds other labelled files (the relaxed W(110) states).

``relax SYSTEM minimum|saddle --size 3 3 --out DIR [--max-hours H]`` relaxes an adatom's
minimum, or its hop saddle held over the path's midpoint by symmetry, with the dataset's
DFT at zero field, resumably (:mod:`fieldforce.datasets.relax`; rerun the same command to
continue; k-points scaled to the cell). For W(110), whose straight-line path is not
relaxed, this is what the experimental check of Delta mu and Delta alpha needs (BENCHMARKS).

``relaxed W(110) --minimum DIR --saddle DIR --out F.xyz`` writes what the relaxations
found as unlabelled path frames (image 0 and the saddle image, zero target field unless
``--fields``) for ``label F.xyz OUT --kpts KX KY`` and ``benchmarks/w_adatom_dft.py``.
With ``--thermal N`` it writes instead N thermal displacements of each state at random
fields (adatom_thermal frames around the DFT geometries, not the unrelaxed path): the
energy landscape near the states a W model's barrier runs between.

``reenergize LABELLED OUT [--workers N] [--max-hours H]`` relabels the energies of a set
labelled with GPAW's zero-smearing extrapolation with the free energy (the default since
2026-12-05): one SCF run per frame at the applied strength it was labelled at (a third of a
full label), resumable like ``label``. Forces, dipoles and polarizabilities do not depend on
which energy is reported, so they are kept, once the run has shown that it repeats the old
one: the same field felt and dipole, and its extrapolated enthalpy equal to the old label
(:mod:`fieldforce.reference.reenergize`); a frame that does not repeat is an error naming
it.

``hops --out examples/metal`` writes the end states of each hop on a 3x3 surface cell
(``cu100_hop_initial.xyz``, ...), the starting points of ``fieldforce analyze barrier``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ase import Atoms

from fieldforce.data.frame import Frame
from fieldforce.datasets.metal_slabs import (
    clean_slab,
    hop_path,
    surface_size,
    thermal,
    write_hops,
)
from fieldforce.reference.labelling import add_label_command, run_label_command

#: Level of theory. LCAO (dzp) costs ~6 min per frame with its polarizability on one
#: core for the 13-atom Cu slabs, fd ~5x more; benchmarks/metal_convergence.py
#: measures what the choices change.
#: field_tol: the labels hold the field each slab felt, so a miss only shifts where the
#: fields are sampled; 0.15 V/Å spends a correction (one more SCF run, ~1/3 of a frame) on
#: the W adatom slabs (0.2 V/Å from the adatom's dipole) but not on Cu (<= 0.11 V/Å).
#: energy: the backend's default, the free energy the forces and dU/dF = -mu
#: differentiate. The set was labelled with GPAW's zero-smearing extrapolation until
#: 2026-12-05 and its energies relabelled with `reenergize` (one SCF run per frame).
SETTINGS = {"xc": "PBE", "mode": "lcao", "basis": "dzp", "h": 0.2, "kpts": (4, 4),
            "smearing": 0.1, "field_step": 0.05, "min_vacuum": 5.0, "field_tol": 0.15}
PROPERTIES = ("energy", "forces", "dipole", "polarizability")
#: target fields along the normal at the path points (V/Å), in labelling order
PATH_FIELDS = (0.0, 0.5, -0.5, 1.0, -1.0)
THERMAL_TEMPERATURES = (300.0, 600.0, 900.0)  # K
THERMAL_COUNTS = {"Cu(100)": 16, "Cu(111)": 16, "W(110)": 8}
CLEAN_COUNTS = {"Cu(100)": 4, "Cu(111)": 4, "W(110)": 2}
#: thicker clean slabs: (system, layers, target fields)
THICK = (("Cu(100)", 5, (0.0, 0.5, -0.5)), ("Cu(100)", 7, (0.0, 0.5)),
         ("Cu(111)", 5, (0.0, 0.5)))
SEED = 20261203
SYSTEMS = ("Cu(100)", "Cu(111)", "W(110)")
#: images of the hop path `relax` starts from: the minimum is image 0, the saddle the middle
RELAX_IMAGES = 7


def _frame(atoms: Atoms, system: str, kind: str, field: float, **tags) -> Frame:
    """An unlabelled frame of ``atoms`` tagged with its system, config_type and target
    field, at that field (V/Å) along the surface normal z."""
    atoms = atoms.copy()
    atoms.info.update(system=system, config_type=kind, target_field=float(field), **tags)
    return Frame(atoms, {"efield": field * np.array([0.0, 0.0, 1.0])})


def sample(out: Path, seed: int = SEED, systems=SYSTEMS) -> dict:
    """Every geometry of the dataset in labelling order; writes an unlabelled extxyz."""
    from fieldforce.data.io import write_frames

    rng = np.random.default_rng(seed)
    paths = {s: hop_path(s) for s in systems}
    # the hop's distinct images (a symmetric hop's second half mirrors its first)
    path_groups = []
    for fields in (PATH_FIELDS[:3], PATH_FIELDS[3:]):
        group = []
        for system in systems:
            path = paths[system]
            keep = range(len(path)) if system == "Cu(111)" else range(len(path) // 2 + 1)
            for field in fields:
                group += [_frame(path[i], system, "adatom_path", field, image=i) for i in keep]
        path_groups.append(group)
    # thicker clean slabs: how the dipole and polarizability grow with thickness (the
    # screening charges' separation) fixes what interior atoms carry
    thick = [_frame(clean_slab(system, layers=layers), system, "clean_thick", field,
                    layers=layers)
             for system, layers, fields_thick in THICK if system in systems
             for field in fields_thick]
    group = []
    for system in systems:
        path = paths[system]
        for k in range(THERMAL_COUNTS[system]):
            temperature = THERMAL_TEMPERATURES[k % len(THERMAL_TEMPERATURES)]
            i = int(rng.integers(len(path)))
            group.append(_frame(thermal(path[i], temperature, rng), system, "adatom_thermal",
                                rng.uniform(-1, 1), image=i, temperature=temperature))
        for k in range(CLEAN_COUNTS[system]):
            temperature = THERMAL_TEMPERATURES[k % len(THERMAL_TEMPERATURES)]
            group.append(_frame(thermal(clean_slab(system), temperature, rng), system,
                                "clean_thermal", rng.uniform(-1, 1), temperature=temperature))
    thermal_group = [group[i] for i in rng.permutation(len(group))]
    # Thermal frames come right after the paths at 0 and +-0.5 V/Å: a model trained on
    # path images alone has no repulsion to stop a relaxation or an MD run from
    # collapsing the slab (measured on the first 16 frames), so they matter more to a
    # partly labelled set than the thick slabs and the +-1 V/Å paths.
    groups = [path_groups[0], thermal_group, thick, path_groups[1]]
    frames = [f for g in groups for f in g]
    # W frames last: each costs ~10x a Cu frame (measured: ~110 against 7-10 min on one
    # core), and the Cu chain is useful on its own
    frames = ([f for f in frames if not f.atoms.info["system"].startswith("W")]
              + [f for f in frames if f.atoms.info["system"].startswith("W")])
    write_frames(frames, out)
    counts: dict[str, int] = {}
    for f in frames:
        key = f"{f.atoms.info['system']} {f.atoms.info['config_type']}"
        counts[key] = counts.get(key, 0) + 1
    return {"frames": len(frames), "counts": counts}


def dataset_backend(kpts: tuple[int, int] | None = None, **settings):
    """The GPAW backend at the dataset's settings (``settings`` override some)."""
    from fieldforce.reference.backend import get_backend

    return get_backend("gpaw", **{**SETTINGS, "kpts": tuple(kpts or SETTINGS["kpts"]),
                                  **settings})


def _kpts_for(size: tuple[int, int]) -> tuple[int, int]:
    """The dataset's k-point density (SETTINGS, for 2x2 cells) on a ``size`` cell."""
    return tuple(max(1, round(SETTINGS["kpts"][k] * 2 / size[k])) for k in range(2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fieldforce.datasets.make_metal")
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("sample", help="build the slabs")
    p.add_argument("--out", type=Path, default=Path("metal_unlabelled.xyz"))
    p.add_argument("--seed", type=int, default=SEED)
    p = add_label_command(sub)
    p.add_argument("--kpts", type=int, nargs=2, default=None, metavar=("KX", "KY"),
                   help="k-points (default: the dataset's, for its 2x2 cells; what "
                        "`relaxed` prints for larger cells)")
    p = sub.add_parser("relax", help="relax an adatom's minimum or its saddle held by "
                       "symmetry, with the dataset's DFT at zero field (resumable)")
    p.add_argument("system", choices=SYSTEMS)
    p.add_argument("which", choices=("minimum", "saddle"))
    p.add_argument("--size", type=int, nargs=2, default=(3, 3), metavar=("NX", "NY"),
                   help="surface cell (default 3 3)")
    p.add_argument("--out", type=Path, required=True, help="folder of the relaxation")
    p.add_argument("--fmax", type=float, default=0.05, help="force tolerance, eV/Å")
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--max-hours", type=float, default=None,
                   help="stop after the step that passes this many hours (rerun to continue)")
    p = sub.add_parser("relaxed", help="the geometries `relax` found, as unlabelled "
                       "adatom_path frames at the given target fields (for `label`)")
    p.add_argument("system", choices=SYSTEMS)
    p.add_argument("--minimum", type=Path, help="folder of the minimum's relaxation")
    p.add_argument("--saddle", type=Path, help="folder of the saddle's relaxation")
    p.add_argument("--fields", type=float, nargs="+", default=[0.0],
                   help="target fields, V/Å (default 0: what w_adatom_dft.py reads)")
    p.add_argument("--unconverged", action="store_true",
                   help="take the last step of relaxations that have not converged yet")
    p.add_argument("--thermal", type=int, default=0, metavar="N",
                   help="instead of the states at --fields: N Einstein-model thermal "
                        "displacements of each state (300/600/900 K in turn), each at a "
                        "random field in -1..1 V/Å, tagged adatom_thermal")
    p.add_argument("--seed", type=int, default=SEED, help="of the thermal displacements")
    p.add_argument("--out", type=Path, required=True, help="the unlabelled extxyz")
    p = sub.add_parser("reenergize", help="relabel the energies with the free energy: one "
                       "SCF run per frame, the other labels kept (resumable)")
    p.add_argument("labelled", type=Path, help="a set labelled with energy: extrapolated")
    p.add_argument("out", type=Path, help="the set with free energies (parts beside it)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--max-hours", type=float, default=None,
                   help="stop starting new frames after this many hours (rerun to continue)")
    p.add_argument("--kpts", type=int, nargs=2, default=None, metavar=("KX", "KY"),
                   help="k-points of the set (default: the dataset's)")
    p = sub.add_parser("hops", help="write the hops' end states (3x3 cells) for NEB")
    p.add_argument("--out", type=Path, default=Path("examples/metal"))
    p = sub.add_parser("finish", help="write metal_meta.json next to the labelled file")
    p.add_argument("labelled", type=Path)
    p.add_argument("--partial", action="store_true",
                   help="first collect the frames labelled so far from the parts folder")
    p.add_argument("--parts", type=Path, default=None,
                   help="the parts folder of the labelling job (default: LABELLED.parts)")
    p.add_argument("--planned", type=Path, default=None,
                   help="the unlabelled file (to state how many of the planned are labelled)")
    p.add_argument("--extra", type=Path, nargs="+", default=[],
                   help="labelled files to ship as well (the relaxed W(110) minimum and "
                        "saddle of `relax` / `relaxed` / `label`), each with the frames "
                        "its labelling job has finished in FILE.parts (a job stopped by "
                        "--max-hours or still running); frames already in the set are not "
                        "repeated")
    args = parser.parse_args(argv)

    if args.step == "sample":
        info = sample(args.out, args.seed)
        info.update(seed=args.seed, settings={k: list(v) if isinstance(v, tuple) else v
                                              for k, v in SETTINGS.items()})
        print(json.dumps(info, indent=1))
        return 0
    if args.step == "hops":
        write_hops(args.out)
        return 0
    if args.step == "relax":
        return _relax(args)
    if args.step == "relaxed":
        return _relaxed(args)
    if args.step == "label":
        return run_label_command(args, dataset_backend(args.kpts), PROPERTIES)
    if args.step == "reenergize":
        return _reenergize(args)
    from fieldforce.datasets.metal_finish import finish  # imports this module's settings

    return finish(args)


def _reenergize(args) -> int:
    """Free energies for a set labelled with the extrapolated ones (see the module doc)."""
    from fieldforce.reference.reenergize import reenergize

    seconds = None if args.max_hours is None else 3600 * args.max_hours
    report, summary = reenergize(args.labelled, args.out,
                                 dataset_backend(args.kpts, energy="extrapolated"),
                                 dataset_backend(args.kpts, energy="free"),
                                 workers=args.workers, max_seconds=seconds)
    print(report)
    if summary:
        print(summary)
    return 3 if report.stopped_early else 1 if report.failed else 0


def _relax(args) -> int:
    from fieldforce.datasets.relax import hold_lateral, relax

    size = tuple(args.size)
    kpts = _kpts_for(size)  # the same k-point density as the dataset's 2x2 cells
    backend = dataset_backend(kpts)
    path = hop_path(args.system, images=RELAX_IMAGES, size=size)
    atoms = path[0] if args.which == "minimum" else path[RELAX_IMAGES // 2]
    if args.which == "saddle":
        hold_lateral(atoms, len(atoms) - 1)  # the adatom is the last atom
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = None if args.max_hours is None else 3600 * args.max_hours
    result = relax(atoms, backend.calculator(atoms), args.out, fmax=args.fmax,
                   max_steps=args.max_steps, max_seconds=seconds)
    print(f"{args.system} {args.which} ({size[0]}x{size[1]}, k {kpts[0]}x{kpts[1]}): "
          f"{result.stopped_by} after {result.steps} steps, E {result.energy:.4f} eV, "
          f"max force {result.max_force:.3f} eV/Å"
          + ("" if result.held_lateral_force is None else
             f", lateral force on the held adatom {result.held_lateral_force:.3f} eV/Å"))
    return 0 if result.converged else 3


def _relaxed(args) -> int:
    """Write the relaxed minimum and saddle as unlabelled frames tagged like the path
    images `relax` started from (image 0: the minimum; the middle one: the saddle)."""
    from fieldforce.data.io import write_frames
    from fieldforce.datasets.relax import relaxed_geometry
    from fieldforce.errors import ConfigError

    states = [(folder, image) for folder, image in ((args.minimum, 0),
                                                    (args.saddle, RELAX_IMAGES // 2))
              if folder is not None]
    if not states:
        raise ConfigError("relaxed: give --minimum and/or --saddle (relaxation folders)")
    if args.thermal < 0:
        raise ConfigError(f"relaxed: --thermal must be >= 0 (got {args.thermal})")
    rng = np.random.default_rng(args.seed)
    per_state, sizes = [], set()
    for folder, image in states:
        atoms, result = relaxed_geometry(folder, unconverged=args.unconverged)
        size = surface_size(atoms.cell.array, args.system)
        sizes.add(size)
        print(f"{folder}: {result.stopped_by}, {result.steps} steps, E {result.energy:.4f} "
              f"eV, max force {result.max_force:.3f} eV/Å, {size[0]}x{size[1]} cell")
        atoms.info = {}
        per_state.append(_relaxed_thermal(atoms, args, image, rng) if args.thermal else
                         [_frame(atoms, args.system, "adatom_path", field, image=image,
                                 relaxed=True, relax_max_force=round(result.max_force, 4))
                          for field in args.fields])
    # the states' frames in turn, so that a partly labelled file has some of each
    frames = [f for group in zip(*per_state, strict=True) for f in group]
    write_frames(frames, args.out)
    kpts = {_kpts_for(s) for s in sizes}
    print(f"wrote {len(frames)} frames to {args.out}; label them with `label {args.out} "
          f"OUT` and --kpts {' '.join(map(str, next(iter(kpts))))}"
          + ("" if len(kpts) == 1 else " (the cells differ: label them separately)"))
    return 0


def _relaxed_thermal(atoms: Atoms, args, image: int, rng: np.random.Generator) -> list[Frame]:
    """``args.thermal`` thermal displacements of a relaxed state, like `sample`'s
    adatom_thermal frames but around the DFT geometry (not the unrelaxed path): what a
    model's energy needs near the minimum and saddle it finds barriers between. Not
    tagged ``relaxed``, so no barrier comparison takes them for the states themselves."""
    frames = []
    for k in range(args.thermal):
        temperature = THERMAL_TEMPERATURES[k % len(THERMAL_TEMPERATURES)]
        frames.append(_frame(thermal(atoms, temperature, rng), args.system, "adatom_thermal",
                             rng.uniform(-1, 1), image=image, temperature=temperature,
                             around_relaxed=True))
    return frames


if __name__ == "__main__":  # pragma: no cover
    from fieldforce.errors import report_errors

    sys.exit(report_errors("python -m fieldforce.datasets.make_metal", main,
                           interrupted="; rerun the same command to continue"))
