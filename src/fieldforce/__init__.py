"""fieldforce: machine-learned electrostatics and electric-field response.

Public API (everything else may change between versions):

- :mod:`fieldforce.units` — constants and unit conversion (internal: eV, Å, e, V/Å)
- :class:`Frame`, :func:`read_frames`, :func:`write_frames`, :class:`DataSpec`,
  :func:`load_spec`, :func:`validate_frame`, :func:`random_split`,
  :func:`split_by_tag`, :func:`summarize` — labelled data
- :func:`get_backend`, :class:`PySCFSettings`, :class:`GPAWSettings`,
  :func:`label_frames` — DFT labelling under finite fields
- :func:`load_water` — the shipped, self-labelled water dataset
- :func:`coulomb_energy`, :func:`coulomb_potential` — Coulomb sums (direct,
  Ewald, PME, P3M on torch-pme)
- :func:`build_model`, :func:`load_model`, :func:`evaluate` — model families:
  :class:`ResponseModel` (dipole + polarizability) and :class:`LatentChargeModel`
  (latent Ewald summation)
- :func:`run_md`, :class:`FieldForceCalculator` — MD in fields (ASE)
- :func:`ir_spectrum`, :func:`polarization_current_spectrum`,
  :func:`hysteresis_loop` — analysis of trajectories
"""

from __future__ import annotations

__version__ = "0.1.0"

from fieldforce import units
from fieldforce.analysis import (
    HysteresisLoop,
    IRSpectrum,
    hysteresis_loop,
    ir_spectrum,
    polarization_current_spectrum,
)
from fieldforce.calculator import FieldForceCalculator
from fieldforce.data.frame import Frame
from fieldforce.data.info import summarize
from fieldforce.data.io import read_frames, write_frames
from fieldforce.data.spec import DataSpec, load_spec
from fieldforce.data.splits import random_split, split_by_tag
from fieldforce.data.validation import validate_frame
from fieldforce.datasets import load_water
from fieldforce.descriptors import DescriptorSettings, SOAPFeatures
from fieldforce.electrostatics import (
    PolarizationTracker,
    born_charges,
    coulomb_energy,
    coulomb_field,
    coulomb_potential,
    field_forces,
    polarization,
)
from fieldforce.errors import (
    BackendError,
    ConfigError,
    DataError,
    FieldforceError,
    UnitError,
)
from fieldforce.fields import ExternalField, as_field
from fieldforce.md import run_md
from fieldforce.models import (
    LatentChargeModel,
    ResponseModel,
    build_model,
    evaluate,
    load_model,
    save_model,
)
from fieldforce.reference.backend import get_backend
from fieldforce.reference.gpaw_backend import GPAWSettings
from fieldforce.reference.labelling import label_frames
from fieldforce.reference.pyscf_backend import PySCFSettings
from fieldforce.training import evaluate_frames, load_config, train

__all__ = [
    "__version__",
    "units",
    "Frame",
    "DataSpec",
    "load_spec",
    "read_frames",
    "write_frames",
    "validate_frame",
    "random_split",
    "split_by_tag",
    "summarize",
    "load_water",
    "coulomb_energy",
    "coulomb_potential",
    "coulomb_field",
    "polarization",
    "PolarizationTracker",
    "born_charges",
    "field_forces",
    "get_backend",
    "ir_spectrum",
    "IRSpectrum",
    "polarization_current_spectrum",
    "hysteresis_loop",
    "HysteresisLoop",
    "FieldForceCalculator",
    "DescriptorSettings",
    "SOAPFeatures",
    "ExternalField",
    "as_field",
    "run_md",
    "build_model",
    "LatentChargeModel",
    "ResponseModel",
    "evaluate",
    "load_model",
    "save_model",
    "evaluate_frames",
    "load_config",
    "train",
    "label_frames",
    "PySCFSettings",
    "GPAWSettings",
    "FieldforceError",
    "DataError",
    "UnitError",
    "ConfigError",
    "BackendError",
]
