"""The joint spend models: spend statistics of the RFM summary, the marginal likelihood against a 3-D
integration of the full latent model over the raw log values, the spend given the latents against
quadrature, the purchase part at zero spend correlations against the plain hierarchical kernel, and
parameter recovery (a non-zero spend-frequency correlation) on simulated customers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import bayesclv as bc
from bayesclv.errors import ArgumentError, DataValidationError
from bayesclv.formulas import _marginal as kernel
from bayesclv.formulas import _marginal_rule as rule
from bayesclv.formulas import individual_paretonbd
from bayesclv.formulas.joint_spend import conditional_population, spend_loglik, spend_tilt
from bayesclv.models.joint_spend import JointSpendGraph, block_frames, joint_rows

try:  # run as a package (pytest's rootdir import) or from the tests folder
    from .reference_hierarchical import minimum_and_hessian
except ImportError:
    from reference_hierarchical import minimum_and_hessian

SIGMA = np.array([0.8, 0.7, 0.5])
CORRELATION = np.array([0.2, 0.5, -0.3])  # purchase-dropout, purchase-spend, dropout-spend
B = np.array([[-1.0, -3.0, 3.5]])
SPEND_SD = 0.4


def _covariance(sigma=SIGMA, correlation=CORRELATION):
    R = np.eye(3)
    R[0, 1] = R[1, 0] = correlation[0]
    R[0, 2] = R[2, 0] = correlation[1]
    R[1, 2] = R[2, 1] = correlation[2]
    return R * np.outer(sigma, sigma)


def test_rfm_summary_log_spend_statistics():
    tx = pd.DataFrame({"customer_id": [1, 1, 1, 1, 2, 2, 3],
                       "date": pd.to_datetime(["1997-01-01", "1997-01-08", "1997-01-08", "1997-02-01",
                                               "1997-01-03", "1997-01-20", "1997-01-05"]),
                       "value": [5.0, 10.0, 2.0, 30.0, 7.0, 20.0, 9.0]})
    rfm = bc.rfm_summary(tx, value="value", log_spend=True).set_index("customer_id")
    days = np.log([12.0, 30.0])  # customer 1's repeat days: 10 + 2 merged, then 30
    assert rfm.loc[1, "log_spend_mean"] == pytest.approx(days.mean(), abs=1e-12)
    assert rfm.loc[1, "log_spend_ss"] == pytest.approx(((days - days.mean()) ** 2).sum(), abs=1e-12)
    assert rfm.loc[2, "log_spend_mean"] == pytest.approx(np.log(20.0)) and rfm.loc[2, "log_spend_ss"] == 0.0
    assert rfm.loc[3, "log_spend_mean"] == 0.0 and rfm.loc[3, "frequency"] == 0.0
    with pytest.raises(DataValidationError) as err:  # a free repeat purchase has no log value
        bc.rfm_summary(tx.assign(value=[5.0, 10.0, 2.0, 0.0, 7.0, 20.0, 9.0]), value="value", log_spend=True)
    assert err.value.column == "value" and err.value.rows == [1]
    with pytest.raises(ArgumentError):
        bc.rfm_summary(tx, log_spend=True)


def _paretonbd_loglik(x, t_x, T, a, c):
    """log L(lam, mu | x, t_x, T) of the individual Pareto/NBD (Schmittlein et al. 1987), written out here."""
    lam, mu = np.exp(a), np.exp(c)
    s = lam + mu
    return x * a - np.log(s) + np.logaddexp(c - s * t_x, a - s * T)


def _reference_log_integral(x, t_x, T, logs, mean=B[0], cov=None, spend_sd=SPEND_SD, log_g=None):
    """``log int g(v) L(theta) prod_j N(logs_j; m, sw^2) N(v = (theta, m); mean, cov) dv`` by a 40^3-node
    Gauss-Hermite rule centred at the integrand's mode and scaled by its curvature (raw log values)."""
    cov = _covariance() if cov is None else cov

    def log_f(v):
        v = np.atleast_2d(v)
        out = _paretonbd_loglik(x, t_x, T, v[:, 0], v[:, 1]) + stats.multivariate_normal(mean, cov).logpdf(v)
        return out + stats.norm.logpdf(np.asarray(logs)[None, :], v[:, 2:3], spend_sd).sum(axis=1)

    mode, hess = minimum_and_hessian(lambda v: -log_f(v)[0], mean)
    L = np.linalg.cholesky(np.linalg.inv(hess))
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    u = np.stack(np.meshgrid(nodes, nodes, nodes, indexing="ij"), -1).reshape(-1, 3)
    log_w = np.log(np.einsum("i,j,k->ijk", weights, weights, weights).ravel()) + 0.5 * (u * u).sum(axis=1)
    v = mode + u @ L.T
    values = log_f(v) + log_w + (0.0 if log_g is None else log_g(v))
    return special.logsumexp(values) + np.log(np.linalg.det(L))


