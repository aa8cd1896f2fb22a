"""Every numba-compiled Op of bayesclv salts PyTensor's on-disk cache key with its kernels' sources.

Without the salt, a graph compiled and cached before a kernel changed (an upgrade, an edit) would run
the old kernel: a wrong likelihood, silently.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from pytensor.link.numba.dispatch.basic import numba_funcify_default_op_cache_key

import bayesclv.formulas
from bayesclv.formulas import paretoggg
from bayesclv.formulas._cache_key import KERNEL_SOURCE_SALT, source_salt
from bayesclv.formulas._covariate_summed import CovariateLoglikOp
from bayesclv.formulas._summed import SummedLoglikOp


def _registered_op_types():
    for info in pkgutil.iter_modules(bayesclv.formulas.__path__):
        importlib.import_module(f"bayesclv.formulas.{info.name}")
    return {t for t in numba_funcify_default_op_cache_key.registry if t.__module__.startswith("bayesclv.")}


def _instance(op_type):
    # the funcify only closes over the kernel, so any compiled kernel of the package will do
    if op_type is CovariateLoglikOp:
        return op_type(paretoggg._summed_kernel, 7)
    if op_type is SummedLoglikOp:
        return op_type(paretoggg._summed_kernel, 3)
    assert not [p for p in inspect.signature(op_type).parameters.values() if p.default is p.empty], op_type
    return op_type()


def test_every_registered_op_returns_the_source_salt():
    op_types = _registered_op_types()
    assert len(op_types) >= 6  # summed, covariate, two lifetime integrals, two marginal
    for op_type in op_types:
        result = numba_funcify_default_op_cache_key(_instance(op_type))
        assert isinstance(result, tuple) and result[1] == KERNEL_SOURCE_SALT, op_type


def test_source_salt_follows_every_byte_and_ignores_listing_order(tmp_path):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("x = 1\n")
    second.write_text("y = 2\n")
    salt = source_salt([first, second])
    assert salt == source_salt([second, first])
    assert 0 <= salt < 2**56
    second.write_text("y = 3\n")
    assert source_salt([first, second]) != salt
