"""The salt of this package's Ops in PyTensor's on-disk cache of numba-compiled graphs.

PyTensor keys a compiled graph's numba code by each Op's type and pickled props alone
(``register_funcify_default_op_cache_key``), not by the code of the kernel the Op calls. After a
kernel changed (an upgrade of bayesclv, or an edit), a graph cached before would run the old kernel
and return a wrong likelihood without any error. Every Op of ``bayesclv.formulas`` that registers a
numba implementation returns :data:`KERNEL_SOURCE_SALT` with it: a hash of the sources of all the
``formulas`` modules, where every kernel and everything a kernel calls lives, so any change there
gives every graph a new key (and one recompilation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

__all__ = ["KERNEL_SOURCE_SALT", "source_salt"]


def source_salt(paths: Iterable[Path]) -> int:
    """A 56-bit integer hash of the files' bytes, in sorted path order (independent of listing order)."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return int.from_bytes(digest.digest()[:7], "little")


KERNEL_SOURCE_SALT = source_salt(Path(__file__).parent.glob("*.py"))
