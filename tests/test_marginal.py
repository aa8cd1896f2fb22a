"""Integrating each customer's latent rates out of the hierarchical models (bayesclv.formulas._marginal, _marginal_rule).

References are independent of the rule under test: the latent log-likelihood against the individual
formulas (themselves checked against SciPy in tests/test_individual_formulas.py), the kernel's gradient
against central finite differences, each row's marginal likelihood and its node expectations against a fine
Gauss-Legendre product rule in the row's frame (vectorised, its own error bounded by a finer one).
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special

from bayesclv.formulas import NP, individual_bgnbd, individual_paretonbd
from bayesclv.formulas import _marginal as mg
from bayesclv.formulas import _marginal_rule as rule
from bayesclv.formulas._lane_math import lane_tanh
from bayesclv.formulas._marginal_lanes import ROW_LANES, as_lanes

FAMILIES = {rule.PARETONBD: individual_paretonbd, rule.BGNBD: individual_bgnbd}
# (x, t_x, T) in weeks: no repeat purchase, one, many, the extremes (x = 500, T = 1000 weeks)
HISTORIES = np.array([(0, 0, 0.5), (0, 0, 39), (0, 0, 1000), (1, 0.5, 1000), (1, 1000, 1000), (1, 20, 39),
                      (3, 2, 2.5), (50, 30, 39), (500, 1, 1000), (500, 999.99, 1000)], dtype=float)
SIGMA, RHO = np.array([1.1, 1.7]), 0.3
MEAN = np.array([-2.5, -3.5])


def _natural(family, a, c):
    return (np.exp(a), np.exp(c)) if family == rule.PARETONBD else (np.exp(a), special.expit(c))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_latent_loglik_equals_the_individual_formula_and_its_derivatives(family):
    for x, t_x, T in HISTORIES:
        for a in (-9.0, -2.0, 0.0, 4.0):
            for c in (-9.0, -3.0, 0.0, 3.0):
                f, *derivs = rule.latent_loglik(family, x, t_x, T, a, c, True)
                expected = FAMILIES[family].loglik(x, t_x, T, *_natural(family, a, c), xp=NP)
                assert f == pytest.approx(expected, rel=1e-12, abs=1e-12)
                h = 1e-5
                ga = (rule.latent_loglik(family, x, t_x, T, a + h, c, True)[0]
                      - rule.latent_loglik(family, x, t_x, T, a - h, c, True)[0]) / (2 * h)
                gc = (rule.latent_loglik(family, x, t_x, T, a, c + h, True)[0]
                      - rule.latent_loglik(family, x, t_x, T, a, c - h, True)[0]) / (2 * h)
                haa = (rule.latent_loglik(family, x, t_x, T, a + h, c, True)[1]
                       - rule.latent_loglik(family, x, t_x, T, a - h, c, True)[1]) / (2 * h)
                hcc = (rule.latent_loglik(family, x, t_x, T, a, c + h, True)[2]
                       - rule.latent_loglik(family, x, t_x, T, a, c - h, True)[2]) / (2 * h)
                hac = (rule.latent_loglik(family, x, t_x, T, a, c + h, True)[1]
                       - rule.latent_loglik(family, x, t_x, T, a, c - h, True)[1]) / (2 * h)
                scale = 1.0 + np.max(np.abs(derivs))
                assert np.allclose(derivs, [ga, gc, haa, hac, hcc], atol=1e-6 * scale)


def _legendre_marginal(family, x, t_x, T, centre, chol, nodes):
    """log of int L(theta) N(theta; MEAN, Sigma) dtheta by an ``nodes x nodes`` Gauss-Legendre product rule on
    [-14, 14]^2 of the row's frame, the likelihood from the individual formula (vectorised NumPy)."""
    cov = np.array([[SIGMA[0] ** 2, RHO * SIGMA[0] * SIGMA[1]], [RHO * SIGMA[0] * SIGMA[1], SIGMA[1] ** 2]])
    norm = -np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(cov)) + np.log(chol[0] * chol[2])
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = 14.0 * u, 14.0 * w
    a = np.broadcast_to(centre[0] + chol[0] * u[:, None], (nodes, nodes))
    c = centre[1] + chol[1] * u[:, None] + chol[2] * u[None, :]
    d = np.stack([a - MEAN[0], c - MEAN[1]], axis=-1)
    quad = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
    log_f = FAMILIES[family].loglik(x, t_x, T, *_natural(family, a, c), xp=NP) - 0.5 * quad + np.log(np.outer(w, w))
    peak = log_f.max()
    return np.log(np.exp(log_f - peak).sum()) + peak + norm


