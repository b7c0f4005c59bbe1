"""The contract every DFT labelling backend follows, and the registry of backends.

A backend turns one structure and one uniform field into canonical labels in
internal units (see :mod:`fieldforce.data.labels`). Backends are looked up by
name; the module that implements one is imported only when it is asked for, so
a missing optional dependency (PySCF, GPAW) is reported with the pip extra that
installs it instead of an ImportError at start-up.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np
from ase import Atoms

from fieldforce.errors import BackendError

#: Properties a backend may be asked for.
PROPERTIES = ("energy", "forces", "dipole", "polarizability", "born_charges")

# name -> (module, class, package to import, pip extra)
_REGISTRY: dict[str, tuple[str, str, str, str]] = {
    "pyscf": ("fieldforce.reference.pyscf_backend", "PySCFBackend", "pyscf", "dft"),
    "gpaw": ("fieldforce.reference.gpaw_backend", "GPAWBackend", "gpaw", "dft-periodic"),
}


class Backend(ABC):
    """A DFT code that labels structures under a uniform electric field."""

    #: registry name, e.g. ``"pyscf"``
    name: str = ""

    @abstractmethod
    def settings(self) -> dict:
        """Everything that changes the numbers (functional, basis, tolerances, ...)."""

    def settings_fingerprint(self) -> str:
        """Short stable hash of :meth:`settings` (used to decide what may be resumed)."""
        blob = json.dumps({"backend": self.name, **self.settings()}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @abstractmethod
    def label(self, atoms: Atoms, efield: np.ndarray, properties: Iterable[str]) -> dict:
        """Label one structure.

        Parameters
        ----------
        atoms
            the structure (positions in Å).
        efield
            [3] uniform field in V/Å.
        properties
            subset of :data:`PROPERTIES`.

        Returns
        -------
        dict
            canonical name -> numpy array in internal units, always including
            ``efield`` and ``total_charge``.

        Raises
        ------
        BackendError
            when the calculation fails (e.g. SCF not converged).
        """


def make_settings(settings_class, settings, options: dict, label: str):
    """A backend's settings dataclass from an instance or keyword options.

    Unknown option names are one clear :class:`BackendError` listing the known ones.
    """
    if settings is not None:
        return settings
    known = set(settings_class.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise BackendError(
            f"unknown {label} option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return settings_class(**options)


def check_properties(properties: Iterable[str]) -> set[str]:
    """Validate a property list; one clear error naming the unknown ones."""
    props = {p.strip() for p in properties if p.strip()}
    unknown = sorted(props - set(PROPERTIES))
    if unknown:
        raise BackendError(
            f"unknown propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
            f"expected a subset of: {', '.join(PROPERTIES)}"
        )
    if not props:
        raise BackendError("no properties requested")
    return props


def backend_names() -> list[str]:
    return list(_REGISTRY)


def get_backend(name: str, **options) -> Backend:
    """Instantiate a backend by name with its settings as keyword options."""
    if name not in _REGISTRY:
        raise BackendError(f"unknown backend {name!r}; available: {', '.join(_REGISTRY)}")
    module, cls, package, extra = _REGISTRY[name]
    try:
        importlib.import_module(package)
    except ImportError as exc:
        raise BackendError(
            f"backend {name!r} needs the Python package {package!r}, which is not installed "
            f"({exc}); install it with: pip install 'fieldforce[{extra}]'"
        ) from None
    return getattr(importlib.import_module(module), cls)(**options)
