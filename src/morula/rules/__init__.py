"""Derivative rules, by topic; importing this package registers the core ones.

In: nothing. Out: a populated ``registry.REGISTRY``. Rules for optional
libraries (SciPy, Dask, ...) are registered lazily: ``load_pending()`` imports
a library's rule module once the user has imported that library, so morula
never imports an optional dependency itself.
"""

import importlib
import sys

from . import python_operators, python_builtins, python_math  # noqa: F401
from . import numpy_rules, numpy_glue  # noqa: F401
from . import python_forward, numpy_forward  # noqa: F401  (forward rules)
from . import numpy_duals  # noqa: F401  (dual arrays: Hessians by forward over reverse)
from ..reverse import runtime as _runtime

# library (top-level package) -> morula rule modules to import once it is imported
PENDING = {}
_runtime._PENDING = PENDING


def register_lazy(package, module):
    PENDING.setdefault(package, []).append(module)


def load_pending():
    """Import rule modules whose library is now imported; True if anything was registered."""
    loaded = False
    for package in [p for p in PENDING if p in sys.modules]:
        for module in PENDING.pop(package):
            importlib.import_module(module)
            loaded = True
    return loaded
register_lazy("scipy", "morula.rules.scipy_rules")
register_lazy("dask", "morula.rules.dask_glue")