def _rule_tables(family, histories, nodes, mean=MEAN, sigma=SIGMA, rho=RHO):
    x, t_x, T = histories.T
    means = np.broadcast_to(mean, (len(x), 2))
    centre, chol = rule.adapt_rows(family, x, t_x, T, means, sigma, rho)
    powers, log_weights = rule.product_rule(nodes)
    terms = rule.node_log_terms(family, x, t_x, T, centre, chol, powers, log_weights)
    return centre, chol, powers, terms


def _row_values(family, histories, nodes, correction=None, coefficients=None, sigma=SIGMA, rho=RHO):
    """Each row's log-likelihood by the kernel (one row at a time)."""
    centre, chol, powers, terms = _rule_tables(family, histories, nodes)
    coefficients = MEAN[None, :] if coefficients is None else coefficients
    out = []
    for i in range(len(histories)):
        corr = np.zeros((1, 0)) if correction is None else correction[i:i + 1]
        out.append(mg.marginal_loglik(coefficients, np.zeros((1, 2)), sigma, rho, np.ones((1, 1)),
                                      np.zeros(1, dtype=np.int64), np.ones(1), centre[i:i + 1], chol[i:i + 1],
                                      terms[i:i + 1], terms[i:i + 1].max(axis=1), powers, corr)[0])
    return np.array(out), centre, chol


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_rows_marginal_likelihood_matches_independent_quadrature(family):
    values, centre, chol = _row_values(family, HISTORIES, nodes=20)
    reference, finer = ([_legendre_marginal(family, *h, centre[i], chol[i], m) for i, h in enumerate(HISTORIES)]
                        for m in (128, 160))
    assert reference == pytest.approx(finer, abs=1e-9)  # the reference's own error, far under the tolerance
    assert np.all(np.isfinite(values))
    assert values == pytest.approx(reference, abs=1e-5)
    coarse, _, _ = _row_values(family, HISTORIES, nodes=8)
    assert coarse == pytest.approx(reference, abs=5e-3)


def test_resolved_range_grows_with_the_nodes_and_the_choice_covers_the_range():
    ranges = [rule.resolved_range(n) for n in rule.NODE_LADDER]
    assert all(a[0] > b[0] and a[1] < b[1] for a, b in zip(ranges, ranges[1:]))
    n = rule.nodes_for_range(0.5, 2.5, minimum=8)
    low, high = rule.resolved_range(n)
    assert low <= 0.5 and high >= 2.5
    assert rule.nodes_for_range(0.9, 1.1, minimum=8) == 8
    assert rule.nodes_for_range(1e-3, 1e3, minimum=8) == rule.NODE_LADDER[-1]


def test_covariance_range_is_the_generalised_eigenvalues():
    sigma_ref = np.array([[1.3, 0.4], [0.4, 2.0]])
    sigma, rho = np.array([0.9, 1.7]), -0.3
    cov = np.array([[0.81, rho * 0.9 * 1.7], [rho * 0.9 * 1.7, 1.7**2]])
    expected = np.sort(np.linalg.eigvals(np.linalg.solve(cov, sigma_ref)).real)
    assert np.allclose(rule.covariance_range(sigma, rho, sigma_ref, xp=np), expected)
    low, high = pt.dscalar(), pt.dscalar()
    penalty = pytensor.function([low, high], rule.range_penalty(low, high, np.array([0.5, 2.0])))
    assert penalty(0.6, 1.9) == 0.0
    assert penalty(0.25, 1.0) == pytest.approx(-0.5 * 200.0 * np.log(2.0) ** 2)


