"""bayesclv: Bayesian customer-lifetime-value models."""
