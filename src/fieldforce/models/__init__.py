"""Model families on one contract, and model files.

``model(batch, atom_field) -> dict`` with ``energy`` [B] eV always and, where the
family has them, ``dipole`` [B, 3] e·Å, ``polarizability`` [B, 3, 3] e·Å²/V,
``charges`` [N] e, ``polarization`` [B, 3] e/Å² and per-atom outputs. Forces,
stress and Born charges come from :func:`fieldforce.models.derivatives.evaluate`,
never from the model itself.

Families, all on the shared :class:`~fieldforce.models.backbone.Backbone`:

* ``response`` — :class:`~fieldforce.models.response.ResponseModel`, dipole +
  polarizability response to a field;
* ``latent`` — :class:`~fieldforce.models.latent.LatentChargeModel`, latent Ewald
  summation: short-range energy + Coulomb energy of hidden charges.

A model file (``save_model``) holds the family, its configuration, the weights,
the units and the package version; :func:`load_model` gives the model back.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fieldforce.data.atomic import atomic_path
from fieldforce.errors import ConfigError, DataError
from fieldforce.models import latent, response
from fieldforce.models.derivatives import evaluate
from fieldforce.models.latent import LatentChargeModel
from fieldforce.models.response import ResponseModel

FAMILIES = {"response": ResponseModel, "latent": LatentChargeModel}
_CONFIGS = {"response": response.model_config, "latent": latent.model_config}
UNITS = {"energy": "eV", "length": "angstrom", "charge": "e", "field": "V/angstrom",
         "dipole": "e*angstrom", "polarizability": "e*angstrom^2/V"}


def _family(config: dict | None) -> str:
    family = (config or {}).get("family", "response")
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; available: {sorted(FAMILIES)}")
    return family


def model_config(config: dict | None) -> dict:
    """The ``model:`` section of ``config['family']`` with its defaults, checked."""
    return _CONFIGS[_family(config)](config)


def build_model(config: dict) -> torch.nn.Module:
    """A new model of ``config['family']`` (default ``response``)."""
    return FAMILIES[_family(config)](config)


def save_model(model: torch.nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``model`` to one file atomically (temporary name, then rename)."""
    from fieldforce import __version__

    path = Path(path)
    payload = {"format": "fieldforce-model", "family": model.family, "config": model.config,
               "state_dict": model.state_dict(), "units": UNITS, "version": __version__,
               "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_model(path: str | Path) -> torch.nn.Module:
    """The model saved in ``path`` by :func:`save_model`, in eval mode."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise DataError(f"{path}: not a readable fieldforce model file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != "fieldforce-model":
        raise DataError(f"{path}: not a fieldforce model file (no 'format' key)")
    if payload["family"] not in FAMILIES:
        raise DataError(f"{path}: unknown model family {payload['family']!r}")
    model = FAMILIES[payload["family"]](payload["config"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    model.metadata = {k: payload[k] for k in ("units", "version", "extra")}
    return model


__all__ = ["FAMILIES", "LatentChargeModel", "ResponseModel", "build_model", "evaluate",
           "load_model", "model_config", "save_model"]