def test_the_range_penalty_has_a_finite_gradient_where_the_eigenvalues_meet():
    """At ``Sigma = c Sigma_ref`` (the reference point itself at c = 1) both eigenvalues are 1 / c and the
    discriminant is 0 up to rounding: inside the walls the penalty is flat (gradient exactly 0); beyond them,
    scaling both sds by ``t`` moves both eigenvalues as ``1 / (c t^2)``, so the gradient along ``sigma`` is
    the derivative of ``-100 (log(1 / (c t^2)) - log 2)^2`` at t = 1. The two first cases gave NaN with the
    discriminant floored at 0."""
    sigma, rho, ref = pt.dvector(), pt.dscalar(), pt.dmatrix()
    penalty = rule.range_penalty(*rule.covariance_range(sigma, rho, ref), np.array([0.5, 2.0]))
    f = pytensor.function([sigma, rho, ref], [penalty, *pytensor.grad(penalty, [sigma, rho])])
    for sd, r in (((1.0, 1.0), 0.0), ((0.8096, 0.7151), 0.2513), ((0.8, 0.7), 0.3)):
        sd = np.array(sd)
        off = r * sd[0] * sd[1]
        value, d_sigma, d_rho = f(sd, r, np.array([[sd[0] ** 2, off], [off, sd[1] ** 2]]))
        assert value == 0.0 and np.all(d_sigma == 0.0) and d_rho == 0.0, (sd, r, d_sigma, d_rho)
    value, d_sigma, d_rho = f(np.array([0.5, 0.5]), 0.0, np.eye(2))  # c = 1/4: both eigenvalues 4
    assert value == pytest.approx(-100.0 * np.log(2.0) ** 2)
    assert d_sigma @ np.array([0.5, 0.5]) == pytest.approx(400.0 * np.log(2.0)) and np.isfinite(d_rho)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_correction_removes_the_rules_error_away_from_the_reference(family):
    """Moving the population parameters from the reference, the corrected 8 x 8 rule follows a 36 x 36
    rule re-centred at the new parameters far more closely than the uncorrected one."""
    x, t_x, T = HISTORIES.T
    centre, chol, powers, terms = _rule_tables(family, HISTORIES, 8)
    tilts = rule.row_tilts(np.broadcast_to(MEAN, (len(x), 2)), SIGMA, RHO, centre, chol)
    correction = rule.rule_corrections(family, x, t_x, T, centre, chol, terms, powers, tilts)
    moved = dict(coefficients=(MEAN + [0.08, -0.1])[None, :], sigma=SIGMA * [1.05, 0.95], rho=0.25)
    plain, _, _ = _row_values(family, HISTORIES, 8, **moved)
    corrected, _, _ = _row_values(family, HISTORIES, 8, correction, **moved)
    x2 = np.broadcast_to(MEAN + [0.08, -0.1], (len(x), 2))
    c2, r2 = rule.adapt_rows(family, x, t_x, T, x2, moved["sigma"], moved["rho"], refine_nodes=36)
    p2, w2 = rule.product_rule(36)
    t2 = rule.node_log_terms(family, x, t_x, T, c2, r2, p2, w2)
    accurate = np.array([
        mg.marginal_loglik(moved["coefficients"], np.zeros((1, 2)), moved["sigma"], moved["rho"], np.ones((1, 1)),
                           np.zeros(1, dtype=np.int64), np.ones(1), c2[i:i + 1], r2[i:i + 1], t2[i:i + 1],
                           t2[i:i + 1].max(axis=1), p2, np.zeros((1, 0)))[0] for i in range(len(x))])
    assert np.abs(corrected - accurate).max() < 5e-4
    assert np.abs(corrected - accurate).sum() < 0.3 * np.abs(plain - accurate).sum()


def _kernel_inputs(family, n=200, groups=3, seed=3, nodes=6):
    rng = np.random.default_rng(seed)
    x = rng.poisson(2, n).astype(float)
    T = rng.uniform(5, 40, n)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    group = rng.integers(0, groups, n)
    weight = rng.integers(1, 4, n).astype(float)
    B = np.array([[-2.5, -3.0], [0.3, -0.2]])
    offset = rng.normal(size=(groups, 2)) * 0.2
    mean = X @ B + offset[group]
    centre, chol = rule.adapt_rows(family, x, t_x, T, mean, SIGMA, RHO)
    powers, log_weights = rule.product_rule(nodes)
    terms = rule.node_log_terms(family, x, t_x, T, centre, chol, powers, log_weights)
    correction = rule.rule_corrections(family, x, t_x, T, centre, chol, terms, powers,
                                     rule.row_tilts(mean, SIGMA, RHO, centre, chol))
    tables = (X, group, weight, centre, chol, terms, terms.max(axis=1), powers, correction)
    return (B, offset, SIGMA, RHO), tables, (x, t_x, T)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("corrected", [False, True])
