"""The quadrature frames of the marginal hierarchical likelihood: rule, latent likelihood, adaptation, corrections.

Customer ``i`` of a hierarchical model has two latent quantities
``theta_i = (log lam_i, log mu_i)`` (Pareto/NBD) or ``(log lam_i, logit p_i)``
(BG/NBD), ``theta_i ~ N(m_i, Sigma)``, and a closed-form likelihood
``L_i(theta)`` given them (:func:`latent_loglik`). :mod:`bayesclv.formulas._marginal`
integrates ``theta_i`` out with a Gauss-Hermite product rule (:func:`product_rule`)
in a fixed frame per distinct row: the conditional posterior's mean and
covariance factor at a reference value of the population parameters
(:func:`adapt_rows`). This module builds those frames, the rule's node terms
(:func:`node_log_terms`), the second-order model of the fixed rule's error
(:func:`rule_corrections`) and the range of population covariances the rule
resolves (:func:`resolved_range`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt

from bayesclv.chunks import available_cpus, map_chunks
from bayesclv.formulas._marginal_rows import spaced
from bayesclv.formulas._marginal_terms import FASTMATH, exp_nonpositive

__all__ = [
    "BGNBD",
    "CORRECTION_COLUMNS",
    "NODE_LADDER",
    "PARETONBD",
    "adapt_rows",
    "covariance_range",
    "is_product_rule",
    "latent_loglik",
    "minimum_nodes",
    "node_log_terms",
    "nodes_for_range",
    "precision",
    "product_rule",
    "range_penalty",
    "resolved_range",
    "row_tilts",
    "row_frames",
    "rule_corrections",
]

PARETONBD, BGNBD = 0, 1  # family codes of the compiled loops
_MAX_STEP = 4.0  # largest Newton step per latent coordinate (keeps exp(theta) finite on the way)
CORRECTION_COLUMNS = 36  # per row: error at the reference, reference tilt (5), slope (5), curvature (5 x 5)


# --------------------------------------------------------------------------- rule
def product_rule(n: int, prune: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Standard 2-D Gauss-Hermite product rule for ``int f(u) du``, ``u`` in R^2.

    Parameters
    ----------
    n : int
        Nodes per dimension.
    prune : float, default 0
        Drop nodes whose product weight is below ``prune`` times the largest
        (their share of a smooth integrand's mass is negligible).

    Returns
    -------
    tuple of numpy.ndarray
        ``powers`` of shape ``(5, K)``: rows ``u0, u1, u0^2, u0 u1, u1^2`` of
        the nodes; ``log_weights`` of shape ``(K,)``: ``log w_k + |u_k|^2 / 2``,
        so that ``int f(u) du ~ sum_k exp(log_weights[k]) f(u_k)``.
    """
    x, w = np.polynomial.hermite_e.hermegauss(int(n))
    u0, u1 = (g.ravel() for g in np.meshgrid(x, x, indexing="ij"))
    weight = np.outer(w, w).ravel()
    keep = weight >= prune * weight.max()
    u0, u1, weight = u0[keep], u1[keep], weight[keep]
    powers = np.ascontiguousarray(np.stack([u0, u1, u0 * u0, u0 * u1, u1 * u1]))
    return powers, np.log(weight) + 0.5 * (u0 * u0 + u1 * u1)


def is_product_rule(powers: np.ndarray) -> bool:
    """Whether ``powers`` (:func:`product_rule`) hold a full ``n x n`` grid of symmetric nodes (no node pruned):
    the marginal kernel then sums each row by factors."""
    side = int(round(np.sqrt(powers.shape[1])))
    x = powers[1, :side]
    return (side * side == powers.shape[1] and np.array_equal(powers[0], np.repeat(x, side))
            and np.array_equal(powers[1], np.tile(x, side)) and np.allclose(x, -x[::-1], rtol=0, atol=1e-12))


NODE_LADDER = (6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48)
_RANGE_PER_NODE = (5.8, 0.19)  # resolved_range: Sigma^-1 Sigma_ref in [5.8 / n, 0.19 n] (measured on CDNOW)
_RANGE_MARGIN = 1.1
_WALL_STIFFNESS = 200.0