def _reference_loglik(x, t_x, T, logs):
    return _reference_log_integral(x, t_x, T, logs)


@pytest.mark.parametrize("row", [(0.0, 0.0, 30.0, []), (1.0, 12.0, 40.0, [3.2]),
                                 (4.0, 20.0, 35.0, [3.0, 3.9, 3.4, 2.8]),
                                 (12.0, 45.0, 50.0, list(np.linspace(2.5, 4.4, 12)))])
def test_marginal_likelihood_equals_3d_integration_of_the_latent_model(row):
    x, t_x, T, logs = row
    logs = np.asarray(logs)
    mean_log = logs.mean() if x else 0.0
    ss = ((logs - mean_log) ** 2).sum() if x else 0.0
    df = pd.DataFrame({"customer_id": [0], "frequency": [x], "recency": [t_x], "T": [T],
                       "log_spend_mean": [mean_log], "log_spend_ss": [ss]})
    model = bc.JointSpendParetoNBDModel()
    rows, bounds, counts, _ = joint_rows(model, df)
    populations = [conditional_population(B, SIGMA, CORRELATION, np.asarray(SPEND_SD), float(n)) for n in counts]
    powers, log_weights = rule.product_rule(24)
    centre, chol, terms, correction = block_frames(rule.PARETONBD, rows, bounds, populations, powers, log_weights)
    C = np.stack([p[0] for p in populations])
    sd, rho = np.stack([p[1] for p in populations]), np.array([float(p[2]) for p in populations])
    value = kernel.grouped_marginal_loglik(C, sd, rho, bounds, rows.X, rows.weight, centre, chol, terms,
                                           terms.max(axis=1), powers, correction)[0]
    if x:
        value += spend_loglik(mean_log, ss, x, B[0, 2], SIGMA[2], SPEND_SD)
    assert value == pytest.approx(_reference_loglik(x, t_x, T, logs), abs=1e-6)


def test_spend_given_the_latents_equals_quadrature_over_the_log_mean():
    theta, n, mean_log = np.array([-0.7, -2.6]), 3.0, 3.1
    cov = _covariance()
    # m | theta from the joint normal, times the likelihood of the n log values' mean, by quadrature over m
    a = np.linalg.solve(cov[:2, :2], cov[:2, 2])
    prior_mean, prior_var = B[0, 2] + a @ (theta - B[0, :2]), cov[2, 2] - a @ cov[:2, 2]

    def density(m):
        return stats.norm.pdf(m, prior_mean, np.sqrt(prior_var)) * stats.norm.pdf(mean_log, m, SPEND_SD / np.sqrt(n))

    norm = integrate.quad(density, -10, 15, epsabs=0, epsrel=1e-12)[0]
    expected = integrate.quad(lambda m: np.exp(m + SPEND_SD**2 / 2) * density(m), -10, 15, epsabs=0,
                              epsrel=1e-12)[0] / norm
    c = spend_tilt(B, SIGMA, CORRELATION, np.asarray(SPEND_SD), n)
    assert np.exp(c @ np.array([1.0, mean_log, *theta])) == pytest.approx(expected, rel=1e-10)


