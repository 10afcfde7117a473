"""All of morula's SciPy rules, imported lazily.

In: nothing. Out: the side effect of importing each SciPy topic module
(``scipy_special``, ``scipy_linalg``, ``scipy_signal``, ``scipy_sparse``).
``morula.rules`` names this module with ``register_lazy("scipy", ...)``:
``load_pending()`` imports it once the user has imported ``scipy`` (morula itself
never imports SciPy). The topic modules import the SciPy subpackages they need.
"""

from morula.rules import scipy_special  # noqa: F401
from morula.rules import scipy_linalg  # noqa: F401
from morula.rules import scipy_signal  # noqa: F401
from morula.rules import scipy_sparse  # noqa: F401
