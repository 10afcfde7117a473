"""All of morula's NumPy rules: ``import morula.rules.numpy_rules`` registers them.

In: nothing. Out: the side effect of importing each topic module (vector
space, elementwise, reductions, products, shapes, indexing, creation,
kron/cross, signal helpers).
``ndarray_getitem`` (for the engine's ``operator.getitem``) is re-exported.
"""

from morula.rules import numpy_vspace  # noqa: F401  (registers ndarray/generic as tangent spaces)
from morula.rules import numpy_elementwise  # noqa: F401
from morula.rules import numpy_reductions  # noqa: F401
from morula.rules import numpy_linalg  # noqa: F401
from morula.rules import numpy_linalg_decomp  # noqa: F401
from morula.rules import numpy_fft  # noqa: F401
from morula.rules import numpy_shape  # noqa: F401
from morula.rules import numpy_indexing  # noqa: F401
from morula.rules import numpy_creation  # noqa: F401
from morula.rules import numpy_products  # noqa: F401
from morula.rules import numpy_signal  # noqa: F401
from morula.rules import numpy_substitutes  # noqa: F401
from morula.rules.numpy_indexing import ndarray_getitem  # noqa: F401
