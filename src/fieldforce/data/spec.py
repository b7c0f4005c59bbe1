"""Data specs: how the keys and units of a foreign extxyz file map onto canonical labels.

A spec is a small YAML file (or dict)::

    path: coords_1000.xyz                 # relative to the spec file's folder
    keys: {energy: potential, dipole: mu, polarizability: alpha}
    units: {energy: hartree, dipole: e*bohr, polarizability: bohr^3}
    positions_unit: angstrom              # optional
    tags: [config_type]                   # optional per-frame info to keep

Labels not named in ``keys`` are looked up under their canonical name; a label
named in ``keys`` must be present in every frame. Units default to the internal
ones, so a canonical file needs no spec at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fieldforce.config import check_keys, check_value
from fieldforce.config_files import read_mapping
from fieldforce.data.labels import LABELS
from fieldforce.errors import ConfigError, UnitError
from fieldforce.units import parse_unit

#: the keys of a data spec file
SPEC_KEYS = ("path", "keys", "units", "positions_unit", "tags")


@dataclass
class DataSpec:
    """Where a dataset is and how to read it.

    Attributes
    ----------
    path
        the extxyz file (``.xyz`` or ``.xyz.gz``).
    keys
        canonical label name -> key in the file.
    units
        canonical label name -> unit string of the file's values.
    positions_unit
        unit of the positions and cell (length).
    tags
        per-frame ``info`` entries to keep on the atoms (None: keep all that are not labels).
    origin
        the spec file this came from, for error messages.
    """

    path: Path
    keys: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    positions_unit: str = "angstrom"
    tags: list[str] | None = None
    origin: str | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        where = self.origin or "data spec"
        for section in ("keys", "units"):
            for name in getattr(self, section):
                if name not in LABELS:
                    raise ConfigError(
                        f"{where}: '{section}' names unknown label {name!r}; "
                        f"canonical labels are: {', '.join(LABELS)}"
                    )
        for name, unit in self.units.items():
            try:
                parse_unit(unit, LABELS[name].dimension)
            except UnitError as exc:
                raise UnitError(f"{where}, key 'units.{name}': {exc}") from None
        try:
            parse_unit(self.positions_unit, "length")
        except UnitError as exc:
            raise UnitError(f"{where}, key 'positions_unit': {exc}") from None

    def file_key(self, name: str) -> str:
        """Key of canonical label ``name`` in the file."""
        return self.keys.get(name, name)

    def unit(self, name: str) -> str | None:
        """Unit string of label ``name`` in the file (None: internal)."""
        return self.units.get(name)


def load_spec(source: str | Path | dict) -> DataSpec:
    """Read a spec from a YAML file or a dict (relative paths resolve against the file)."""
    if isinstance(source, dict):
        raw, base, origin = dict(source), Path.cwd(), "data spec"
    else:
        origin = str(source)
        raw = read_mapping(source, "data spec")
        base = Path(source).resolve().parent
    check_keys(raw, SPEC_KEYS, required=("path",), source=origin)
    for section in ("keys", "units"):
        if not isinstance(raw.get(section, {}) or {}, dict):
            raise ConfigError(f"{origin}: key {section!r}: expected a mapping of label -> "
                              f"value, got {raw[section]!r}")
    path = check_value(raw["path"], Path, {}, "path", origin)
    tags = raw.get("tags")
    if tags is not None:
        tags = check_value(tags, list[str], {}, "tags", origin)
    if not path.is_absolute():
        path = base / path
    return DataSpec(
        path=path,
        keys={k: str(v) for k, v in (raw.get("keys") or {}).items()},
        units={k: str(v) for k, v in (raw.get("units") or {}).items()},
        positions_unit=str(raw.get("positions_unit", "angstrom")),
        tags=tags,
        origin=origin,
    )
