"""The ``finish`` step of :mod:`fieldforce.datasets.make_metal`: assemble the shipped
metal-surface set and write its ``metal_meta.json``.

``--partial`` collects the frames a running or stopped labelling job has finished (its
parts folder, in the planned order), leaving out the parts whose field misses the target
by more than ``field_tol`` (the job relabels them); ``--extra`` adds other labelled files
(the relaxed W(110) states, a model's NEB states checked by DFT) without repeating a
frame already there. The metadata holds the level of theory, the counts per system and
config_type, the Gauss-law check's range and the commands that regenerate every part
of the set, the optional ones only where the set holds such frames. Change the commands
here when a step of make_metal changes.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from fieldforce.data.atomic import write_json
from fieldforce.data.frame import Frame
from fieldforce.data.io import read_frames, write_frames
from fieldforce.datasets.make_metal import PROPERTIES, dataset_backend
from fieldforce.reference.labelling import finished_parts, labelled_so_far, structure_key


def frame_key(frame: Frame) -> tuple:
    """A frame's structure and target field: the same frame in two files."""
    return structure_key(frame), round(float(frame.atoms.info.get("target_field", 0.0)), 9)


def finish(args: argparse.Namespace) -> int:
    """The ``finish`` step (arguments as ``make_metal finish`` parses them): the shipped
    file and its ``metal_meta.json``; 0 on success."""
    parts = args.parts or args.labelled.with_name(args.labelled.name + ".parts")
    # the sampled plan: its order for the collected parts, its size for the metadata
    planned = read_frames(args.planned) if args.planned is not None else None
    backend = dataset_backend()
    if args.partial:
        frames = [f for p in finished_parts(parts) for f in read_frames(p)]
        # parts labelled before the backend aimed at the target field are relabelled by
        # the running job: ship only labels the backend would reuse
        kept = [f for f in frames if backend.accepts(
            {"efield": f.efield}, np.array([0.0, 0.0, f.atoms.info["target_field"]]))]
        if len(kept) < len(frames):
            print(f"left out {len(frames) - len(kept)} frame(s) whose field misses the "
                  f"target by more than field_tol (to be relabelled)")
        frames = kept
        if planned is not None:  # in the planned order
            rank = {frame_key(f): k for k, f in enumerate(planned)}
            frames.sort(key=lambda f: rank.get(frame_key(f), len(rank)))
        write_frames(frames, args.labelled)
    frames = read_frames(args.labelled)
    if args.extra:
        present = {frame_key(f) for f in frames}
        added = []
        for path in args.extra:
            for f in labelled_so_far(path):
                key = frame_key(f)
                if key not in present:
                    present.add(key)
                    added.append(f)
        if added:
            frames += added
            write_frames(frames, args.labelled)
        print(f"added {len(added)} frame(s) of {', '.join(map(str, args.extra))}")
    out = args.labelled.parent / "metal_meta.json"
    # How many shipped energies were relabelled from GPAW's zero-smearing extrapolation to
    # the free energy (the default since 2026-12-05) is history, carried over: a frame's
    # info cannot tell, since every label since records the other flavour beside its own
    # (energy_extrapolated), and a set regenerated today is labelled free from the start.
    relabelled = (json.loads(out.read_text()).get("energies_reenergized", 0)
                  if out.exists() else 0)
    ratios = [float(f.atoms.info["gauss_ratio"]) for f in frames
              if "gauss_ratio" in f.atoms.info]
    counts: dict[str, int] = {}
    for f in frames:
        key = f"{f.atoms.info.get('system')} {f.atoms.info.get('config_type')}"
        counts[key] = counts.get(key, 0) + 1
    meta = {
        "level_of_theory": backend.settings() | {"code": "GPAW"},
        "properties": list(PROPERTIES),
        "frames": len(frames),
        "counts": counts,
        # the Gauss check needs the two field runs of the polarizability; frames labelled
        # without it (model_neb: energy, forces, dipole) have none
        "gauss_ratio_range": [min(ratios), max(ratios)] if ratios else None,
        "commands": [
            "python -m fieldforce.datasets.make_metal sample --out metal_unlabelled.xyz",
            "python -m fieldforce.datasets.make_metal label metal_unlabelled.xyz metal.xyz.gz "
            "--workers 16",
            "python -m fieldforce.datasets.make_metal finish metal.xyz.gz "
            "--planned metal_unlabelled.xyz" + (" --extra " + " ".join(
                p.name for p in args.extra) if args.extra else ""),
        ],
    }
    if any(f.atoms.info.get("relaxed") for f in frames):
        # the relaxed adatom states (W(110)): relaxed at zero field, then labelled at
        # the target fields (what benchmarks/runs/w_relax holds)
        relaxed = [
            "python -m fieldforce.datasets.make_metal relax 'W(110)' minimum --size 2 2 "
            "--out minimum",
            "python -m fieldforce.datasets.make_metal relax 'W(110)' saddle --size 2 2 "
            "--out saddle",
            "python -m fieldforce.datasets.make_metal relaxed 'W(110)' --minimum minimum "
            "--saddle saddle --fields 0 --out w_relaxed.xyz",
            "python -m fieldforce.datasets.make_metal relaxed 'W(110)' --minimum minimum "
            "--saddle saddle --fields 0.5 -0.5 --out w_relaxed_fields.xyz",
            "python -m fieldforce.datasets.make_metal label w_relaxed.xyz "
            "w_relaxed_labelled.xyz --kpts 4 4",
            "python -m fieldforce.datasets.make_metal label w_relaxed_fields.xyz "
            "w_relaxed_fields_labelled.xyz --kpts 4 4"]
        if relabelled:  # labelled before the free energy was the default
            relaxed += ["cat w_relaxed_labelled.xyz w_relaxed_fields_labelled.xyz > "
                        "w_relaxed_all_labelled.xyz",
                        "python -m fieldforce.datasets.make_metal reenergize "
                        "w_relaxed_all_labelled.xyz w_relaxed_free.xyz"]
        if any(f.atoms.info.get("around_relaxed") for f in frames):
            # thermal displacements of those states (`relaxed --thermal`)
            relaxed += ["python -m fieldforce.datasets.make_metal relaxed 'W(110)' "
                        "--minimum minimum --saddle saddle --thermal 4 "
                        "--out w_relaxed_thermal.xyz",
                        "python -m fieldforce.datasets.make_metal label "
                        "w_relaxed_thermal.xyz w_relaxed_thermal_labelled.xyz --kpts 4 4"]
        meta["commands"][2:2] = relaxed
    # a model's own NEB minima and saddles, labelled by DFT to check it (energy, forces,
    # dipole): one command per model (each frame's neb_model) and system, at its fields
    checked: dict[tuple[str, str], set[float]] = {}
    for f in frames:
        if f.atoms.info.get("config_type") == "model_neb":
            key = (str(f.atoms.info.get("neb_model")), str(f.atoms.info["system"]))
            checked.setdefault(key, set()).add(float(f.atoms.info["target_field"]))
    for (model, system), fields in checked.items():
        meta["commands"].insert(-1, f"python benchmarks/metal_barrier_dft.py --model {model} "
                                f"--systems '{system}' --fields "
                                + " ".join(f"{x:g}" for x in sorted(fields))
                                + " --tag TAG  # model_neb frames, no polarizability; "
                                "writes STEM_TAG_points_dft.xyz.gz, an --extra of finish")
    if relabelled:
        meta["energies_reenergized"] = relabelled
        meta["commands"].insert(2, "python -m fieldforce.datasets.make_metal reenergize "
                                "metal_extrapolated.xyz.gz metal.xyz.gz --workers 2  # the "
                                "frames labelled with energy: extrapolated before 2026-12-05")
    if planned is not None:
        meta["planned_frames"] = len(planned)
        # the --extra frames (relaxed states, model NEB states) are not in the plan
        in_plan = {frame_key(f) for f in planned}
        meta["frames_of_the_plan"] = sum(frame_key(f) in in_plan for f in frames)
    write_json(meta, out)
    print(f"wrote {out}")
    return 0
