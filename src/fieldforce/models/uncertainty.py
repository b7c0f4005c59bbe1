"""Predicted uncertainties scaled to the errors they should describe.

A family that predicts standard deviations (the kernel heads' posterior, a committee's
spread) reports them as the outputs ``<name>_uncertainty`` for the properties of
:data:`UNCERTAIN`, each multiplied by one factor of its buffer ``uncertainty_scales``
[4] (in :data:`UNCERTAIN`'s order; 1 until calibrated). Neither a GP posterior with
cross-validated noise nor the spread of a few committee members is a calibrated error
bar, only its shape is: :class:`CalibratedUncertainties` (a mixin) sets each factor so
that the root-mean-square z-score (error / sigma) on held-out frames is 1, the hook
``FieldModel.calibrate`` that ``fieldforce train`` calls with the validation frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fieldforce.data.batch import collate, physical_components
from fieldforce.data.frame import Frame

#: the properties with an uncertainty, in the order of ``uncertainty_scales``
UNCERTAIN = ("energy", "dipole", "polarizability", "forces")


class CalibratedUncertainties:
    """Mixin of a :class:`~fieldforce.models.contract.FieldModel` with the buffer
    ``uncertainty_scales`` [4] and the on-request outputs ``<name>_uncertainty``."""

    @torch.no_grad()
    def zscores(self, frames: Sequence[Frame], names: Sequence[str] = UNCERTAIN
                ) -> dict[str, torch.Tensor]:
        """Errors over predicted standard deviations of each of ``names`` on ``frames``
        (observable components; energies per structure), from one evaluation; the
        properties the frames do not label, or the model has no uncertainty of, are left
        out."""
        from fieldforce.models.derivatives import evaluate

        batch = collate(frames)
        known = {o.name for o in self.output_specs()}
        names = [n for n in names if n in batch.labels and bool(batch.label_mask[n].any())
                 and f"{n}_uncertainty" in known]
        if not names:
            return {}
        with torch.enable_grad():
            out = evaluate(self, batch, forces="forces" in names,
                           requests={f"{n}_uncertainty" for n in names})
        z = {}
        for name in names:
            if name == "forces":
                mask = batch.atom_mask("forces")
                error = (out["forces"] - batch.labels["forces"])[mask].reshape(-1).detach()
                sigma = out["forces_uncertainty"][mask].reshape(-1)
            else:
                structures = torch.nonzero(batch.label_mask[name]).flatten()
                error = physical_components(batch, name, (out[name] - batch.labels[name])[
                    structures], structures).reshape(-1)
                sigma = physical_components(batch, name, out[f"{name}_uncertainty"][
                    structures], structures).reshape(-1)
            z[name] = error.detach() / sigma.detach().clamp_min(1e-300)
        return z

    def uncertainty_scale(self, name: str) -> torch.Tensor:
        """The calibrated factor of ``name``'s uncertainty (a property of UNCERTAIN)."""
        return self.uncertainty_scales[UNCERTAIN.index(name)]

    def calibrate(self, frames: Sequence[Frame]) -> dict[str, float]:
        """One factor per uncertainty that makes the root-mean-square z-score on
        ``frames`` 1; returns the factors set (those the frames could determine)."""
        self.uncertainty_scales.fill_(1.0)
        factors = {}
        for name, z in self.zscores(frames).items():
            if z.numel() >= 2 and bool(torch.isfinite(z).all()):
                factor = float(z.pow(2).mean().sqrt().clamp_min(1e-6))
                self.uncertainty_scales[UNCERTAIN.index(name)] = factor
                factors[name] = factor
        return factors


__all__ = ["UNCERTAIN", "CalibratedUncertainties"]
