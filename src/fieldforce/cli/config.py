"""``fieldforce config [SECTION]``: every configuration key with its default and meaning.

Printed from the sections themselves (:mod:`fieldforce.config`), so it cannot drift
from what the checker accepts.
"""

from __future__ import annotations

import argparse

#: section name -> (what it is, how to get its Section class); imported on demand
SECTIONS = {
    "data": ("the data: section of a training file", "fieldforce.training.config",
             "DataSettings"),
    "training": ("the training: section of a training file", "fieldforce.training.config",
                 "TrainingSettings"),
    "model": ("the model: section of a training file, per model family", None, None),
    "descriptor": ("model.descriptor: the SOAP / lambda-SOAP settings of every family",
                   "fieldforce.descriptors.settings", "DescriptorSettings"),
    "md": ("a fieldforce md file", "fieldforce.simulation.md", "MDSettings"),
    "field": ("the field: of an md file, per field type", None, None),
    "pyscf": ("fieldforce label --backend pyscf (Python: get_backend('pyscf', ...))",
              "fieldforce.reference.pyscf_backend", "PySCFSettings"),
    "gpaw": ("fieldforce label --backend gpaw (Python: get_backend('gpaw', ...))",
             "fieldforce.reference.gpaw_backend", "GPAWSettings"),
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "config", help="show every configuration key with its default and meaning",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", nargs="?", choices=list(SECTIONS), metavar="SECTION",
                   help=f"one of {', '.join(SECTIONS)} (default: all)")
    p.set_defaults(func=run)


def describe(name: str) -> str:
    """The commented YAML of section ``name``."""
    import importlib

    title, module, cls = SECTIONS[name]
    lines = [f"# {name}: {title}"]
    if name == "model":
        from fieldforce.models import families, family_class
        from fieldforce.models.contract import heads

        for family in families():
            for head in heads(family):
                settings = family_class(family, head=head).settings_class
                lines += [f"# family: {family}, head: {head}", "model:",
                          settings.describe("  "), ""]
        return "\n".join(lines).rstrip()
    if name == "field":
        from fieldforce.fields.base import registered_types

        for kind, field_cls in registered_types().items():
            keys = [f"{k} (required)" for k in field_cls._required] + list(field_cls._optional)
            if field_cls._scaled:
                keys.append("units (of the field vectors; default V/angstrom)")
            doc = (field_cls.__doc__ or "").strip().splitlines()[0]
            lines.append(f"# type: {kind} — {doc}\n#   keys: {', '.join(keys) or 'none'}")
        return "\n".join(lines)
    section = getattr(importlib.import_module(module), cls)
    header = f"{section.section}:" if section.section else None
    body = section.describe("  " if header else "")
    return "\n".join(lines + ([header] if header else []) + [body])


def run(args) -> int:
    names = [args.section] if args.section else list(SECTIONS)
    print("\n\n".join(describe(name) for name in names))
    return 0
