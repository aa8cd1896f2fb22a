"""Independent reference for the Pareto/GGG individual-level model (given k, lambda, mu).

Computed from the model's definition, not from the library's closed forms:

* likelihood from a customer's purchase times: the product of the Gamma(k, k lambda) densities of
  the inter-purchase times, times the probability of no purchase in ``(t_x, T]``, integrated over
  the time of death ``t_x + u``: ``e^(-mu t_x) [e^(-mu Delta) Q(k, k lambda Delta)
  + int_0^Delta mu e^(-mu u) Q(k, k lambda u) du]`` (mpmath, 30 digits, tanh-sinh quadrature);
* P(alive) as the share of the first term;
* expected purchases in ``(T, T+t]`` given alive: the sum over the ``j``-th future purchase of
  ``E[e^(-mu S_j); S_j <= t]``, each an integral over the next purchase time ``w`` (density
  ``g(w) / Q(k, k lambda Delta)`` on ``w > Delta``) of the Gamma(j-1) renewal after it, by mpmath
  quadrature in ``w`` for each ``j`` separately.
"""

from __future__ import annotations

from functools import lru_cache

import mpmath as mp
import numpy as np

__all__ = ["expected_purchases_given_alive", "loglik_from_times", "probability_alive"]

_DPS = 30


def _q(k, y):
    """Regularised upper incomplete gamma function Q(k, y)."""
    return mp.mpf(1) if y == 0 else mp.gammainc(k, y, mp.inf, regularized=True)


def _bracket(delta, k, lam, mu):
    """e^(-mu Delta) Q(k, k lam Delta) + int_0^Delta mu e^(-mu u) Q(k, k lam u) du, and its first term."""
    alive = mp.exp(-mu * delta) * _q(k, k * lam * delta)
    if delta == 0:
        return alive, alive
    scale = 1 / (k * lam + mu)
    points = sorted({mp.mpf(0), *(min(delta, c * scale) for c in (0.01, 0.1, 1, 10, 100)), mp.mpf(delta)})
    died = mp.quad(lambda u: mu * mp.exp(-mu * u) * _q(k, k * lam * u), points)
    return alive + died, alive


@lru_cache(maxsize=None)
def _loglik(times, T, k, lam, mu):
    with mp.workdps(_DPS):
        k, lam, mu, T = mp.mpf(k), mp.mpf(lam), mp.mpf(mu), mp.mpf(T)
        t_x = mp.mpf(times[-1]) if times else mp.mpf(0)
        gaps = np.diff(np.concatenate([[0.0], np.asarray(times, dtype=float)]))
        log_density = sum(k * mp.log(k * lam) + (k - 1) * mp.log(mp.mpf(d)) - k * lam * d - mp.loggamma(k)
                          for d in gaps)
        total, _ = _bracket(T - t_x, k, lam, mu)
        return float(log_density - mu * t_x + mp.log(total))


def loglik_from_times(times, T, k, lam, mu):
    """log L of a customer whose repeat purchases happened at ``times`` (first purchase at 0)."""
    return _loglik(tuple(float(v) for v in times), float(T), float(k), float(lam), float(mu))


@lru_cache(maxsize=None)
def probability_alive(delta, k, lam, mu):
    """P(alive at T | Delta = T - t_x since the last purchase)."""
    with mp.workdps(_DPS):
        total, alive = _bracket(mp.mpf(delta), mp.mpf(k), mp.mpf(lam), mp.mpf(mu))
        return float(alive / total)


@lru_cache(maxsize=None)
def expected_purchases_given_alive(t, delta, k, lam, mu):
    """E[purchases in (T, T+t] | alive at T, Delta since the last purchase]."""
    with mp.workdps(_DPS):
        t, delta, k, lam, mu = (mp.mpf(v) for v in (t, delta, k, lam, mu))
        rate = k * lam + mu
        norm = _q(k, k * lam * delta)

        def density(w):  # next purchase at w - Delta after T
            return mp.exp(k * mp.log(k * lam) + (k - 1) * mp.log(w) - k * lam * w - mp.loggamma(k)) / norm

        mean = 1 / lam
        points = sorted({delta, *(delta + min(t, c * mean) for c in (0.1, 0.5, 1, 2, 4, 8, 16, 64)), delta + t})
        total = mp.mpf(0)
        for j in range(1, 100000):  # the j-th purchase after T: renewal number j-1 after the first one
            n = j - 1

            def term(w, n=n):
                left = t + delta - w
                later = 1 if n == 0 else (k * lam / rate) ** (n * k) * mp.gammainc(n * k, 0, rate * left,
                                                                                    regularized=True)
                return density(w) * mp.exp(-mu * (w - delta)) * later

            value = mp.quad(term, points)
            total += value
            if value < mp.mpf(10) ** -20 * total:
                break
        return float(total)
