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
from dataclasses import asdict

import numpy as np
from ase import Atoms

from fieldforce.config import Section
from fieldforce.data.labels import REFERENCE_LABELS
from fieldforce.errors import BackendError

#: Labels a DFT backend may be asked for (the label table's ``reference`` ones); each
#: backend declares the subset it computes (``Backend.properties``).
PROPERTIES = REFERENCE_LABELS

# name -> (module, class, packages it needs, pip extra)
_REGISTRY: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "pyscf": ("fieldforce.reference.pyscf_backend", "PySCFBackend", ("pyscf",), "dft"),
    "gpaw": ("fieldforce.reference.gpaw_backend", "GPAWBackend", ("gpaw", "threadpoolctl"),
             "dft-periodic"),
}


class Backend(ABC):
    """A DFT code that labels structures under a uniform electric field."""

    #: registry name, e.g. ``"pyscf"``
    name: str = ""
    #: the canonical labels this backend computes (a subset of :data:`PROPERTIES`)
    properties: tuple[str, ...] = ()
    #: |E| (V/Å) beyond which the backend's labels stop meaning what they should, and why;
    #: labelling warns above it
    max_field: float = float("inf")
    max_field_reason: str = ""
    #: settings that decide how close a label comes to what was asked (e.g. how well an
    #: applied strength is aimed at a field) but not the level of theory: they stay out of
    #: the fingerprint, and a finished label is reused when :meth:`accepts` it
    aiming_settings: tuple[str, ...] = ()
    #: settings of how a run is carried out (threads), never of its numbers: left out of
    #: :meth:`settings`
    execution_settings: tuple[str, ...] = ()
    #: settings added after labels were made, with the value those labels were made with:
    #: at that value a setting stays out of the fingerprint, so the earlier labels keep
    #: theirs (and are reused) where they are what the setting now says
    legacy_settings: dict[str, object] = {}

    def validate(self, frames) -> None:
        """Check the settings against the frames once, before any frame is labelled
        (unknown functional, a basis without the elements, ...): one BackendError.
        The default checks nothing."""
        return None

    def settings(self) -> dict:
        """Everything that changes the numbers (functional, basis, tolerances, ...).

        The default: the settings dataclass ``self.config`` without the
        :attr:`execution_settings`; a backend without one overrides this."""
        return {k: v for k, v in asdict(self.config).items()
                if k not in self.execution_settings}

    def settings_fingerprint(self) -> str:
        """Short stable hash of :meth:`settings` (used to decide what may be resumed)."""
        theory = {k: v for k, v in self.settings().items() if k not in self.aiming_settings
                  and not (k in self.legacy_settings and v == self.legacy_settings[k])}
        blob = json.dumps({"backend": self.name, **theory}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def accepts(self, labels: dict, requested: np.ndarray) -> bool:
        """May ``labels``, made earlier (same fingerprint) for the field ``requested`` [3]
        (V/Å), be reused under the current :attr:`aiming_settings`? The default: yes."""
        return True

    @abstractmethod
    def label(self, atoms: Atoms, efield: np.ndarray, properties: Iterable[str],
              charge: float | None = None) -> dict:
        """Label one structure.

        Parameters
        ----------
        atoms
            the structure (positions in Å).
        efield
            [3] uniform field in V/Å.
        properties
            subset of :data:`PROPERTIES`.
        charge
            the structure's net charge, e (None: the backend's ``charge`` setting); a
            backend that cannot change it per structure refuses a different one.

        Returns
        -------
        dict
            canonical name -> numpy array in internal units, always including
            ``efield`` (the field the structure felt, which a backend may measure
            rather than take from the request) and ``total_charge``; optionally
            ``"info"``: a dict of per-frame diagnostics (checks, applied settings) that
            labelling stores in the frame's info.

        Raises
        ------
        BackendError
            when the calculation fails (e.g. SCF not converged).
        """


def make_settings(settings_class: type[Section], settings, options: dict, label: str):
    """A backend's settings section from an instance or keyword options, every key checked
    by the one configuration checker (one :class:`BackendError` naming the option)."""
    if settings is not None:
        return settings
    return settings_class.from_dict(options, source=f"{label} settings", error=BackendError)


def check_properties(properties: Iterable[str], backend: Backend | None = None) -> set[str]:
    """Validate a property list against the label table (and what ``backend`` computes);
    one clear error naming the unknown or unsupported ones."""
    props = {p.strip() for p in properties if p.strip()}
    unknown = sorted(props - set(PROPERTIES))
    if unknown:
        raise BackendError(
            f"unknown propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
            f"expected a subset of: {', '.join(PROPERTIES)}"
        )
    if not props:
        raise BackendError("no properties requested")
    if backend is not None:
        unsupported = sorted(props - set(backend.properties))
        if unsupported:
            raise BackendError(f"the {backend.name} backend computes "
                               f"{', '.join(backend.properties)}; not "
                               f"{', '.join(unsupported)}")
    return props


def backend_names() -> list[str]:
    return list(_REGISTRY)


def get_backend(name: str, **options) -> Backend:
    """Instantiate a backend by name with its settings as keyword options."""
    if name not in _REGISTRY:
        raise BackendError(f"unknown backend {name!r}; available: {', '.join(_REGISTRY)}")
    module, cls, packages, extra = _REGISTRY[name]
    for package in packages:
        try:
            importlib.import_module(package)
        except ImportError as exc:
            raise BackendError(
                f"backend {name!r} needs the Python package {package!r}, which is not "
                f"installed ({exc}); install it with: pip install 'fieldforce[{extra}]'"
            ) from None
    return getattr(importlib.import_module(module), cls)(**options)