def resolved_range(n: int) -> tuple[float, float]:
    """Eigenvalues of ``Sigma^-1 Sigma_ref`` for which an ``n x n`` rule built at ``Sigma_ref`` stays accurate.

    The frames are the rows' conditional posteriors at the reference. A
    population covariance much narrower than the reference's makes the
    rows' posteriors narrower than the nodes' spacing (the rule then
    over-estimates: on the CDNOW sample an 10 x 10 rule gains +34 nats where
    the eigenvalue reaches 6); a much wider one spreads them beyond the
    outer nodes (it under-estimates). The bounds are where the corrected
    rule's error on CDNOW (sample and full, Pareto/NBD) grows past about 5e-5
    nats per row. The ladder's 40 and 48 extend that line (a finer rule resolves at
    least as wide a range); the BG/NBD on the CDNOW sample needs 48, and its
    posterior there agrees with the latent oracle (``validation/results/marginal_vs_latent.md``).
    """
    return _RANGE_PER_NODE[0] / n, _RANGE_PER_NODE[1] * n


def nodes_for_range(low: float, high: float, minimum: int) -> int:
    """The smallest node count of :data:`NODE_LADDER`, at least ``minimum``, whose resolved range holds
    ``[low, high]`` with a margin (the largest if none does)."""
    for n in NODE_LADDER:
        lo, hi = resolved_range(n)
        if n >= minimum and lo * _RANGE_MARGIN <= low and high * _RANGE_MARGIN <= hi:
            return n
    return NODE_LADDER[-1]


def minimum_nodes(rows: int) -> int:
    """Nodes per dimension for the bulk of the posterior: the corrected rule's error over the posterior grows
    with the rows and shrinks with the posterior's width, which shrinks with the rows."""
    return 6 if rows >= 200_000 else 8 if rows >= 8_000 else 10


_DISCRIMINANT_FLOOR = float(np.finfo(float).tiny)  # keeps sqrt's derivative finite where the eigenvalues meet


def covariance_range(sigma, rho, sigma_ref, xp=None):
    """Smallest and largest eigenvalue of ``Sigma^-1 Sigma_ref`` (``xp=np`` for NumPy, PyTensor by default).

    Where the two eigenvalues are equal (``Sigma`` a multiple of ``Sigma_ref``, the reference point itself
    among them) the discriminant is 0 up to rounding and the square root's derivative infinite: floored at 0,
    the gradient there is ``0 * inf = NaN`` even though the wall's own derivative is 0 (about half of the
    reference points, by the sign of the rounding). Floored at the smallest normal number instead, the
    derivative is finite (0 inside the walls) and the eigenvalues move by ~1e-154.
    """
    xp = pt if xp is None else xp
    s0, s1 = sigma[0], sigma[1]
    one = 1.0 - rho * rho
    trace = (sigma_ref[0, 0] / (s0 * s0) - 2.0 * rho * sigma_ref[0, 1] / (s0 * s1)
             + sigma_ref[1, 1] / (s1 * s1)) / one
    det = (sigma_ref[0, 0] * sigma_ref[1, 1] - sigma_ref[0, 1] ** 2) / (s0 * s0 * s1 * s1 * one)
    root = xp.sqrt(xp.maximum(0.25 * trace * trace - det, _DISCRIMINANT_FLOOR))
    return 0.5 * trace - root, 0.5 * trace + root


def range_penalty(low, high, walls):
    """``-stiffness/2 (log distance beyond the walls)^2``: 0 inside ``[walls[0], walls[1]]`` (PyTensor)."""
    below = pt.maximum(pt.log(walls[0]) - pt.log(low), 0.0)
    above = pt.maximum(pt.log(high) - pt.log(walls[1]), 0.0)
    return -0.5 * _WALL_STIFFNESS * (below * below + above * above)