def test_without_spend_correlation_the_purchase_part_is_the_hierarchical_likelihood():
    rng = np.random.default_rng(4)
    n = 40
    x = rng.integers(0, 6, n).astype(float)
    T = rng.uniform(30, 50, n)
    t_x = np.where(x > 0, T * rng.uniform(0.2, 1.0, n), 0.0)
    mean_log = np.where(x > 0, rng.normal(3.4, 0.5, n), 0.0)
    df = pd.DataFrame({"customer_id": np.arange(n), "frequency": x, "recency": t_x, "T": T,
                       "log_spend_mean": mean_log, "log_spend_ss": np.zeros(n)})
    rows, bounds, counts, _ = joint_rows(bc.JointSpendBetaGeoModel(), df)
    correlation = np.array([0.3, 0.0, 0.0])
    populations = [conditional_population(B, SIGMA, correlation, np.asarray(SPEND_SD), float(k)) for k in counts]
    powers, log_weights = rule.product_rule(12)
    centre, chol, terms, correction = block_frames(rule.BGNBD, rows, bounds, populations, powers, log_weights,
                                                   corrected=True)
    C = np.stack([p[0] for p in populations])
    sd, rho = np.stack([p[1] for p in populations]), np.array([float(p[2]) for p in populations])
    joint = kernel.grouped_marginal_loglik(C, sd, rho, bounds, rows.X, rows.weight, centre, chol, terms,
                                           terms.max(axis=1), powers, correction)[0]
    # the plain hierarchical BG/NBD's kernel on the same rows, frames and nodes: (log lam, logit p) ~ N(B, Sigma)
    plain = kernel.marginal_loglik(B[:, :2], np.zeros((1, 2)), SIGMA[:2], 0.3, rows.X[:, :1], rows.group,
                                   rows.weight, centre, chol, terms, terms.max(axis=1), powers, correction)[0]
    assert np.allclose(C[:, -1], 0.0) and np.allclose(sd, SIGMA[:2]) and np.allclose(rho, 0.3)
    assert joint == pytest.approx(plain, abs=1e-9)


def _simulate(n: int, seed: int, mean: np.ndarray = B[0]) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = mean + rng.multivariate_normal(np.zeros(3), _covariance(), size=n)
    T = np.round(rng.uniform(30, 52, size=n))
    sim = individual_paretonbd.simulate_histories(T, np.exp(latent[:, 0]), np.exp(latent[:, 1]), rng)
    x = np.asarray(sim["frequency"], dtype=float)
    mean_log, ss = np.zeros(n), np.zeros(n)
    for i in np.flatnonzero(x):
        logs = rng.normal(latent[i, 2], SPEND_SD, size=int(x[i]))
        mean_log[i], ss[i] = logs.mean(), ((logs - logs.mean()) ** 2).sum()
    df = pd.DataFrame({"customer_id": np.arange(n), "frequency": x, "recency": np.asarray(sim["recency"], float),
                       "T": T, "log_spend_mean": mean_log, "log_spend_ss": ss})
    df.attrs["time_unit"] = "W"
    return df, latent


@pytest.fixture(scope="module")
def fitted():
    # 1,000 customers and 2 x 200 draws: every recovery bound below still holds with room to spare
    # (the margins are in benchmarks/results/test_suite_time.md)
    df, latent = _simulate(1000, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)  # short chains
        model = bc.JointSpendParetoNBDModel().fit(df, draws=200, tune=200, chains=2, random_seed=1,
                                                  progressbar=False)
    return model, df, latent


def test_joint_fit_recovers_the_spend_frequency_correlation(fitted):
    model, _, _ = fitted
    post = model.posterior
    assert model.diagnostics["latents"] == "integrated"
    for name, truth in (("correlation", CORRELATION), ("sigma", SIGMA), ("spend_sd", SPEND_SD),
                        ("coefficients", B)):
        mean, sd = post[name].mean(("chain", "draw")).values, post[name].std(("chain", "draw")).values
        assert np.all(np.abs(mean - truth) < 3.5 * sd + 0.02), (name, mean, sd)
    spend_corr = post["correlation"].sel(pair="purchase-spend").values
    assert np.quantile(spend_corr, 0.05) > 0.2  # clearly non-zero, as simulated (0.5)
    table = model.summary()  # one row per correlation pair
    row = [label for label in table.index if "purchase-spend" in str(label)]
    assert len(row) == 1 and table.loc[row[0], "mean"] == pytest.approx(spend_corr.mean(), abs=1e-3)


