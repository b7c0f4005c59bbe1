"""Atomic descriptors (layer 3, physics kernels): SOAP and lambda-SOAP on featomic.

* :mod:`~fieldforce.descriptors.settings` — :class:`DescriptorSettings`, the one set of
  descriptor defaults (a configuration section; no featomic needed to check it);
* :mod:`~fieldforce.descriptors.soap` — :class:`SOAPFeatures`: invariants, lambda = 1
  vectors and lambda = 2 tensors per atom, differentiable by autograd;
* :mod:`~fieldforce.descriptors.spherical` — spherical -> Cartesian components.
"""

from fieldforce.descriptors.settings import DescriptorSettings
from fieldforce.descriptors.soap import FixedDensity, SOAPFeatures
from fieldforce.descriptors.spherical import spherical_to_cartesian_l2

__all__ = ["DescriptorSettings", "FixedDensity", "SOAPFeatures", "spherical_to_cartesian_l2"]
