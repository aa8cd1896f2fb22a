"""Prior specifications: a distribution name and its parameters, serialisable to JSON.

A :class:`Prior` names a PyMC distribution (``"HalfNormal"``, ``"Gamma"``,
``"LogNormal"``, ...) and its keyword parameters. Models take a ``priors``
mapping from parameter name to ``Prior``; anything not given keeps the
model's documented default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pymc as pm

__all__ = ["Prior"]


@dataclass(frozen=True)
class Prior:
    """A prior distribution by name.

    Parameters
    ----------
    distribution : str
        Name of a PyMC distribution class, e.g. ``"HalfNormal"``.
    **parameters
        Keyword parameters of that distribution, e.g. ``sigma=10``.

    Examples
    --------
    >>> Prior("HalfNormal", sigma=10)
    Prior('HalfNormal', sigma=10)
    """

    distribution: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __init__(self, distribution: str, **parameters: Any):
        if not isinstance(getattr(pm, distribution, None), type):
            raise ValueError(f"unknown PyMC distribution {distribution!r} in Prior")
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "parameters", dict(parameters))

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.parameters.items())
        return f"Prior({self.distribution!r}{args})"

    def create(self, name: str, **kwargs: Any):
        """Create the random variable ``name`` in the PyMC model on the context stack."""
        return getattr(pm, self.distribution)(name, **self.parameters, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-serialisable when the parameters are)."""
        return {"distribution": self.distribution, "parameters": self.parameters}

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Prior:
        """Inverse of :meth:`to_dict`."""
        return cls(spec["distribution"], **spec["parameters"])


def priors_to_json(priors: dict[str, Prior]) -> str:
    """Serialise a name -> Prior mapping."""
    return json.dumps({k: v.to_dict() for k, v in priors.items()})


def priors_from_json(text: str) -> dict[str, Prior]:
    """Inverse of :func:`priors_to_json`."""
    return {k: Prior.from_dict(v) for k, v in json.loads(text).items()}