# ------------------------------------------------------------ latent likelihoods
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softplus(z):  # pragma: no cover - compiled
    return z + math.log1p(math.exp(-z)) if z > 0.0 else math.log1p(math.exp(z))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sigmoid(z):  # pragma: no cover - compiled
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def latent_loglik(family, x, t_x, T, a, c, derivatives):  # pragma: no cover - compiled
    """``log L(theta | x, t_x, T)`` at ``theta = (a, c)``, with its gradient and Hessian in ``theta``.

    Pareto/NBD (``a = log lam``, ``c = log mu``, ``s = lam + mu``)::

        log L = x a - log s + logaddexp(c - s t_x, a - s T)

    BG/NBD (``a = log lam``, ``c = logit p``; ``log p - log(1-p) = c`` exactly)::

        log L = x a - x softplus(c) - lam T + [x > 0] softplus(c + lam (T - t_x))

    Returns ``(f, ga, gc, haa, hac, hcc)``; the derivatives are 0 unless ``derivatives``.
    """
    lam = math.exp(a)
    f = _latent_value(family, x, t_x, T, a, lam, c)
    if not derivatives:
        return f, 0.0, 0.0, 0.0, 0.0, 0.0
    if family == PARETONBD:
        mu = math.exp(c)
        s = lam + mu
        first, second = c - s * t_x, a - s * T  # died after the last purchase / alive at T
        alive = _sigmoid(second - first)
        dead = 1.0 - alive
        gap = T - t_x
        cross = lam * mu / (s * s)
        ga = x - lam / s - dead * lam * t_x + alive * (1.0 - lam * T)
        gc = -mu / s + dead * (1.0 - mu * t_x) - alive * mu * T
        mix = alive * dead
        exposure = dead * t_x + alive * T
        d0, d1 = lam * gap - 1.0, 1.0 + mu * gap  # gradient of (second - first)
        return (f, ga, gc, -cross - lam * exposure + mix * d0 * d0, cross + mix * d0 * d1,
                -cross - mu * exposure + mix * d1 * d1)
    q = _sigmoid(c)
    ga, gc = x - lam * T, -x * q
    haa, hac, hcc = -lam * T, 0.0, -x * q * (1.0 - q)
    if x > 0.0:
        gap = lam * (T - t_x)
        z = _sigmoid(c + gap)
        dz = z * (1.0 - z)
        ga += z * gap
        gc += z
        haa += dz * gap * gap + z * gap
        hac += dz * gap
        hcc += dz
    return f, ga, gc, haa, hac, hcc


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _latent_value(family, x, t_x, T, a, lam, c):  # pragma: no cover - compiled
    """:func:`latent_loglik`'s value with ``lam = exp(a)`` given (:func:`_grid_loglik` shares it along a grid
    row). A BG/NBD row without repeat purchase has ``log L = -lam T`` (its ``x`` terms are exactly 0): no
    per-node special function at all."""
    if family == PARETONBD:
        mu = math.exp(c)
        s = lam + mu
        log_s = max(a, c) + math.log1p(math.exp(-abs(a - c)))
        first, second = c - s * t_x, a - s * T  # died after the last purchase / alive at T
        hi = max(first, second)
        return x * a - log_s + hi + math.log1p(math.exp(-abs(first - second)))
    if x == 0.0:
        return -lam * T
    return x * a - x * _softplus(c) - lam * T + _softplus(c + lam * (T - t_x))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _grid_loglik(family, x, t_x, T, c0, c1, r00, r10, r11, nodes, out):  # pragma: no cover - compiled
    """``log L`` at the nodes ``theta_k = c + R u_k`` of a full product rule (``u_k = (nodes[a], nodes[b])``,
    ``k = a n + b``, the order of :func:`product_rule`) into ``out``: ``exp(theta0)`` once per ``a``, the same
    values as :func:`latent_loglik` node by node."""
    n = nodes.size
    for ia in range(n):
        th0 = c0 + r00 * nodes[ia]
        lam = math.exp(th0)
        base = c1 + r10 * nodes[ia]
        for ib in range(n):
            out[ia * n + ib] = _latent_value(family, x, t_x, T, th0, lam, base + r11 * nodes[ib])


