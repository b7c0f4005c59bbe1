"""fieldforce: machine-learned electrostatics and electric-field response.

Public API (everything else may change between versions):

- :mod:`fieldforce.units` — constants and unit conversion (internal: eV, Å, e, V/Å)
- :class:`Frame`, :func:`read_frames`, :func:`write_frames`, :class:`DataSpec`,
  :func:`load_spec`, :func:`random_split`, :func:`split_by_tag` — labelled data
- :func:`label_frames`, :class:`PySCFSettings` — DFT labelling under finite fields
- :func:`load_water` — the shipped, self-labelled water dataset
"""

from __future__ import annotations

__version__ = "0.1.0"

from fieldforce import units
from fieldforce.errors import ConfigError, DataError, FieldforceError, UnitError

__all__ = [
    "__version__",
    "units",
    "FieldforceError",
    "DataError",
    "UnitError",
    "ConfigError",
]
