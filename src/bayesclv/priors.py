"""Prior specifications: a distribution name and its parameters, serialisable to JSON.

A :class:`Prior` names a PyMC distribution (``"HalfNormal"``, ``"Gamma"``,
``"LogNormal"``, ...) and its keyword parameters. Models take a ``priors``
mapping from parameter name to ``Prior``; anything not given keeps the
model's documented default.

A ``Prior`` is checked when it is created, against the table ``SUPPORTED`` of the
univariate PyMC distributions it accepts: argument names (a misspelt ``sd=`` is not
ignored), the parametrisations PyMC accepts (``sigma`` or ``tau``, not both; Gamma by
``alpha, beta`` or ``mu, sigma``) and the range of every value (``sigma > 0``, a Beta
``mu`` in (0, 1), Uniform ``lower < upper``). A bad one raises
:class:`~bayesclv.errors.PriorError` naming the distribution and the argument, instead
of failing later inside the sampler.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm

from bayesclv.errors import PriorError

__all__ = ["SUPPORTED", "Prior"]

# ranges of distribution arguments
_REAL, _POSITIVE, _UNIT, _BOUND = "a finite number", "> 0", "in (0, 1)", "a number or None"
_SCALE = ((), ("sigma",), ("tau",))
_T_SCALE = (("nu",), ("nu", "sigma"), ("nu", "lam"))

#: Distributions a Prior accepts: ``name -> (arguments with their ranges, accepted parametrisations)``.
#: A parametrisation lists the arguments given together out of those that select one
#: (e.g. ``sigma`` or ``tau``); arguments outside every parametrisation are optional
#: (PyMC's defaults apply). Names and rules follow the PyMC 6 ``dist`` signatures.
SUPPORTED: dict[str, tuple[dict[str, str], tuple[tuple[str, ...], ...]]] = {
    "Normal": ({"mu": _REAL, "sigma": _POSITIVE, "tau": _POSITIVE}, _SCALE),
    "HalfNormal": ({"sigma": _POSITIVE, "tau": _POSITIVE}, _SCALE),
    "LogNormal": ({"mu": _REAL, "sigma": _POSITIVE, "tau": _POSITIVE}, _SCALE),
    "TruncatedNormal": ({"mu": _REAL, "sigma": _POSITIVE, "tau": _POSITIVE, "lower": _BOUND,
                         "upper": _BOUND}, _SCALE),
    "SkewNormal": ({"alpha": _REAL, "mu": _REAL, "sigma": _POSITIVE, "tau": _POSITIVE}, _SCALE),
    "StudentT": ({"nu": _POSITIVE, "mu": _REAL, "sigma": _POSITIVE, "lam": _POSITIVE}, _T_SCALE),
    "HalfStudentT": ({"nu": _POSITIVE, "sigma": _POSITIVE, "lam": _POSITIVE}, _T_SCALE),
    "Cauchy": ({"alpha": _REAL, "beta": _POSITIVE}, (("alpha", "beta"),)),
    "HalfCauchy": ({"beta": _POSITIVE}, (("beta",),)),
    "Laplace": ({"mu": _REAL, "b": _POSITIVE}, (("mu", "b"),)),
    "Logistic": ({"mu": _REAL, "s": _POSITIVE}, ((),)),
    "Gumbel": ({"mu": _REAL, "beta": _POSITIVE}, (("mu", "beta"),)),
    "Exponential": ({"lam": _POSITIVE, "scale": _POSITIVE}, ((), ("lam",), ("scale",))),
    "Gamma": ({"alpha": _POSITIVE, "beta": _POSITIVE, "mu": _POSITIVE, "sigma": _POSITIVE},
              (("alpha", "beta"), ("mu", "sigma"))),
    "InverseGamma": ({"alpha": _POSITIVE, "beta": _POSITIVE, "mu": _POSITIVE, "sigma": _POSITIVE},
                     (("alpha",), ("alpha", "beta"), ("mu", "sigma"))),
    "Weibull": ({"alpha": _POSITIVE, "beta": _POSITIVE}, (("alpha", "beta"),)),
    "Pareto": ({"alpha": _POSITIVE, "m": _POSITIVE}, (("alpha", "m"),)),
    "ChiSquared": ({"nu": _POSITIVE}, (("nu",),)),
    "Beta": ({"alpha": _POSITIVE, "beta": _POSITIVE, "mu": _UNIT, "sigma": _POSITIVE, "nu": _POSITIVE},
             (("alpha", "beta"), ("mu", "sigma"), ("mu", "nu"))),
    "Uniform": ({"lower": _REAL, "upper": _REAL}, ((),)),
    "Flat": ({}, ((),)),
    "HalfFlat": ({}, ((),)),
}
_ALIASES = {"sd": "sigma", "scale": "sigma", "loc": "mu", "rate": "beta", "shape": "alpha"}


def _values(distribution: str, name: str, value: Any, rule: str) -> np.ndarray | None:
    """``value`` as a float array, checked against ``rule``; None for an absent bound."""
    if value is None and rule == _BOUND:
        return None
    array = np.asarray(value) if not isinstance(value, (str, bytes)) else np.asarray(None)
    if array.dtype.kind not in "iuf" or array.size == 0:
        raise PriorError(f"must be a number (or a list of numbers), got {value!r}",
                         distribution=distribution, argument=name)
    array = array.astype(float)
    finite = np.isfinite(array) | (rule == _BOUND)
    ok = {_POSITIVE: array > 0, _UNIT: (array > 0) & (array < 1)}.get(rule, True) & finite & ~np.isnan(array)
    if not np.all(ok):
        raise PriorError(f"must be {rule}, got {value!r}", distribution=distribution, argument=name)
    return array


def _check_arguments(distribution: str, parameters: dict[str, Any]) -> None:
    """Raise PriorError for an unsupported distribution or a bad, missing or unknown argument."""
    if not isinstance(distribution, str) or not isinstance(getattr(pm, distribution, None), type):
        raise PriorError(f"unknown PyMC distribution {distribution!r} in Prior; supported: {', '.join(SUPPORTED)}",
                         distribution=str(distribution))
    if distribution not in SUPPORTED:
        raise PriorError(f"not supported as a prior; supported: {', '.join(SUPPORTED)}", distribution=distribution)
    ranges, alternatives = SUPPORTED[distribution]
    for name in parameters:
        if name not in ranges:
            close = difflib.get_close_matches(name, ranges, n=1) or [a for a in [_ALIASES.get(name)] if a in ranges]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PriorError(f"unknown argument{hint}; {distribution} takes {', '.join(ranges) or 'no arguments'}",
                             distribution=distribution, argument=name)
    choosing = {a for alternative in alternatives for a in alternative}
    given = tuple(a for a in ranges if a in parameters and a in choosing)
    if set(given) not in [set(a) for a in alternatives]:
        ways = " | ".join(" and ".join(a) if a else "none (PyMC's default)" for a in alternatives)
        wider = [a for a in alternatives if set(given) <= set(a)]
        # name what is missing from the nearest parametrisation, else the argument too many
        argument = next(a for a in wider[0] if a not in given) if wider else given[-1]
        raise PriorError(f"{distribution} takes {ways}; got {' and '.join(given) or 'none'}",
                         distribution=distribution, argument=argument)
    values = {name: _values(distribution, name, value, ranges[name]) for name, value in parameters.items()}
    lower = values.get("lower", 0.0 if distribution == "Uniform" else None)
    upper = values.get("upper", 1.0 if distribution == "Uniform" else None)
    if lower is not None and upper is not None and not np.all(np.asarray(lower) < np.asarray(upper)):
        raise PriorError(f"needs lower < upper, got lower={parameters.get('lower', lower)!r}, "
                         f"upper={parameters.get('upper', upper)!r}", distribution=distribution, argument="upper")
    if distribution == "Beta" and "sigma" in values:
        mu, sigma = values["mu"], values["sigma"]
        if not np.all(sigma**2 < mu * (1 - mu)):
            raise PriorError(f"needs sigma**2 < mu * (1 - mu), got mu={parameters['mu']!r}, "
                             f"sigma={parameters['sigma']!r}", distribution=distribution, argument="sigma")


@dataclass(frozen=True)
class Prior:
    """A prior distribution by name.

    Parameters
    ----------
    distribution : str
        Name of a PyMC distribution class in ``SUPPORTED``, e.g. ``"HalfNormal"``.
    **parameters
        Keyword parameters of that distribution, e.g. ``sigma=10``: numbers or
        lists of numbers, checked against the distribution's arguments and ranges.

    Raises
    ------
    bayesclv.errors.PriorError
        An unsupported distribution, an unknown or missing argument, or a value
        out of range, naming the distribution and the argument.

    Examples
    --------
    >>> Prior("HalfNormal", sigma=10)
    Prior('HalfNormal', sigma=10)
    """

    distribution: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __init__(self, distribution: str, **parameters: Any):
        _check_arguments(distribution, parameters)
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