# --------------------------------------------------------------------- adaptation
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _positive_definite(h00, h01, h11):  # pragma: no cover - compiled
    """``h`` shifted by a multiple of the identity where needed so its smallest eigenvalue is positive."""
    half_trace, det = 0.5 * (h00 + h11), h00 * h11 - h01 * h01
    smallest = half_trace - math.sqrt(max(half_trace * half_trace - det, 0.0))
    floor = 1e-6 * max(abs(h00), abs(h11), 1e-300)
    if smallest < floor:
        shift = floor - smallest
        h00 += shift
        h11 += shift
    return h00, h01, h11


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_posterior(family, x, t_x, T, a, c, m0, m1, p00, p01, p11):  # pragma: no cover - compiled
    d0, d1 = a - m0, c - m1
    f = latent_loglik(family, x, t_x, T, a, c, False)[0]
    return f - 0.5 * (p00 * d0 * d0 + 2.0 * p01 * d0 * d1 + p11 * d1 * d1)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _laplace_row(family, x, t_x, T, m0, m1, p00, p01, p11):  # pragma: no cover - compiled
    """Mode of ``log L + log N(m, P^-1)`` by damped Newton, and the negative Hessian there."""
    a, c = m0, m1
    h00, h01, h11 = p00, p01, p11
    for _ in range(200):
        _, ga, gc, haa, hac, hcc = latent_loglik(family, x, t_x, T, a, c, True)
        d0, d1 = a - m0, c - m1
        ga -= p00 * d0 + p01 * d1
        gc -= p01 * d0 + p11 * d1
        h00, h01, h11 = _positive_definite(p00 - haa, p01 - hac, p11 - hcc)
        det = h00 * h11 - h01 * h01
        s0, s1 = (h11 * ga - h01 * gc) / det, (h00 * gc - h01 * ga) / det
        scale = max(abs(s0), abs(s1)) / _MAX_STEP
        if scale > 1.0:
            s0, s1 = s0 / scale, s1 / scale
        decrease = ga * s0 + gc * s1
        if decrease < 1e-12:
            break
        f0 = _log_posterior(family, x, t_x, T, a, c, m0, m1, p00, p01, p11)
        step = 1.0
        while step > 1e-8:
            f1 = _log_posterior(family, x, t_x, T, a + step * s0, c + step * s1, m0, m1, p00, p01, p11)
            if f1 >= f0 + 1e-4 * step * decrease:
                break
            step *= 0.5
        a, c = a + step * s0, c + step * s1
    return a, c, h00, h01, h11


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _frame_from_precision(h00, h01, h11):  # pragma: no cover - compiled
    """Cholesky factor ``(R00, R10, R11)`` of the inverse of the 2x2 precision ``h``."""
    det = h00 * h11 - h01 * h01
    v00, v01, v11 = h11 / det, -h01 / det, h00 / det
    r00 = math.sqrt(v00)
    r10 = v01 / r00
    return r00, r10, math.sqrt(max(v11 - r10 * r10, 1e-300))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adapt_kernel(family, x, t_x, T, mean, p00, p01, p11, powers, log_weights, refinements,
                  centre, chol):  # pragma: no cover - compiled
    n_nodes = powers.shape[1]
    nodes = np.ascontiguousarray(powers[1, :int(math.sqrt(n_nodes) + 0.5)])  # a full product rule's 1-D nodes
    log_terms = np.empty(n_nodes)
    for i in range(x.size):
        m0, m1 = mean[i, 0], mean[i, 1]
        a, c, h00, h01, h11 = _laplace_row(family, x[i], t_x[i], T[i], m0, m1, p00, p01, p11)
        r00, r10, r11 = _frame_from_precision(h00, h01, h11)
        for _ in range(refinements):  # Naylor-Smith: the posterior's mean and covariance by the rule
            top = -np.inf
            _grid_loglik(family, x[i], t_x[i], T[i], a, c, r00, r10, r11, nodes, log_terms)
            for k in range(n_nodes):
                u0, u1 = powers[0, k], powers[1, k]
                d0, d1 = a + r00 * u0 - m0, c + r10 * u0 + r11 * u1 - m1
                log_terms[k] = (log_weights[k] + log_terms[k]
                                - 0.5 * (p00 * d0 * d0 + 2.0 * p01 * d0 * d1 + p11 * d1 * d1))
                top = max(top, log_terms[k])
            s = e0 = e1 = e00 = e01 = e11 = 0.0
            for k in range(n_nodes):
                w = math.exp(log_terms[k] - top)
                u0, u1 = powers[0, k], powers[1, k]
                s += w
                e0 += w * u0
                e1 += w * u1
                e00 += w * u0 * u0
                e01 += w * u0 * u1
                e11 += w * u1 * u1
            e0, e1, e00, e01, e11 = e0 / s, e1 / s, e00 / s, e01 / s, e11 / s
            c00, c01, c11 = e00 - e0 * e0, e01 - e0 * e1, e11 - e1 * e1  # covariance of u
            a, c = a + r00 * e0, c + r10 * e0 + r11 * e1
            # covariance of theta = R cov(u) R^T, R lower triangular
            v00 = r00 * r00 * c00
            v01 = r00 * (r10 * c00 + r11 * c01)
            v11 = r10 * r10 * c00 + 2.0 * r10 * r11 * c01 + r11 * r11 * c11
            if not (v00 > 0.0 and v00 * v11 - v01 * v01 > 0.0):
                break  # a degenerate estimate (too few nodes where the mass is): keep the previous frame
            r00 = math.sqrt(v00)
            r10 = v01 / r00
            r11 = math.sqrt(v11 - r10 * r10)
        centre[i, 0], centre[i, 1] = a, c
        chol[i, 0], chol[i, 1], chol[i, 2] = r00, r10, r11


