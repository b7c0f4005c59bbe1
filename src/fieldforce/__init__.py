"""fieldforce: machine-learned electrostatics and electric-field response.

Public API (everything else may change between versions):

- :mod:`fieldforce.units` — constants and unit conversion (internal: eV, Å, e, V/Å)
- :class:`Frame`, :func:`read_frames`, :func:`write_frames`, :class:`DataSpec`,
  :func:`load_spec`, :func:`validate_frame`, :func:`random_split`,
  :func:`split_by_tag`, :func:`summarize` — labelled data
- :func:`get_backend`, :class:`PySCFSettings`, :class:`GPAWSettings`,
  :func:`label_frames` — DFT labelling under finite fields
- :func:`load_water` — the shipped, self-labelled water dataset
- :func:`load_metal` — the shipped, self-labelled metal-surface (Cu, W) dataset
- :func:`load_charge_transfer` — the shipped, self-labelled charge-transfer dataset
  (chains, ionic and metal clusters in several charge states)
- :func:`coulomb_energy`, :func:`coulomb_potential`, :class:`CoulombOperator` —
  Coulomb sums (direct, Ewald, PME, P3M on torch-pme)
- :class:`FieldModel`, :func:`build_model`, :func:`load_model`, :func:`evaluate` —
  the model contract and its families: :class:`ResponseModel` (dipole +
  polarizability; :class:`KernelResponseModel` with sparse-GP heads) and
  :class:`LatentChargeModel` (latent Ewald summation) and :class:`QEqModel` (charge
  equilibration; :func:`equilibrate` is its solver); :class:`CommitteeModel`, the mean
  and spread of several trained models of one family
- :func:`run_md`, :class:`FieldForceCalculator` — MD in fields (ASE), in
  :mod:`fieldforce.simulation`
- :func:`ir_spectrum`, :func:`polarization_current_spectrum`,
  :func:`hysteresis_loop` — analysis of trajectories

The package is lazy (PEP 562): ``import fieldforce`` and ``import fieldforce.units``
load neither torch nor featomic; each name below is imported from its module the
first time it is used, so ``fieldforce --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import Any

from fieldforce.version import __version__

#: public name -> module that defines it (imported on first use).
_EXPORTS: dict[str, str] = {
    "units": "fieldforce.units",
    # core
    "FieldforceError": "fieldforce.errors",
    "DataError": "fieldforce.errors",
    "UnitError": "fieldforce.errors",
    "ConfigError": "fieldforce.errors",
    "BackendError": "fieldforce.errors",
    # data
    "Frame": "fieldforce.data.frame",
    "DataSpec": "fieldforce.data.spec",
    "load_spec": "fieldforce.data.spec",
    "read_frames": "fieldforce.data.io",
    "write_frames": "fieldforce.data.io",
    "validate_frame": "fieldforce.data.validation",
    "random_split": "fieldforce.data.splits",
    "split_by_tag": "fieldforce.data.splits",
    "summarize": "fieldforce.data.info",
    "load_water": "fieldforce.datasets",
    "load_metal": "fieldforce.datasets",
    "load_charge_transfer": "fieldforce.datasets",
    # physics kernels
    "DescriptorSettings": "fieldforce.descriptors",
    "SOAPFeatures": "fieldforce.descriptors",
    "coulomb_energy": "fieldforce.electrostatics",
    "coulomb_potential": "fieldforce.electrostatics",
    "coulomb_field": "fieldforce.electrostatics",
    "CoulombOperator": "fieldforce.electrostatics",
    "polarization": "fieldforce.electrostatics",
    "PolarizationTracker": "fieldforce.electrostatics",
    "born_charges": "fieldforce.electrostatics",
    "equilibrate": "fieldforce.electrostatics",
    "field_forces": "fieldforce.electrostatics",
    "ExternalField": "fieldforce.fields",
    "as_field": "fieldforce.fields",
    # models
    "FieldModel": "fieldforce.models",
    "build_model": "fieldforce.models",
    "CommitteeModel": "fieldforce.models",
    "KernelResponseModel": "fieldforce.models",
    "LatentChargeModel": "fieldforce.models",
    "QEqModel": "fieldforce.models",
    "ResponseModel": "fieldforce.models",
    "evaluate": "fieldforce.models",
    "load_model": "fieldforce.models",
    "save_model": "fieldforce.models",
    # workflows
    "evaluate_frames": "fieldforce.training",
    "load_config": "fieldforce.training",
    "train": "fieldforce.training",
    "get_backend": "fieldforce.reference.backend",
    "label_frames": "fieldforce.reference.labelling",
    "PySCFSettings": "fieldforce.reference.pyscf_backend",
    "GPAWSettings": "fieldforce.reference.gpaw_backend",
    # simulation and analysis
    "FieldForceCalculator": "fieldforce.simulation",
    "run_md": "fieldforce.simulation",
    "ir_spectrum": "fieldforce.analysis",
    "IRSpectrum": "fieldforce.analysis",
    "polarization_current_spectrum": "fieldforce.analysis",
    "hysteresis_loop": "fieldforce.analysis",
    "HysteresisLoop": "fieldforce.analysis",
    "field_barriers": "fieldforce.simulation",
    "fit_barriers": "fieldforce.analysis",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fieldforce' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name != module.rsplit(".", 1)[-1]:  # a module itself is exported as such
        value = getattr(value, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
