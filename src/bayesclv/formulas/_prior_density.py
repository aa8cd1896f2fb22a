"""Log densities of positive parameters' priors, compiled, with each prior's arguments in one parametrisation.

Shared by the samplers that evaluate priors outside a PyTensor graph: the
Pareto/GGG's compiled sweeps (:mod:`._paretoggg_gibbs`) and the pooled models'
direct density (:mod:`bayesclv.models.direct_density`, which also needs the
derivative of the first four).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesclv.errors import PriorError

__all__ = ["PRIOR_CODES", "log_prior", "prior_arguments"]

#: prior distributions evaluated here (code of :func:`log_prior`)
PRIOR_CODES = {"HalfNormal": 0, "Exponential": 1, "Gamma": 2, "LogNormal": 3, "HalfCauchy": 4, "InverseGamma": 5,
               "Weibull": 6, "Uniform": 7, "HalfFlat": 8, "HalfStudentT": 9}


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_prior(code, a, b, v):  # pragma: no cover - compiled
    """Log density at ``v > 0`` of the prior ``code`` (:data:`PRIOR_CODES`) with arguments ``a, b``."""
    if not v > 0.0:
        return -np.inf
    if code == 0:
        return -0.5 * (v / a) ** 2 - math.log(a) + 0.5 * math.log(2.0 / math.pi)
    if code == 1:
        return math.log(a) - a * v
    if code == 2:
        return a * math.log(b) - math.lgamma(a) + (a - 1.0) * math.log(v) - b * v
    if code == 3:
        z = (math.log(v) - a) / b
        return -0.5 * z * z - math.log(v * b) - 0.5 * math.log(2.0 * math.pi)
    if code == 4:
        return math.log(2.0 / (math.pi * a)) - math.log1p((v / a) ** 2)
    if code == 5:
        return a * math.log(b) - math.lgamma(a) - (a + 1.0) * math.log(v) - b / v
    if code == 6:
        return math.log(a / b) + (a - 1.0) * math.log(v / b) - (v / b) ** a
    if code == 7:
        return -math.log(b - a) if a <= v <= b else -np.inf
    if code == 8:
        return 0.0
    return (math.log(2.0) + math.lgamma(0.5 * (a + 1.0)) - math.lgamma(0.5 * a) - 0.5 * math.log(a * math.pi)
            - math.log(b) - 0.5 * (a + 1.0) * math.log1p((v / b) ** 2 / a))


def prior_arguments(distribution: str, parameters: dict, *, caller: str = "this fit",
                    instead: str = "") -> tuple[float, float, float]:
    """``(code, a, b)`` of a prior for :func:`log_prior`, its parameters in the one parametrisation evaluated there.

    Parameters
    ----------
    distribution : str
        The prior's PyMC distribution name.
    parameters : dict
        Its arguments as the user gave them (PyMC's names and alternatives).
    caller : str, optional
        Who evaluates the prior, for the error (e.g. ``"method='gibbs'"``).
    instead : str, optional
        What the user can do instead besides choosing another prior, for the error
        (e.g. ``"method='nuts'"``).

    Raises
    ------
    bayesclv.errors.PriorError
        A distribution not evaluated here.
    """
    if distribution not in PRIOR_CODES:
        alternative = f" or {instead}" if instead else ""
        raise PriorError(f"{caller} evaluates the priors {sorted(PRIOR_CODES)}; use one of them{alternative}",
                         distribution=distribution)
    p = {key: float(value) for key, value in parameters.items()}
    if "tau" in p:  # precision -> scale (Normal-type) or lam -> sigma (Student t)
        p["sigma"] = p.pop("tau") ** -0.5
    if distribution == "HalfStudentT" and "lam" in p:
        p["sigma"] = p.pop("lam") ** -0.5
    if distribution == "Gamma" and "mu" in p:
        p = {"alpha": (p["mu"] / p["sigma"]) ** 2, "beta": p["mu"] / p["sigma"] ** 2}
    if distribution == "InverseGamma" and "mu" in p:
        shape = (p["mu"] / p["sigma"]) ** 2 + 2.0
        p = {"alpha": shape, "beta": p["mu"] * (shape - 1.0)}
    if distribution == "Exponential" and "scale" in p:
        p = {"lam": 1.0 / p["scale"]}
    defaults = {"HalfNormal": ("sigma", 1.0, "", 0.0), "Exponential": ("lam", 1.0, "", 0.0),
                "Gamma": ("alpha", 1.0, "beta", 1.0), "LogNormal": ("mu", 0.0, "sigma", 1.0),
                "HalfCauchy": ("beta", 1.0, "", 0.0), "InverseGamma": ("alpha", 1.0, "beta", 1.0),
                "Weibull": ("alpha", 1.0, "beta", 1.0), "Uniform": ("lower", 0.0, "upper", 1.0),
                "HalfFlat": ("", 0.0, "", 0.0), "HalfStudentT": ("nu", 1.0, "sigma", 1.0)}[distribution]
    return float(PRIOR_CODES[distribution]), p.get(defaults[0], defaults[1]), p.get(defaults[2], defaults[3])