def test_kernel_gradient_equals_finite_differences(family, corrected):
    params, tables, _ = _kernel_inputs(family)
    if not corrected:
        tables = tables[:-1] + (np.zeros((len(tables[0]), 0)),)
    B, offset, sigma, rho = params[0] + 0.1, params[1] - 0.05, params[2] * 1.1, 0.35  # off the reference

    def value(*p):
        return mg.marginal_loglik(*p[:3], p[3], *tables)[0]

    _, *grads = mg.marginal_loglik(B, offset, sigma, rho, *tables)
    point = [B, offset, sigma, np.array(rho)]
    h = 1e-6
    for k, g in enumerate(grads):
        for idx in np.ndindex(np.shape(point[k])):
            up = [p.copy() for p in point]
            down = [p.copy() for p in point]
            up[k][idx] += h
            down[k][idx] -= h
            numeric = (value(*up[:3], float(up[3])) - value(*down[:3], float(down[3]))) / (2 * h)
            assert np.asarray(g)[idx] == pytest.approx(numeric, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("nodes", [7, 10])
def test_rows_summed_by_factors_equal_the_node_by_node_sum(family, nodes):
    """The factored sum of a product rule (node_mass given) is the same sum as node by node, near the
    reference and far from it (where rows fall back to the node-by-node sum), value and gradient."""
    params, tables, _ = _kernel_inputs(family, nodes=nodes)
    terms, top, powers = tables[5], tables[6], tables[7]
    assert rule.is_product_rule(powers)
    assert not rule.is_product_rule(rule.product_rule(nodes, prune=1e-4)[0])
    mass = np.exp(terms - top[:, None])
    B, offset, sigma, rho = params
    for shift, scale, r in [(0.0, 1.0, rho), (0.1, 1.1, 0.35), (-0.4, 0.6, -0.5), (3.0, 0.2, 0.9)]:
        point = (B + shift, offset, sigma * scale, r)
        plain = mg.marginal_loglik(*point, *tables)
        factored = mg.marginal_loglik(*point, *tables, mass)
        assert np.isfinite(plain[0])
        assert factored[0] == pytest.approx(plain[0], rel=1e-12, abs=1e-9)
        for a, b in zip(factored[1:], plain[1:], strict=True):
            assert np.allclose(a, b, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("draws", [6, 37])
def test_node_expectations_by_factors_equal_the_node_by_node_weights(family, draws):
    """Per draw, the expectations and row log-likelihoods from the factored weights (node_mass given, the
    draws in blocks of vector lanes: fewer than a block, and blocks with a partial last one) are those of
    the node-by-node weights, near the reference and far from it."""
    params, tables, _ = _kernel_inputs(family, n=40, nodes=9)
    X, group, _, centre, chol, terms, top, powers, _ = tables
    rng = np.random.default_rng(5)
    B = params[0][None] + rng.normal(scale=[[0.05], [1.5]], size=(draws, 2, 2))[:, :, :1] * np.array([1, 0])
    offset = np.repeat(params[1][None], draws, 0)
    sigma = params[2][None] * rng.uniform(0.3, 2.0, size=(draws, 2))
    rho = rng.uniform(-0.8, 0.8, draws)
    th0 = centre[:, :1] + chol[:, :1] * powers[0]
    values = np.ascontiguousarray(np.stack([np.exp(th0), np.broadcast_to(th0, th0.shape) ** 2], axis=1))
    plain, factored = np.empty((len(X), draws, 2)), np.empty((len(X), draws, 2))
    plain_ll, factored_ll = np.empty((len(X), draws)), np.empty((len(X), draws))
    mg.node_expectations(B, offset, sigma, rho, X, group, centre, chol, terms, top, powers, values, plain, plain_ll)
    mg.node_expectations(B, offset, sigma, rho, X, group, centre, chol, terms, top, powers, values, factored,
                         factored_ll, np.exp(terms - top[:, None]))
    assert np.all(np.isfinite(plain)) and np.all(np.isfinite(plain_ll))
    assert np.allclose(factored, plain, rtol=1e-10, atol=1e-12)
    assert np.allclose(factored_ll, plain_ll, rtol=1e-12, atol=1e-9)


def test_op_gives_the_kernels_value_and_gradient_in_c_and_numba_graphs():
    params, tables, _ = _kernel_inputs(rule.PARETONBD)
    tables = (*tables, np.exp(tables[5] - tables[6][:, None]))  # node_mass: rows summed by factors
    B, offset, sigma = pt.dmatrix("B"), pt.dmatrix("offset"), pt.dvector("sigma")
    rho = pt.dscalar("rho")
    total = mg.MarginalLoglikOp()(B, offset, sigma, rho, *tables)[0]
    outputs = [total, *pytensor.grad(total, [B, offset, sigma, rho])]
    expected = mg.marginal_loglik(*params[:3], params[3], *tables)
    for mode in ("FAST_RUN", "NUMBA"):
        fn = pytensor.function([B, offset, sigma, rho], outputs, mode=mode)
        got = fn(*params)
        assert float(got[0]) == pytest.approx(expected[0], rel=1e-12)
        for a, b in zip(got[1:], expected[1:], strict=True):
            assert np.allclose(a, b, rtol=1e-10)


def test_rows_split_over_threads_give_the_same_sums():
    """The reference search's kernel splits its rows over threads: the same total and gradient as one pass
    (to rounding), through the Op too; below two threads' worth of rows it is the one pass itself."""
    params, tables, _ = _kernel_inputs(rule.PARETONBD, n=4500, nodes=8)
    tables = (*tables, np.exp(tables[5] - tables[6][:, None]))
    point = (params[0] + 0.05, params[1], params[2] * 1.1, 0.3)
    whole = mg.marginal_loglik(*point, *tables)
    split = mg.marginal_loglik_threads(*point, tables, 3)
    assert split[0] == pytest.approx(whole[0], rel=1e-13)
    for a, b in zip(split[1:], whole[1:], strict=True):
        assert np.allclose(a, b, rtol=1e-11, atol=1e-9)
    laid = mg.marginal_loglik_threads(*point, (*tables[:-1], as_lanes(tables[-1])), 3)  # sliced by blocks
    for a, b in zip(laid, split, strict=True):
        np.testing.assert_array_equal(a, b)
    few = tuple(t if j == 7 else t[:300] for j, t in enumerate(tables))
    assert mg.marginal_loglik_threads(*point, few, 2)[0] == mg.marginal_loglik(*point, *few)[0]
    op = mg.MarginalLoglikOp()
    op.threads = 2
    B, offset, sigma, rho = pt.dmatrix("B"), pt.dmatrix("offset"), pt.dvector("sigma"), pt.dscalar("rho")
    total = op(B, offset, sigma, rho, *tables)[0]
    fn = pytensor.function([B, offset, sigma, rho], [total, pytensor.grad(total, sigma)])
    value, grad_sigma = fn(*point)
    assert float(value) == pytest.approx(whole[0], rel=1e-13)
    assert np.allclose(grad_sigma, whole[3], rtol=1e-11)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_row_frames_on_several_cores_equal_the_rows_one_block_at_a_time(family):
    """The frames, node terms and corrections of many rows are computed in slices on every core: each row's
    result is the same as from a call on a few rows (one thread), to the bit."""
    rng = np.random.default_rng(11)
    n = 2600
    x = rng.poisson(1.5, n).astype(float)
    T = rng.uniform(5, 40, n)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    mean = np.column_stack([rng.normal(-2.5, 0.3, n), rng.normal(-3.0, 0.3, n)])
    powers, log_weights = rule.product_rule(6)

    def tables(rows):
        centre, chol = rule.adapt_rows(family, x[rows], t_x[rows], T[rows], mean[rows], SIGMA, RHO)
        terms = rule.node_log_terms(family, x[rows], t_x[rows], T[rows], centre, chol, powers, log_weights)
        tilts = rule.row_tilts(mean[rows], SIGMA * 1.1, RHO, centre, chol)
        return centre, chol, terms, rule.rule_corrections(family, x[rows], t_x[rows], T[rows], centre, chol, terms,
                                                          powers, tilts, accurate_nodes=12)

    whole = tables(slice(None))
    pieces = [tables(slice(lo, lo + 400)) for lo in range(0, n, 400)]
    for k, table in enumerate(whole):
        np.testing.assert_array_equal(table, np.concatenate([p[k] for p in pieces]))
        assert np.all(np.isfinite(table))


def _move_allocations(rng, held: list) -> None:
    """Allocate 0-5 arrays of assorted sizes into ``held`` and free one when it holds more than 20: the
    allocator then places the next call's scratch elsewhere."""
    held += [np.empty(int(size)) for size in rng.choice([rng.integers(1, 200), rng.integers(200, 20000)],
                                                        rng.integers(0, 6))]
    if len(held) > 20:
        del held[rng.integers(len(held))]


def test_rule_corrections_repeat_bit_for_bit_wherever_the_allocator_puts_their_scratch():
    """The same rows give the same correction table on every call, whatever memory the calls before left
    free. Allocations of assorted sizes between the calls move the kernel's scratch around; the kernel's
    vectorised loops used to take their scalar version when two scratch arrays lay next to each other,
    which rounds differently (this test failed in 2 of 3 runs of the code before the fix), and a fit with a
    fixed seed did not repeat."""
    rng = np.random.default_rng(7)
    family, n = rule.PARETONBD, 450
    x = rng.poisson(1.5, n).astype(float)
    T = rng.uniform(30, 52, n)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    mean = np.column_stack([rng.normal(-2.5, 0.3, n), rng.normal(-3.0, 0.3, n)])
    powers, log_weights = rule.product_rule(10)
    centre, chol = rule.adapt_rows(family, x, t_x, T, mean, SIGMA, RHO)
    terms = rule.node_log_terms(family, x, t_x, T, centre, chol, powers, log_weights)
    tilts = rule.row_tilts(mean, SIGMA, RHO, centre, chol)
    first = rule.rule_corrections(family, x, t_x, T, centre, chol, terms, powers, tilts)
    held = []
    for call in range(300):
        _move_allocations(rng, held)
        again = rule.rule_corrections(family, x, t_x, T, centre, chol, terms, powers, tilts)
        assert np.array_equal(again, first), f"call {call}: max difference {np.abs(again - first).max():.3g}"


def test_gradient_kernel_repeats_bit_for_bit_wherever_the_allocator_puts_its_scratch():
    """The factored gradient (rows in vector lanes, the per-row part too) gives the same bits on every call
    whatever memory the calls before left free: its lane scratch lies in one buffer with gaps, so the
    vectorised loops' overlap checks take the same path on every call (as the rule corrections above)."""
    rng = np.random.default_rng(11)
    params, tables, _ = _kernel_inputs(rule.BGNBD, n=150, nodes=8)
    terms, top = tables[5], tables[6]
    laid = as_lanes(np.exp(terms - top[:, None]))
    point = (params[0] + 0.05, params[1], params[2] * 0.9, 0.6)
    first = mg.marginal_loglik(*point, *tables, laid)
    held = []
    for call in range(200):
        _move_allocations(rng, held)
        again = mg.marginal_loglik(*point, *tables, laid)
        for a, b in zip(again, first, strict=True):
            assert np.array_equal(a, b), f"call {call}"


def test_node_expectations_repeat_bit_for_bit_wherever_the_allocator_puts_their_scratch():
    """The factored prediction path (draws in vector lanes) gives the same expectations and row
    log-likelihoods on every call whatever memory the calls before left free, as the gradient kernel above:
    a customer's predictions from one posterior do not depend on what else the process allocated. Its
    scratch arrays are separate allocations, and this held without moving them into one buffer (400 calls
    for each of 10 seeds, both families, 8-12 nodes: none differed); the test keeps it so."""
    rng = np.random.default_rng(13)
    params, tables, _ = _kernel_inputs(rule.PARETONBD, n=30, nodes=9)
    X, group, _, centre, chol, terms, top, powers, _ = tables
    draws = 37  # a partial last block of lanes
    B = params[0][None] + rng.normal(scale=0.05, size=(draws, 2, 2))
    offset = np.repeat(params[1][None], draws, 0)
    sigma = params[2][None] * rng.uniform(0.7, 1.4, size=(draws, 2))
    rho = rng.uniform(-0.5, 0.8, draws)
    th0 = centre[:, :1] + chol[:, :1] * powers[0]
    values = np.ascontiguousarray(np.stack([np.exp(th0), np.broadcast_to(th0, th0.shape) ** 2], axis=1))
    mass = np.exp(terms - top[:, None])

    def expectations():
        out, loglik = np.empty((len(X), draws, 2)), np.empty((len(X), draws))
        mg.node_expectations(B, offset, sigma, rho, X, group, centre, chol, terms, top, powers, values, out, loglik,
                             mass)
        return out, loglik

    first = expectations()
    held = []
    for call in range(200):
        _move_allocations(rng, held)
        again = expectations()
        for a, b in zip(again, first, strict=True):
            assert np.array_equal(a, b), f"call {call}: max difference {np.abs(a - b).max():.3g}"


def test_lane_tanh_matches_numpy_to_a_few_ulps():
    """The vectorised tanh of the correction's taper (inlined in the gradient's row lanes) to 1e-15 relative,
    near zero (where 1 - exp(-2x) would lose the digits) and far out (+-1)."""
    rng = np.random.default_rng(5)
    out = np.empty(4000)
    for v in (rng.uniform(-1e-9, 1e-9, 4000), rng.uniform(-0.4, 0.4, 4000), rng.uniform(-6.0, 6.0, 4000),
              rng.uniform(-500.0, 500.0, 4000)):
        lane_tanh(v, out, v.size)
        np.testing.assert_allclose(out, np.tanh(v), rtol=1e-15, atol=0)
    edge = np.array([0.0, -0.0, 0.1733, -0.3466, 354.0, -1e6])
    lane_tanh(edge, out, edge.size)
    np.testing.assert_allclose(out[:edge.size], np.tanh(edge), rtol=1e-15, atol=0)


def _legendre_moments(family, x, t_x, T, centre, chol, log_norm, nodes):
    """``int (1, lam, second rate) exp(log L(theta) + log N(theta; MEAN, Sigma) - log_norm) dtheta`` by an
    ``nodes x nodes`` Gauss-Legendre product rule on [-12, 12]^2 of the row's frame, the likelihood from the
    individual formula (vectorised NumPy, checked against the rule's own in the first test above)."""
    cov = np.array([[SIGMA[0] ** 2, RHO * SIGMA[0] * SIGMA[1]], [RHO * SIGMA[0] * SIGMA[1], SIGMA[1] ** 2]])
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = 12.0 * u, 12.0 * w
    u0, u1 = u[:, None], u[None, :]
    a = np.broadcast_to(centre[0] + chol[0] * u0, (nodes, nodes))
    c = centre[1] + chol[1] * u0 + chol[2] * u1
    d = np.stack([a - MEAN[0], c - MEAN[1]], axis=-1)
    quad = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
    lam, second = _natural(family, a, c)
    log_f = FAMILIES[family].loglik(x, t_x, T, lam, second, xp=NP) - 0.5 * quad - log_norm
    density = np.exp(log_f) * np.outer(w, w) * chol[0] * chol[2] / (2 * np.pi * np.sqrt(np.linalg.det(cov)))
    return np.array([density.sum(), (density * lam).sum(), (density * second).sum()])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_node_expectations_match_posterior_means_by_independent_quadrature(family):
    """E[lam | y_i, phi] and E[second rate | y_i, phi] from the node weights against an independent product
    Gauss-Legendre quadrature of the conditional posterior (96^2 nodes, its error bounded by 128^2 nodes)."""
    histories = HISTORIES[[1, 3, 5, 7, 8]]
    centre, chol, powers, terms = _rule_tables(family, histories, 20)
    th0 = centre[:, :1] + chol[:, :1] * powers[0]
    th1 = centre[:, 1:] + chol[:, 1:2] * powers[0] + chol[:, 2:] * powers[1]
    values = np.stack(_natural(family, th0, th1), axis=1)  # (rows, 2, nodes)
    n = len(histories)
    out, loglik = np.empty((n, 1, 2)), np.empty((n, 1))
    mg.node_expectations(MEAN[None, None, :], np.zeros((1, 1, 2)), SIGMA[None], np.array([RHO]), np.ones((n, 1)),
                         np.zeros(n, dtype=np.int64), centre, chol, terms, terms.max(axis=1), powers, values, out,
                         loglik)
    for i, (x, t_x, T) in enumerate(histories):
        ref, fine = (_legendre_moments(family, x, t_x, T, centre[i], chol[i], loglik[i, 0], m) for m in (96, 128))
        np.testing.assert_allclose(ref, fine, rtol=1e-8)  # the reference's own error, far under the tolerance
        assert ref[0] == pytest.approx(1.0, abs=1e-4)  # loglik: the row's log-likelihood by the 20 x 20 rule
        assert out[i, 0] == pytest.approx(ref[1:] / ref[0], rel=1e-4)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_sampled_latents_follow_the_conditional_posterior(family):
    """Importance-resampled latents: their mean and sd match the node-weighted posterior moments."""
    histories = HISTORIES[[1, 5, 7]]
    n = len(histories)
    centre, chol, powers, terms = _rule_tables(family, histories, 12)
    th0 = centre[:, :1] + chol[:, :1] * powers[0]
    th1 = centre[:, 1:] + chol[:, 1:2] * powers[0] + chol[:, 2:] * powers[1]
    values = np.stack([th0, th1, th0**2, th1**2], axis=1)
    moments = np.empty((n, 1, 4))
    params = (MEAN[None, None, :], np.zeros((1, 1, 2)), SIGMA[None], np.array([RHO]))
    mg.node_expectations(*params, np.ones((n, 1)), np.zeros(n, dtype=np.int64), centre, chol, terms,
                         terms.max(axis=1), powers, values, moments, np.empty((n, 0)))
    draws = 20_000
    out = np.empty((draws, n, 2))
    x, t_x, T = (np.ascontiguousarray(v) for v in histories.T)
    mg.sample_latents(family, np.repeat(params[0], draws, 0), np.repeat(params[1], draws, 0),
                      np.repeat(params[2], draws, 0), np.repeat(params[3], draws), np.ones((n, 1)),
                      np.zeros(n, dtype=np.int64), x, t_x, T, centre, chol, np.arange(n), np.arange(draws),
                      np.arange(n), 16, 1.2, 7, out)
    mean, sd = out.mean(axis=0), out.std(axis=0)
    expected_mean = moments[:, 0, :2]
    expected_sd = np.sqrt(moments[:, 0, 2:] - expected_mean**2)
    assert np.allclose(mean, expected_mean, atol=4 * expected_sd / np.sqrt(draws) + 0.01 * expected_sd)
    assert np.allclose(sd, expected_sd, rtol=0.03)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_rows_summed_in_blocks_equal_the_rows_summed_one_at_a_time(family):
    """The factored kernel takes the factors' exponentials of a block of rows at once: the total and gradient
    are the sums of each row's alone, where the block mixes factored rows and rows far enough from the
    reference to be summed node by node (a large correlation-driven cross term)."""
    params, tables, _ = _kernel_inputs(family, n=150, nodes=8)
    X, group, weight, centre, chol, terms, top, powers, correction = tables
    mass = np.exp(terms - top[:, None])
    chol = chol.copy()
    chol[::7, 1] *= 40.0  # every 7th row: a cross term beyond the factored limit
    B, offset, sigma, rho = params[0] + 0.05, params[1], params[2] * 0.9, 0.6
    total = mg.marginal_loglik(B, offset, sigma, rho, X, group, weight, centre, chol, terms, top, powers,
                               correction, mass)
    parts = [mg.marginal_loglik(B, offset, sigma, rho, X[i:i + 1], group[i:i + 1], weight[i:i + 1],
                                centre[i:i + 1], chol[i:i + 1], terms[i:i + 1], top[i:i + 1], powers,
                                correction[i:i + 1], mass[i:i + 1]) for i in range(len(X))]
    plain = mg.marginal_loglik(B, offset, sigma, rho, X, group, weight, centre, chol, terms, top, powers, correction)
    assert np.isfinite(total[0])
    assert total[0] == pytest.approx(sum(p[0] for p in parts), rel=1e-12)
    assert total[0] == pytest.approx(plain[0], rel=1e-12)
    for k in range(1, 3):
        assert np.allclose(total[k], sum(p[k] for p in parts), rtol=1e-10, atol=1e-8)
        assert np.allclose(total[k], plain[k], rtol=1e-10, atol=1e-8)
    # the fit's tables hold the masses in the kernel's lane layout, built once: the same sums, to the bit
    laid = as_lanes(mass)
    assert laid.shape == (3, mass.shape[1], ROW_LANES)
    np.testing.assert_array_equal(laid[2, :, 21], mass[149])
    np.testing.assert_array_equal(laid[2, :, 22:], np.repeat(mass[149][:, None], ROW_LANES - 22, axis=1))
    again = mg.marginal_loglik(B, offset, sigma, rho, X, group, weight, centre, chol, terms, top, powers,
                               correction, laid)
    for a, b in zip(again, total, strict=True):
        np.testing.assert_array_equal(a, b)
