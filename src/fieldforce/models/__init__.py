"""Model families on one contract, and model files (layer 4).

Every family is a :class:`~fieldforce.models.contract.FieldModel` subclass; defining it
with ``family = "name"`` registers it (see :mod:`fieldforce.models.contract` for what a
family declares). Built in, the neural heads on the shared
:class:`~fieldforce.models.backbone.Backbone`:

* ``response`` — :class:`~fieldforce.models.response.ResponseModel`, dipole +
  polarizability response to a field; with ``head: gpr``
  :class:`~fieldforce.models.response_kernel.KernelResponseModel`, the same physics with
  sparse Gaussian-process heads (closed-form fit, uncertainties);
* ``latent`` — :class:`~fieldforce.models.latent.LatentChargeModel`, latent Ewald
  summation: short-range energy + Coulomb energy of hidden charges;
* ``qeq`` — :class:`~fieldforce.models.qeq.QEqModel`, charge equilibration:
  short-range energy + self-consistent charges from learned electronegativities
  (non-local charge transfer, an electronic polarizability, the external potential);
* ``committee`` — :class:`~fieldforce.models.committee.CommitteeModel`, K trained models
  of one family: their mean, and their spread as uncertainties (assembled, not trained).

:func:`build_model` builds a family from its ``model:`` section; :func:`save_model` writes
one file with the family, its configuration, the weights, the declared outputs with their
units, the internal units and the package version; :func:`load_model` gives it back.
Forces, stress and Born charges come from :func:`evaluate` (the one autograd helper).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from fieldforce.data.atomic import atomic_path
from fieldforce.errors import DataError
from fieldforce.models.committee import CommitteeModel
from fieldforce.models.contract import (
    FieldModel,
    Output,
    families,
    family_class,
    file_config,
    model_settings,
    output,
)
from fieldforce.models.derivatives import evaluate
from fieldforce.models.latent import LatentChargeModel
from fieldforce.models.qeq import QEqModel
from fieldforce.models.response import ResponseModel
from fieldforce.models.response_kernel import KernelResponseModel
from fieldforce.units import INTERNAL_UNITS
from fieldforce.version import __version__

FORMAT = "fieldforce-model"


def build_model(config: dict | None) -> FieldModel:
    """A new model of ``config['family']`` (default ``response``) with ``config['head']``
    (default ``neural``), its section checked."""
    config = dict(config or {})
    return family_class(config.get("family", "response"), head=config.get("head"))(config)


def save_model(model: FieldModel, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``model`` to one file atomically (temporary name, then rename)."""
    path = Path(path)
    payload = {"format": FORMAT, "family": model.family, "module": type(model).__module__,
               "config": model.config, "state_dict": model.state_dict(),
               "outputs": [o.to_dict() for o in model.output_specs()],
               "domain": model.domain(),
               "units": dict(INTERNAL_UNITS), "version": __version__, "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_model(path: str | Path) -> FieldModel:
    """The model saved in ``path`` by :func:`save_model`, in eval mode.

    A family defined outside fieldforce is imported from the module the file names when
    it is not registered yet.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - any unreadable file gets the same message
        size = path.stat().st_size
        raise DataError(f"{path}: not a readable fieldforce model file ({size} bytes: "
                        "truncated, corrupted or not a model); train it again or give the "
                        "model.pt a training run wrote") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path}: not a fieldforce model file (no 'format' key)")
    family = payload["family"]
    if family not in families() and payload.get("module"):
        try:
            importlib.import_module(payload["module"])
        except ImportError:
            pass  # reported below as an unknown family
    if family not in families():
        raise DataError(f"{path}: unknown model family {family!r} (defined in "
                        f"{payload.get('module', '?')}); available: {', '.join(families())}")
    cls = family_class(family, head=payload["config"].get("head"))
    model = cls(file_config(cls, payload["config"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:  # weights that do not fit the configuration
        raise DataError(f"{path}: the weights do not fit the {family!r} model of its "
                        f"configuration ({str(exc).splitlines()[0]})") from None
    model.eval()
    model.metadata = {k: payload.get(k)
                      for k in ("units", "version", "extra", "outputs", "domain")}
    return model


__all__ = ["CommitteeModel", "FieldModel", "KernelResponseModel", "LatentChargeModel",
           "Output", "QEqModel", "ResponseModel",
           "build_model", "evaluate", "families", "family_class", "load_model",
           "model_settings", "output", "save_model"]
