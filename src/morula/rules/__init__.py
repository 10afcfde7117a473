"""Derivative rules, by topic; importing this package registers all of them.

In: nothing. Out: a populated ``registry.REGISTRY``.
"""

from . import python_operators, python_builtins, python_math  # noqa: F401
from . import numpy_rules, numpy_glue  # noqa: F401
