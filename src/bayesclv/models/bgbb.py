"""BG/BB model class (Fader, Hardie & Shang 2010): repeat transactions at discrete opportunities."""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesclv.data.discrete import opportunity_frame
from bayesclv.formulas import bgbb
from bayesclv.models.mean_concentration import BetaShapeSampling
from bayesclv.models.pooled import PooledTransactionModel
from bayesclv.priors import Prior

__all__ = ["BetaGeoBetaBinomModel"]


class BetaGeoBetaBinomModel(BetaShapeSampling, PooledTransactionModel):
    """Beta-geometric/beta-Bernoulli model of transactions at discrete opportunities (BG/BB).

    A customer acquired at opportunity 0 is observed at ``periods`` further
    opportunities (yearly donation drives, weekly events). While alive, the
    customer transacts at an opportunity with probability ``p ~ Beta(alpha,
    beta)``; at the start of each opportunity they become inactive for good
    with probability ``theta ~ Beta(gamma, delta)``. See
    :mod:`bayesclv.formulas.bgbb` for the likelihood and the predictions.

    Data: ``frequency`` (opportunities with a transaction after the
    acquisition one), ``recency`` (the last of them; 0 if none) and ``periods``,
    one row per customer, or one row per distinct history with a ``weights``
    column counting the customers who share it (how
    :func:`~bayesclv.datasets.load_donations` ships). A table without
    ``customer_id`` is labelled by its row index: predictions have one entry
    per row (each of the row's ``weights`` customers has it), so totals over
    customers weight the rows, e.g. ``(model.expected_purchases(5) *
    data["weights"].to_numpy()).sum("customer_id")``. A transaction log
    becomes such a table with :func:`bayesclv.data.discrete.opportunity_summary`
    and an opportunity calendar.

    Time is counted in opportunities (``time_unit == "opportunity"``):
    horizons ``t`` are whole numbers of future opportunities. "Alive" means
    alive at the next opportunity ``periods + 1`` (dropout happens at the
    start of an opportunity): :meth:`probability_alive` is that probability,
    ``given_alive=True`` conditions on it, and ``probability_alive_at(t)`` is
    P(alive at opportunity ``periods + max(t, 1)``). The CLV's period is one
    opportunity, which has no calendar length, so
    :func:`bayesclv.customer_lifetime_value` (calendar periods) refuses the
    model with a :class:`~bayesclv.errors.TimeUnitError`; the value of the
    next ``H`` opportunities at discount rate ``d`` per opportunity is
    ``model.discounted_expected_purchases(ends, (1 + d) ** -ends)`` with
    ``ends = 1..H``, times the value of a transaction.

    Parameters
    ----------
    priors : dict of str to Prior, optional
        Overrides for the priors of ``alpha``, ``beta``, ``gamma``, ``delta``
        (the shapes of the two beta distributions). Default: each
        ``HalfNormal(50)``, weakly informative like the BG/NBD's ``a, b``.
    group, pooling : optional
        Group column and pooling (``"partial"``, ``"none"``, ``"complete"``);
        see :class:`~bayesclv.models.pooled.PooledModel`.

    Examples
    --------
    >>> from bayesclv import BetaGeoBetaBinomModel
    >>> from bayesclv.datasets import load_donations
    >>> model = BetaGeoBetaBinomModel().fit(load_donations(), method="map", progressbar=False)
    >>> model.summary()["mean"].round(3).tolist()  # Fader, Hardie & Shang (2010): 1.204, 0.750, 0.657, 2.783
    [1.204, 0.75, 0.657, 2.783]
    """

    parameter_names = bgbb.PARAMETERS
    beta_pairs = (("alpha", "beta"), ("gamma", "delta"))  # sampled as mean and concentration
    default_priors = {name: Prior("HalfNormal", sigma=50.0) for name in bgbb.PARAMETERS}
    data_columns = ("frequency", "recency", "periods")
    alive_stand_ins = {"recency": "periods"}  # given alive at periods + 1 the future depends on (x, n)
    given_columns = ("periods",)  # a population simulation keeps each customer's number of opportunities
    weight_column = "weights"
    validator = staticmethod(opportunity_frame)
    formulas = bgbb
    display_name = "BG/BB"

    def simulate_population(self, sample: np.ndarray, data: Any | None = None,
                            random_seed: int | np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Histories of customers like ``data``'s, one per row: the rows must be customers (no ``weights``).

        See :meth:`bayesclv.models.pooled.PooledModel.simulate_population`.

        Raises
        ------
        ValueError
            ``data`` is a compressed table whose rows stand for several
            customers: a simulated history per row would not be a customer base
            like the data (expand it: ``df.loc[df.index.repeat(df["weights"])]``).
        """
        df = self.prediction_data(data)
        if self.weight_column in df.columns and (df[self.weight_column] != 1).any():
            raise ValueError("simulate_population draws one history per row, but the rows of this table stand for "
                             f"several customers ({self.weight_column!r}): expand it to one row per customer, "
                             f"e.g. df.loc[df.index.repeat(df[{self.weight_column!r}])].drop(columns="
                             f"{self.weight_column!r})")
        return super().simulate_population(sample, df, random_seed)