def test_joint_predictions_keep_purchases_and_spend_paired(fitted):
    model, df, latent = fitted
    spend = model.expected_spend()
    revenue = model.expected_revenue(26.0)
    purchases = model.expected_purchases(26.0)
    assert spend.dims == revenue.dims == ("chain", "draw", "customer_id")
    together = model.customer_predictions(26.0)  # one pass of the node weights: each as its own method gives it
    np.testing.assert_allclose(together["expected_purchases"].values, purchases.values, rtol=1e-12)
    np.testing.assert_allclose(together["probability_alive"].values, model.probability_alive().values, rtol=1e-12)
    # spend tracks each customer's own mean log value: correlated with the simulated truth
    truth = np.exp(latent[:, 2] + SPEND_SD**2 / 2)
    buyers = df["frequency"].to_numpy() >= 3
    assert np.corrcoef(np.log(spend.mean(("chain", "draw")).values[buyers]), np.log(truth[buyers]))[0, 1] > 0.9
    # revenue is E[N S | data] over the joint posterior of (theta, m), per draw: against a 3-D quadrature of
    # the latent model at one posterior draw, for customers with 0, 2 and many repeat purchases
    joint = revenue.isel(chain=0, draw=0).values
    post = model.posterior.isel(chain=0, draw=0)
    mean = post["coefficients"].values[0]
    cov = _covariance(post["sigma"].values, post["correlation"].values)
    sw = float(post["spend_sd"])
    frequency = df["frequency"].to_numpy()
    for i in (np.flatnonzero(frequency == 0)[0], np.flatnonzero(frequency == 2)[0], int(np.argmax(frequency))):
        row = df.iloc[i]
        n = int(row["frequency"])
        # log values with the customer's mean and within sum of squares (the likelihood depends on no more)
        base = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(n)
        spread = np.sqrt(row["log_spend_ss"] / (base**2).sum()) if n > 1 else 0.0
        logs = row["log_spend_mean"] + spread * base

        def log_revenue(v, row=row):
            lam, mu = np.exp(v[:, 0]), np.exp(v[:, 1])
            purchases = individual_paretonbd.expected_purchases(26.0, row["frequency"], row["recency"], row["T"],
                                                                lam, mu)
            return np.log(np.maximum(purchases, 1e-300)) + v[:, 2] + sw**2 / 2

        args = (row["frequency"], row["recency"], row["T"], logs, mean, cov, sw)
        expected = np.exp(_reference_log_integral(*args, log_g=log_revenue) - _reference_log_integral(*args))
        assert joint[i] == pytest.approx(expected, rel=2e-3), (i, n)
    clv = model.customer_lifetime_value(52, 0.002)
    assert np.all(clv.values > 0) and clv.attrs["horizon"] == 52
    mean_spend = model.population_mean_spend()
    assert mean_spend.dims == ("chain", "draw")
    assert float(mean_spend.mean()) == pytest.approx(np.exp(B[0, 2] + SIGMA[2] ** 2 / 2 + SPEND_SD**2 / 2), rel=0.1)


