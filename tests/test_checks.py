"""Frequency PPC and simulation-based calibration pieces (bayesclv.checks, validation/sbc.py)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesclv.checks import frequency_histogram, frequency_ppc, rank_uniformity, sbc_rank, thin_draws


def test_frequency_histogram_open_last_bin_and_batches():
    assert frequency_histogram([0, 0, 1, 3, 9, 12], max_count=3).tolist() == [2, 1, 0, 3]
    batch = frequency_histogram(np.array([[0, 1, 7], [8, 8, 2]]), max_count=7)
    assert batch.tolist() == [[1, 1, 0, 0, 0, 0, 0, 1], [0, 0, 1, 0, 0, 0, 0, 2]]
    with pytest.raises(ValueError):
        frequency_histogram([1], max_count=0)


def test_frequency_ppc_bgnbd_zero_class_closed_form(map_models, cdnow_rfm):
    model = map_models["BetaGeoModel"]
    ppc = frequency_ppc(model, n_draws=400, random_seed=5)
    observed = frequency_histogram(cdnow_rfm["frequency"].to_numpy(), 7)
    np.testing.assert_array_equal(ppc["observed"], observed)
    assert (ppc["predicted"].sum("frequency") == len(cdnow_rfm)).all()
    # BG/NBD: no repeat purchase in (0, T] has probability (alpha / (alpha + T))^r (no dropout before
    # the first repeat purchase), so the expected number of zeros is a sum over customers
    p = model.summary()["mean"]
    zeros = np.sum((p["alpha"] / (p["alpha"] + cdnow_rfm["T"])) ** p["r"])
    sd = float(ppc["predicted"].sel(frequency=0).std())
    assert float(ppc["expected"].sel(frequency=0)) == pytest.approx(zeros, abs=4 * sd / np.sqrt(400))
    # and the fitted model reproduces the observed zero class within its predictive band
    lo, hi = np.quantile(ppc["predicted"].sel(frequency=0), [0.005, 0.995])
    assert lo <= observed[0] <= hi


def test_frequency_ppc_chunks_do_not_change_results(map_models, monkeypatch):
    model = map_models["ParetoNBDModel"]
    whole = frequency_ppc(model, n_draws=30, random_seed=9)
    import bayesclv.chunks
    monkeypatch.setattr(bayesclv.chunks, "CHUNK_ELEMENTS", 3 * len(model.data))  # 3 draws per chunk
    seen = []
    original = type(model).simulate_population

    def spy(self, sample, data=None, random_seed=None):
        seen.append(len(sample))
        return original(self, sample, data, random_seed)

    monkeypatch.setattr(type(model), "simulate_population", spy)
    chunked = frequency_ppc(model, n_draws=30, random_seed=9)
    assert max(seen) == 3 and sum(seen) == 30
    # the same random stream is consumed in the same order only when chunking is the same,
    # so compare distributions: the means agree within Monte Carlo error
    np.testing.assert_allclose(chunked["expected"], whole["expected"], atol=40)


def test_sbc_rank_and_thinning():
    assert sbc_rank([0.1, 0.5, 0.9, 0.3], 0.4) == 2
    assert sbc_rank([0.1, 0.5], -1.0) == 0 and sbc_rank([0.1, 0.5], 2.0) == 2
    draws = np.arange(20.0).reshape(2, 10)
    np.testing.assert_array_equal(thin_draws(draws, 4), [0.0, 5.0, 10.0, 15.0])
    with pytest.raises(ValueError):
        thin_draws(draws, 21)
    with pytest.raises(ValueError):
        sbc_rank([np.nan], 0.0)


def test_rank_uniformity_detects_bias_and_accepts_uniform():
    rng = np.random.default_rng(3)
    uniform = rank_uniformity(rng.integers(0, 100, size=400), n_draws=99)
    assert uniform["chi2_pvalue"] > 0.001 and uniform["ks_pvalue"] > 0.001
    assert uniform["chi2_df"] == 19 and uniform["n_sims"] == 400
    # an overconfident posterior piles ranks at the ends; a biased one on one side
    ends = rank_uniformity(np.r_[np.zeros(100), np.full(100, 99)].astype(int), n_draws=99)
    assert ends["chi2_pvalue"] < 1e-10
    biased = rank_uniformity(rng.integers(0, 50, size=200), n_draws=99)
    assert biased["ks_pvalue"] < 1e-10
    # chi-square by hand: 4 bins of 5 values, counts (4, 0, 0, 0) against 1 each
    hand = rank_uniformity(np.array([0, 1, 2, 3]), n_draws=19, n_bins=4)
    assert hand["chi2"] == pytest.approx(9 + 1 + 1 + 1)
    with pytest.raises(ValueError):
        rank_uniformity([0, 100], n_draws=99)


def _sbc_script():
    path = Path(__file__).parents[1] / "validation" / "sbc.py"
    spec = importlib.util.spec_from_file_location("sbc_script", path)
    sbc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sbc)
    return sbc


def test_sbc_script_smoke(tmp_path, monkeypatch):
    sbc = _sbc_script()
    monkeypatch.setattr(sys, "argv", ["sbc.py", "--sims", "2", "--models", "gammagamma", "--customers", "40",
                                      "--draws", "60", "--tune", "60", "--chains", "1", "--ranks", "19",
                                      "--workers", "1", "--out", str(tmp_path)])
    sbc.main()
    summary = json.loads((tmp_path / "sbc_summary.json").read_text())
    entry = summary["models"]["gammagamma"]
    assert entry["n_sims"] == 2 and entry["n_failed"] == 0
    for name in ("p", "q", "gamma"):
        assert 0 <= entry["parameters"][name]["chi2_pvalue"] <= 1
    ranks = (tmp_path / "sbc_ranks.csv").read_text().splitlines()
    assert len(ranks) == 3 and "rank_q" in ranks[0]
    assert (tmp_path / "sbc_summary.md").read_text().startswith("# SBC")


@pytest.mark.parametrize("family, parameters", [("mbgnbd", ("r", "alpha", "a", "b")),
                                                ("bgcnbd2", ("r", "alpha", "a", "b")),
                                                ("mbgcnbd2", ("r", "alpha", "a", "b")),
                                                ("ggomnbd", ("r", "alpha", "b", "s", "beta"))])
def test_sbc_script_runs_the_new_families(family, parameters, tmp_path, monkeypatch):
    """Two short replications per family (the 200-replication run is validation/sbc.py's job): prior draws
    simulate the family's data columns (the CNBD-k's litt too), NUTS fits them and every truth gets a rank."""
    sbc = _sbc_script()
    monkeypatch.setattr(sys, "argv", ["sbc.py", "--sims", "2", "--models", family, "--customers", "40",
                                      "--draws", "60", "--tune", "60", "--chains", "1", "--ranks", "19",
                                      "--workers", "1", "--out", str(tmp_path)])
    sbc.main()
    entry = json.loads((tmp_path / "sbc_summary.json").read_text())["models"][family]
    assert entry["n_sims"] == 2 and entry["n_failed"] == 0
    assert tuple(entry["parameters"]) == parameters
    ranks = pd.read_csv(tmp_path / "sbc_ranks.csv")
    for name in parameters:
        assert ranks[f"rank_{name}"].between(0, 19).all() and np.isfinite(ranks[f"true_{name}"]).all()


def test_sbc_script_calibrates_the_pareto_ggg_gibbs_sampler(tmp_path, monkeypatch):
    """Two small replications of the Pareto/GGG (its SBC priors, fitted by the compiled Gibbs sampler users run):
    every truth gets a rank in 0..L, and the shipped defaults' prior draws are checked for simulable data."""
    sbc = _sbc_script()
    monkeypatch.setattr(sys, "argv", ["sbc.py", "--sims", "2", "--models", "paretoggg", "--customers", "30",
                                      "--draws", "200", "--tune", "100", "--thin", "10", "--chains", "2",
                                      "--ranks", "19", "--workers", "1", "--check-defaults", "3",
                                      "--out", str(tmp_path)])
    sbc.main()
    summary = json.loads((tmp_path / "sbc_summary.json").read_text())
    assert summary["settings"]["methods"] == {"paretoggg": "gibbs"}
    entry = summary["models"]["paretoggg"]
    assert entry["n_sims"] == 2 and entry["n_failed"] == 0 and not entry["priors_are_defaults"]
    assert tuple(entry["parameters"]) == ("t", "gamma", "r", "alpha", "s", "beta")
    ranks = pd.read_csv(tmp_path / "sbc_ranks.csv")
    for name in entry["parameters"]:
        assert ranks[f"rank_{name}"].between(0, 19).all() and np.isfinite(ranks[f"true_{name}"]).all()
    assert (ranks["divergences"] == 0).all() and (ranks["cpu_seconds"] > 0).all()
    check = summary["default_prior_check"]["paretoggg"]
    assert check["n_draws"] == 3 and 0 <= check["refused"] + check["nonfinite"] <= 3
    assert "NOT the shipped defaults" in (tmp_path / "sbc_summary.md").read_text()


def _spin():
    while True:
        pass


def test_sbc_script_stops_a_stalled_fit_at_its_cpu_limit():
    """A compiled sampler that stalls cannot be interrupted from Python: the replication runs in a child
    that the kernel stops past the limit, and the replication is recorded as failed."""
    sbc = _sbc_script()
    assert sbc.in_child(5.0, divmod, 7, 2) == (3, 1)
    with pytest.raises(TimeoutError, match="1.0 CPU s"):
        sbc.in_child(1.0, _spin)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        sbc.in_child(5.0, divmod, 1, 0)
