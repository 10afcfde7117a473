"""Dask arrays meet the engine: registered once the user has imported Dask.

In: nothing. Out: Dask arrays take the ``operator`` rules directly and ``x[i]`` uses
NumPy's indexing rule (written with dispatching calls). Dask arrays are never written in
place, so they need no shadow memory: their cotangents flow as values.
"""

import dask.array as da

from ..reverse import ops
from .numpy_indexing import ndarray_getitem

ops.register_plain_type(da.Array)
ops.register_type_op("getitem", da.Array, ndarray_getitem)