def test_joint_loo_terms_integrate_rates_and_spend_and_are_compared_only_with_spend_models(fitted):
    """A customer's term is log p(purchases, spend values | population draw): against the 3-D integration of
    the latent model for customers with 0, 2 and many repeat purchases, and summed over customers the fit's
    kernel total plus spend term at that draw (its frames at the fit's reference) to 1e-8. The spend values
    are observations the purchase-only models lack, so compare gives them no common LOO."""
    import json

    from bayesclv.comparison import observation_difference
    from bayesclv.models.marginal import REFERENCE_ATTR

    model, df, _ = fitted
    loglik = model.log_likelihood()
    post = model.posterior.isel(chain=1, draw=57)
    mean, sw = post["coefficients"].values[0], float(post["spend_sd"])
    cov = _covariance(post["sigma"].values, post["correlation"].values)
    frequency = df["frequency"].to_numpy()
    for i in (np.flatnonzero(frequency == 0)[0], np.flatnonzero(frequency == 2)[0], int(np.argmax(frequency))):
        row = df.iloc[i]
        n = int(row["frequency"])
        base = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(n)
        logs = row["log_spend_mean"] + (np.sqrt(row["log_spend_ss"] / (base**2).sum()) if n > 1 else 0.0) * base
        expected = _reference_log_integral(row["frequency"], row["recency"], row["T"], logs, mean, cov, sw)
        assert loglik.values[1, 57, i] == pytest.approx(expected, abs=1e-5), (i, n)
    reference = json.loads(model.posterior.attrs[REFERENCE_ATTR])
    rows, bounds, counts, ss = joint_rows(model, model.data)
    at = [np.asarray(reference[k]) for k in ("coefficients", "sigma", "correlation", "spend_sd")]
    powers, log_weights = rule.product_rule(reference["nodes"])
    centre, chol, terms, correction = block_frames(rule.PARETONBD, rows, bounds,
                                                   [conditional_population(*at, float(n)) for n in counts],
                                                   powers, log_weights, corrected=True)
    coefficients, sigma, correlation = (post[k].values for k in ("coefficients", "sigma", "correlation"))
    populations = [conditional_population(coefficients, sigma, correlation, np.asarray(sw), float(n)) for n in counts]
    total = kernel.grouped_marginal_loglik(np.stack([p[0] for p in populations]),
                                           np.stack([p[1] for p in populations]),
                                           np.array([float(p[2]) for p in populations]), bounds, rows.X,
                                           rows.weight, centre, chol, terms, terms.max(axis=1), powers, correction)[0]
    spending = rows.history[:, 0] > 0
    total += rows.weight[spending] @ spend_loglik(rows.X[spending, -1], ss[spending], rows.history[spending, 0],
                                                  coefficients[0, 2], sigma[2], sw)
    assert loglik.values[1, 57].sum() == pytest.approx(total, abs=1e-8)
    assert "log_spend_mean" in observation_difference(model, bc.ParetoNBDModel())  # the columns differ already
    assert observation_difference(model, model) is None


def test_joint_model_refuses_data_without_spend_statistics_and_other_methods():
    df, _ = _simulate(50, 1)
    with pytest.raises(DataValidationError) as err:
        bc.JointSpendParetoNBDModel().fit(df.drop(columns="log_spend_ss"), progressbar=False)
    assert err.value.column == "log_spend_ss"
    bad = df.assign(log_spend_ss=np.where(df["frequency"] == 1, 0.5, df["log_spend_ss"]))
    with pytest.raises(DataValidationError):
        bc.JointSpendParetoNBDModel().fit(bad, progressbar=False)
    with pytest.raises(ValueError, match="NUTS"):
        bc.JointSpendBetaGeoModel().fit(df, method="advi", progressbar=False)


def test_general_clv_refuses_one_joint_model_as_both_models():
    model = bc.JointSpendParetoNBDModel()  # refused before any fit is needed: the pairing itself is wrong
    with pytest.raises(ArgumentError, match="own model.customer_lifetime_value") as err:
        bc.customer_lifetime_value(model, model, horizon=12, time_unit="M", discount_rate=0.01)
    assert err.value.argument == "spend_model"