def precision(sigma, rho) -> tuple[float, float, float]:
    """Entries ``(P00, P01, P11)`` of ``Sigma^-1`` for sds ``sigma`` and correlation ``rho``."""
    s0, s1 = float(sigma[0]), float(sigma[1])
    one = 1.0 - float(rho) ** 2
    return 1.0 / (one * s0 * s0), -float(rho) / (one * s0 * s1), 1.0 / (one * s1 * s1)


def adapt_rows(family: int, frequency, recency, T, mean, sigma, rho, *, refine_nodes: int = 12,
               refinements: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Each row's quadrature frame: the mean and covariance Cholesky factor of ``p(theta | y_i, phi)``.

    A damped Newton search for the mode of ``log L_i(theta) + log N(theta; m_i, Sigma)``
    gives the Laplace frame; ``refinements`` passes of a ``refine_nodes``-point
    product rule in that frame then replace it by the conditional posterior's
    mean and covariance (Naylor & Smith 1982), which suits the skewed
    posteriors of customers without repeat purchases better than the mode.

    Parameters
    ----------
    family : int
        :data:`PARETONBD` or :data:`BGNBD`.
    frequency, recency, T : array_like
        The rows' histories, shape ``(n,)``.
    mean : array_like
        ``m_i``, shape ``(n, 2)``: each row's population mean of ``theta``.
    sigma : array_like
        Population sds of the two latent quantities.
    rho : float
        Their correlation.

    Returns
    -------
    tuple of numpy.ndarray
        ``centre`` of shape ``(n, 2)`` and ``chol`` of shape ``(n, 3)``
        (``R00, R10, R11`` of the lower-triangular factor).
    """
    x, t_x, T = (np.ascontiguousarray(v, dtype=float) for v in (frequency, recency, T))
    mean = np.ascontiguousarray(mean, dtype=float)
    centre, chol = np.empty((x.size, 2)), np.empty((x.size, 3))
    powers, log_weights = product_rule(refine_nodes)
    p00, p01, p11 = precision(sigma, rho)
    _on_cores(x.size, lambda s: _adapt_kernel(family, x[s], t_x[s], T[s], mean[s], p00, p01, p11, powers, log_weights,
                                              int(refinements), centre[s], chol[s]))
    return centre, chol


_CORE_ROWS = 1000  # fewest rows worth a thread of their own


def _on_cores(n: int, evaluate) -> None:
    """``evaluate(rows)`` for consecutive slices of ``n`` rows, one slice per core: the row kernels
    release the GIL and each row's result is its own, so the threads write disjoint slices."""
    step = max(_CORE_ROWS, -(-n // available_cpus()))
    map_chunks(lambda start: evaluate(slice(start, min(start + step, n))), n, step)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _node_terms_kernel(family, x, t_x, T, centre, chol, powers, log_weights, out):  # pragma: no cover
    for i in range(x.size):
        r00, r10, r11 = chol[i, 0], chol[i, 1], chol[i, 2]
        log_det = math.log(r00) + math.log(r11)
        for k in range(powers.shape[1]):
            th0 = centre[i, 0] + r00 * powers[0, k]
            th1 = centre[i, 1] + r10 * powers[0, k] + r11 * powers[1, k]
            out[i, k] = log_weights[k] + log_det + latent_loglik(family, x[i], t_x[i], T[i], th0, th1, False)[0]


def node_log_terms(family: int, frequency, recency, T, centre, chol, powers, log_weights) -> np.ndarray:
    """``a_ik = log w_k + |u_k|^2/2 + log|R_i| + log L_i(c_i + R_i u_k)``, shape ``(rows, nodes)``."""
    x, t_x, T = (np.ascontiguousarray(v, dtype=float) for v in (frequency, recency, T))
    out = np.empty((x.size, powers.shape[1]))
    centre, chol = np.ascontiguousarray(centre, dtype=float), np.ascontiguousarray(chol, dtype=float)
    _on_cores(x.size, lambda s: _node_terms_kernel(family, x[s], t_x[s], T[s], centre[s], chol[s], powers, log_weights,
                                                   out[s]))
    return out


def row_tilts(mean, sigma, rho, centre, chol) -> np.ndarray:
    """Each row's tilt ``(b0, b1, A00, A01, A11)``: ``b = R' P (c - m)``, ``A = R' P R`` (see :func:`marginal_loglik`)."""
    p00, p01, p11 = precision(sigma, rho)
    d0, d1 = centre[:, 0] - mean[:, 0], centre[:, 1] - mean[:, 1]
    r00, r10, r11 = chol[:, 0], chol[:, 1], chol[:, 2]
    pd0, pd1 = p00 * d0 + p01 * d1, p01 * d0 + p11 * d1
    pr00, pr10 = p00 * r00 + p01 * r10, p01 * r00 + p11 * r10
    return np.column_stack([r00 * pd0 + r10 * pd1, r11 * pd1, r00 * pr00 + r10 * pr10, r11 * pr10, r11 * r11 * p11])


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _tilted_moments(log_terms, stats, tilt, w, bits, mean, cov):  # pragma: no cover - compiled
    """``log sum_k exp(a_k - t . S_k)`` and the mean and covariance of ``S`` under the normalised terms.

    ``stats`` ``(5, K)``: ``S(u_k)`` of every node (:func:`_node_stats`); ``w``, ``bits``: scratch (``K``).
    Each step is one loop over the nodes (vectorised exponentials, 20 running sums): one node at a time,
    with a libm exponential and the 25 products of ``S S'``, it was half of a frame adaptation's cost."""
    n_nodes = log_terms.size
    t0, t1, t2, t3, t4 = tilt[0], tilt[1], tilt[2], tilt[3], tilt[4]
    s0, s1, s2, s3, s4 = stats[0], stats[1], stats[2], stats[3], stats[4]
    top = -np.inf
    for k in range(n_nodes):
        w[k] = log_terms[k] - (t0 * s0[k] + t1 * s1[k] + t2 * s2[k] + t3 * s3[k] + t4 * s4[k])
    for k in range(n_nodes):
        top = max(top, w[k])
    total = exp_nonpositive(w, top, bits)
    m0 = m1 = m2 = m3 = m4 = 0.0
    c00 = c01 = c02 = c03 = c04 = c11 = c12 = c13 = c14 = c22 = c23 = c24 = c33 = c34 = c44 = 0.0
    for k in range(n_nodes):
        p, v0, v1, v2, v3, v4 = w[k], s0[k], s1[k], s2[k], s3[k], s4[k]
        p0, p1, p2, p3 = p * v0, p * v1, p * v2, p * v3
        m0 += p0
        m1 += p1
        m2 += p2
        m3 += p3
        m4 += p * v4
        c00 += p0 * v0
        c01 += p0 * v1
        c02 += p0 * v2
        c03 += p0 * v3
        c04 += p0 * v4
        c11 += p1 * v1
        c12 += p1 * v2
        c13 += p1 * v3
        c14 += p1 * v4
        c22 += p2 * v2
        c23 += p2 * v3
        c24 += p2 * v4
        c33 += p3 * v3
        c34 += p3 * v4
        c44 += p * v4 * v4
    sums = (m0, m1, m2, m3, m4)
    upper = ((c00, c01, c02, c03, c04), (c01, c11, c12, c13, c14), (c02, c12, c22, c23, c24),
             (c03, c13, c23, c33, c34), (c04, c14, c24, c34, c44))
    for j in range(5):
        mean[j] = sums[j] / total
    for j in range(5):
        for l in range(5):
            cov[j, l] = upper[j][l] / total - mean[j] * mean[l]
    return top + math.log(total)


def _node_stats(powers: np.ndarray) -> np.ndarray:
    """``S(u_k) = (u0, u1, u0^2/2, u0 u1, u1^2/2)`` of every node, ``(5, K)``."""
    return np.ascontiguousarray(powers * np.array([1.0, 1.0, 0.5, 1.0, 0.5])[:, None])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _corrections_kernel(family, x, t_x, T, centre, chol, log_terms, stats, tilts, accurate_nodes, accurate_stats,
                        accurate_log_weights, out):  # pragma: no cover - compiled
    # The arrays _tilted_moments' fast-math loops touch lie in one buffer, each followed by a gap as long as
    # itself: separate allocations next to each other fail a vectorised loop's run-time overlap check (its
    # ranges run past each array's end) and send it down its scalar version, which rounds differently; with a
    # fixed layout every call takes the same path and the table repeats bit for bit (docs/ARCHITECTURE.md).
    n_fixed, n_accurate = stats.shape[1], accurate_stats.shape[1]
    buffer = np.empty(2 * (3 * n_fixed + 3 * n_accurate + 5 * n_fixed + 5 * n_accurate))
    fixed_terms, at = spaced(buffer, 0, n_fixed)
    accurate_terms, at = spaced(buffer, at, n_accurate)
    w, at = spaced(buffer, at, max(n_fixed, n_accurate))
    scale, at = spaced(buffer, at, max(n_fixed, n_accurate))
    bits = scale.view(np.int64)
    fixed_stats, at = spaced(buffer, at, 5 * n_fixed)
    fixed_stats = fixed_stats.reshape((5, n_fixed))
    exact_stats, at = spaced(buffer, at, 5 * n_accurate)
    exact_stats = exact_stats.reshape((5, n_accurate))
    fixed_stats[:] = stats
    exact_stats[:] = accurate_stats
    mean_f, mean_a = np.empty(5), np.empty(5)
    cov_f, cov_a = np.empty((5, 5)), np.empty((5, 5))
    for i in range(x.size):
        r00, r10, r11 = chol[i, 0], chol[i, 1], chol[i, 2]
        log_det = math.log(r00) + math.log(r11)
        _grid_loglik(family, x[i], t_x[i], T[i], centre[i, 0], centre[i, 1], r00, r10, r11, accurate_nodes,
                     accurate_terms)
        for k in range(n_accurate):
            accurate_terms[k] = accurate_log_weights[k] + log_det + accurate_terms[k]
        fixed_terms[:] = log_terms[i]
        fixed = _tilted_moments(fixed_terms, fixed_stats, tilts[i], w[:n_fixed], bits[:n_fixed], mean_f, cov_f)
        accurate = _tilted_moments(accurate_terms, exact_stats, tilts[i], w[:n_accurate], bits[:n_accurate],
                                   mean_a, cov_a)
        out[i, 0] = fixed - accurate
        for j in range(5):
            out[i, 1 + j] = tilts[i, j]
            out[i, 6 + j] = mean_a[j] - mean_f[j]  # d(error)/d(tilt) = -E_fixed[S] + E_accurate[S]
            for l in range(5):
                out[i, 11 + 5 * j + l] = cov_f[j, l] - cov_a[j, l]


def rule_corrections(family: int, frequency, recency, T, centre, chol, log_terms, powers, tilts,
                     accurate_nodes: int = 36) -> np.ndarray:
    """Per row, the fixed rule's error as a function of the tilt, to second order around ``tilts``.

    A population parameter value enters a row's node terms only through its
    tilt ``t`` (:func:`row_tilts`), so the rule's error in the row's
    log-likelihood is a function ``e(t)``. Its value, gradient and Hessian at
    the reference tilt are differences of ``log sum exp`` and of the mean and
    covariance of ``S(u) = (u0, u1, u0^2/2, u0 u1, u1^2/2)`` between the rule and an
    ``accurate_nodes``-point product rule in the same frame; subtracting the
    expansion leaves an error of third order in the tilt's change.

    Returns
    -------
    numpy.ndarray
        Shape ``(rows, 36)``: error, reference tilt (5), gradient (5), Hessian (25).
    """
    x, t_x, T = (np.ascontiguousarray(v, dtype=float) for v in (frequency, recency, T))
    accurate_powers, accurate_log_weights = product_rule(accurate_nodes)
    out = np.empty((x.size, CORRECTION_COLUMNS))
    centre, chol, log_terms, tilts = (np.ascontiguousarray(v, dtype=float) for v in (centre, chol, log_terms, tilts))
    stats, accurate_stats = _node_stats(powers), _node_stats(accurate_powers)
    nodes = np.ascontiguousarray(accurate_powers[1, :accurate_nodes])
    _on_cores(x.size, lambda s: _corrections_kernel(family, x[s], t_x[s], T[s], centre[s], chol[s], log_terms[s],
                                                    stats, tilts[s], nodes, accurate_stats, accurate_log_weights,
                                                    out[s]))
    return out


def row_frames(family: int, history: np.ndarray, mean: np.ndarray, sigma, rho, powers: np.ndarray,
               log_weights: np.ndarray, *, corrected: bool = True, refinements: int = 2) -> dict[str, np.ndarray]:
    """The tables the marginal kernel reads for rows ``history`` (``(n, 3)``: frequency, recency, T), each
    rule centred at the row's conditional posterior under the population (``mean`` ``(n, 2)``, ``sigma``, ``rho``).

    Returns
    -------
    dict
        ``centre``, ``chol`` (:func:`adapt_rows`), ``log_terms`` (:func:`node_log_terms`), ``top_terms``
        (their maximum per row), ``node_mass`` (``exp(a_ik - max_k a_ik)`` for a full product rule, which the
        kernel sums by factors; ``(n, 0)`` for a pruned one, summed node by node) and ``correction``
        (:func:`rule_corrections`; ``(n, 0)`` unless ``corrected``).
    """
    x, t_x, T = (np.ascontiguousarray(history[:, j], dtype=float) for j in range(3))
    centre, chol = adapt_rows(family, x, t_x, T, mean, sigma, rho, refinements=refinements)
    terms = node_log_terms(family, x, t_x, T, centre, chol, powers, log_weights)
    top = terms.max(axis=1)
    mass = np.exp(terms - top[:, None]) if is_product_rule(powers) else np.zeros((len(terms), 0))
    correction = (rule_corrections(family, x, t_x, T, centre, chol, terms, powers,
                                   row_tilts(mean, sigma, rho, centre, chol))
                  if corrected else np.zeros((len(centre), 0)))
    return {"centre": centre, "chol": chol, "log_terms": terms, "top_terms": top, "node_mass": mass,
            "correction": correction}
