"""morula: exact derivatives of ordinary Python + NumPy code by source transformation.

Re-exports only; see ``api`` for the differentiation functions.
"""

from . import rules as _rules  # noqa: F401  (registers the rules)
from . import api
from .api import (checkpoint, grad, hessian, hvp, jacfwd, jacobian, jacrev, jvp, source, stop_gradient,
                  value_and_grad, vjp)
from . import nested as _nested
from .forward.derived import attach as _forward_attach
from .forward.derived import constant_frule as _constant_frule
from .forward.derived import frule
from .errors import MissingRuleError, NonScalarOutputError, UnsupportedOperationError, UnsupportedSyntaxError
from .rules.registry import nondiff, rrule
from .tangents import ObjectCotangent
from . import testing  # noqa: F401

nondiff(stop_gradient)
rrule(checkpoint)(api._checkpoint_rule)
_forward_attach(api._checkpoint_rule, _constant_frule(checkpoint))   # the wrapper runs f in forward mode

_nested.register_api_rules(api)
_nested.register_runtime_rules()

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "jacrev", "jacfwd", "hessian", "hvp", "frule", "stop_gradient", "checkpoint",
           "rrule", "nondiff", "source", "testing", "MissingRuleError", "UnsupportedSyntaxError",
           "NonScalarOutputError", "UnsupportedOperationError", "ObjectCotangent"]