def test_joint_model_saved_and_loaded_predicts_the_same(fitted, tmp_path):
    model, df, _ = fitted
    model.save(tmp_path / "joint.nc")
    loaded = bc.load(tmp_path / "joint.nc")
    assert type(loaded) is bc.JointSpendParetoNBDModel and loaded.priors == model.priors
    head = df.iloc[:40]
    pairs = [(m.expected_spend(head), m.expected_revenue(26.0, data=head), m.expected_purchases(26.0, data=head),
              m.customer_lifetime_value(52, 0.002, data=head)) for m in (model, loaded)]
    for before, after in zip(*pairs, strict=True):
        np.testing.assert_allclose(after.values, before.values, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- groups
SHIFTS = np.array([[-0.5, 0.3, -0.4], [0.0, 0.0, 0.0], [0.5, -0.3, 0.4]])  # each segment's intercept shift


def _grouped(sizes: list[int], seed: int) -> pd.DataFrame:
    """Customers of segments ``s0, s1, ...`` whose three intercepts are shifted by ``SHIFTS``."""
    frames = []
    for g, n in enumerate(sizes):
        df, _ = _simulate(n, seed + g, mean=B[0] + SHIFTS[g])
        frames.append(df.assign(segment=f"s{g}"))
    df = pd.concat(frames, ignore_index=True).assign(customer_id=lambda d: np.arange(len(d)))
    df.attrs["time_unit"] = "W"
    return df


def test_one_group_has_the_ungrouped_density_up_to_the_offsets_prior():
    df = _grouped([120], 8)
    offset = np.array([0.3, -0.2, 0.25])
    sigma, correlation, spend_sd = SIGMA, CORRELATION, SPEND_SD
    values = []
    for group, coefficients in ((None, B + offset), ("segment", np.vstack([B, offset]))):
        model = bc.JointSpendParetoNBDModel(group=group)
        graph = JointSpendGraph(model, model._prepare(df), nodes=10)
        graph.adapt(coefficients, sigma, correlation, spend_sd)
        x = graph.flat_point(coefficients, sigma, correlation, spend_sd)
        values.append(float(graph.logp_grad(x)[0]))
        assert np.allclose(graph.population(x)[0], coefficients)
    # one group of 120 customers: group_sd set to 0.05 by flat_point (log-transformed), each offset centred
    # (density Normal(0, group_sd)) or not (density of offset / group_sd) as the rule chose; the ungrouped
    # intercept is the grouped one plus the offset, under the same Normal(0, 5) prior
    group_sd = np.full(3, 0.05)
    centred = graph.group_centred[0]
    prior = (stats.halfnorm.logpdf(group_sd).sum() + np.log(group_sd).sum()
             + np.where(centred, stats.norm.logpdf(offset, 0.0, group_sd), stats.norm.logpdf(offset / group_sd)).sum()
             + stats.norm.logpdf(B[0], 0.0, 5.0).sum() - stats.norm.logpdf(B[0] + offset, 0.0, 5.0).sum())
    assert values[1] - values[0] == pytest.approx(prior, abs=1e-8)


def test_grouped_rows_marginal_likelihood_equals_3d_integration_with_the_groups_intercepts():
    offsets = np.array([[0.4, -0.3, 0.5], [-0.2, 0.1, -0.3]])
    df = pd.DataFrame({"customer_id": [0, 1, 2], "frequency": [3.0, 3.0, 0.0], "recency": [20.0, 20.0, 0.0],
                       "T": [35.0, 35.0, 30.0], "log_spend_mean": [3.4, 3.4, 0.0], "log_spend_ss": [0.3, 0.3, 0.0],
                       "segment": ["a", "b", "b"]})
    model = bc.JointSpendParetoNBDModel(group="segment")
    rows, bounds, counts, ss = joint_rows(model, df)
    coefficients = np.vstack([B, offsets])
    populations = [conditional_population(coefficients, SIGMA, CORRELATION, np.asarray(SPEND_SD), float(n))
                   for n in counts]
    powers, log_weights = rule.product_rule(24)
    centre, chol, terms, correction = block_frames(rule.PARETONBD, rows, bounds, populations, powers, log_weights)
    for i in range(len(rows.weight)):  # each row on its own, against the latent model at its group's intercepts
        g = int(np.flatnonzero(rows.X[i, 1:3])[0])
        C, sd, rho = populations[int(np.searchsorted(bounds, i, side="right")) - 1]
        value = kernel.grouped_marginal_loglik(C[None], sd[None], np.array([rho]), np.array([0, 1]),
                                               rows.X[i:i + 1], np.ones(1), centre[i:i + 1], chol[i:i + 1],
                                               terms[i:i + 1], terms[i:i + 1].max(axis=1), powers,
                                               correction[i:i + 1])[0]
        x, t_x, T = rows.history[i]
        logs = []
        if x:
            value += spend_loglik(rows.X[i, -1], ss[i], x, B[0, 2] + offsets[g, 2], SIGMA[2], SPEND_SD)
            # three log values with the row's mean and within sum of squares
            logs = rows.X[i, -1] + np.sqrt(ss[i] / 2.0) * np.array([-1.0, 0.0, 1.0])
        reference = _reference_log_integral(x, t_x, T, np.asarray(logs), mean=B[0] + offsets[g])
        assert value == pytest.approx(reference, abs=1e-6), (i, g)


@pytest.fixture(scope="module")
def fitted_groups():
    # three segments of 300 (centred offsets), 2 x 200 draws: the margins are in the test below
    df = _grouped([300, 300, 300], 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bc.errors.ConvergenceWarning)  # short chains
        model = bc.JointSpendParetoNBDModel(group="segment").fit(df, draws=200, tune=200, chains=2, random_seed=1,
                                                                 progressbar=False)
    return model, df


def test_grouped_joint_fit_recovers_each_segments_purchase_and_spend_intercepts(fitted_groups):
    model, _ = fitted_groups
    post = model.posterior
    intercepts = (post["coefficients"].sel(covariate="intercept") + post["group_offset"]).transpose(
        "chain", "draw", "group", "process")
    mean, sd = intercepts.mean(("chain", "draw")).values, intercepts.std(("chain", "draw")).values
    truth = B[0] + SHIFTS
    assert np.all(np.abs(mean - truth) < 3.5 * sd + 0.05), (mean, truth, sd)
    # the segments' purchase and spend intercepts rise by 0.5 and 0.4 from s0 to s2: told apart, not pooled
    assert np.all(np.diff(mean[:, 0]) > 0.2) and np.all(np.diff(mean[:, 2]) > 0.2), mean
    assert post["correlation"].sel(pair="purchase-spend").mean() > 0.3  # simulated 0.5


def test_grouped_joint_model_predicts_for_known_groups_and_names_an_unknown_one(fitted_groups, tmp_path):
    model, df = fitted_groups
    spend = model.population_mean_spend(group="s2").values.ravel()
    post = model.posterior
    by_hand = np.exp(post["coefficients"].sel(covariate="intercept", process="spend")
                     + post["group_offset"].sel(group="s2", process="spend")
                     + post["sigma"].sel(process="spend") ** 2 / 2 + post["spend_sd"] ** 2 / 2).values.ravel()
    np.testing.assert_allclose(spend, by_hand, rtol=1e-12)  # paired with the posterior draw by draw
    truth = np.exp(B[0, 2] + SHIFTS[2, 2] + SIGMA[2] ** 2 / 2 + SPEND_SD**2 / 2)
    assert spend.mean() == pytest.approx(truth, rel=0.15)
    assert model.population_mean_spend(group="s0").mean() < model.population_mean_spend().mean() < spend.mean()
    with pytest.raises(DataValidationError, match="'zz'") as err:
        model.population_mean_spend(group="zz")
    assert err.value.column == "segment"
    # new customers of a fitted segment: histories from that segment's population, per posterior sample
    new = df.iloc[:200].assign(customer_id=np.arange(10**6, 10**6 + 200))
    high, low = (model.simulate_population(np.arange(20), new.assign(segment=s), random_seed=2)["frequency"].mean()
                 for s in ("s2", "s0"))
    assert high > 1.5 * low  # purchase intercepts 1.0 apart
    with pytest.raises(DataValidationError) as err:
        model.simulate_population(np.arange(2), new.assign(segment="zz"), random_seed=2)
    assert err.value.column == "segment" and err.value.rows[0] == 10**6
    # the fitted customers' predictions keep their segment and survive save/load
    model.save(tmp_path / "grouped.nc")
    loaded = bc.load(tmp_path / "grouped.nc")
    assert loaded.group == "segment"
    head = df.iloc[::90]
    for before, after in ((model.customer_lifetime_value(52, 0.002, data=head),
                           loaded.customer_lifetime_value(52, 0.002, data=head)),
                          (model.expected_spend(head), loaded.expected_spend(head))):
        np.testing.assert_allclose(after.values, before.values, rtol=1e-12)
    with pytest.raises(DataValidationError) as err:  # a fitted customer under another segment
        model.expected_spend(head.assign(segment="s1"))
    assert err.value.column == "segment"
