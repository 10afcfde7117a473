"""Run-time support of ``with make(x) as h:`` in generated code (``normalize.Normalizer.entered``).

In: the context manager, already created. Out: whether its ``__enter__`` is differentiated, the
value ``__enter__`` returns when it is not, and the object the rewritten ``with`` statement
enters, whose exit is the manager's own.
"""

import types


def user_manager_class(maker):
    """Is ``maker`` (what ``with maker(...) as h`` calls) a class of the user's own whose
    ``__enter__`` is the user's own Python code? Then the manager and ``h`` are differentiated.
    Library and C managers (files, locks, ``np.errstate``) and ``contextlib.contextmanager``
    generators run as written."""
    if not isinstance(maker, type):
        return False
    enter = getattr(maker, "__enter__", None)
    if type(enter) is not types.FunctionType:
        return False
    from ..reverse.runtime import _is_library_code
    return not _is_library_code(enter.__code__)


def plain_enter(manager, sources):
    """``__enter__`` run as written; its value is a constant -- refused when it holds floats and
    the ``with`` expression read local floats (``sources``), which it may well depend on."""
    value = type(manager).__enter__(manager)
    from ..tangents import is_inexact
    if is_inexact(value) and any(is_inexact(s) for s in sources):
        from ..errors import UnsupportedOperationError
        raise UnsupportedOperationError(
            f"the value this `with ... as` hands out holds floats and the manager was made from "
            f"differentiated values, but its __enter__ ({getattr(type(manager), '__qualname__', type(manager))}) "
            f"is not the user's own class code (a library or C manager, or a "
            f"contextlib.contextmanager generator), so morula cannot differentiate it. Compute the "
            f"value before the `with` statement, or write the manager as a class with __enter__/__exit__.")
    return value


class Entered:
    """The ``with`` statement of a manager whose ``__enter__`` already ran: leaving the block
    calls the manager's ``__exit__``, with the exception if there is one, and suppresses it when
    that says so -- as the original statement would have."""

    __slots__ = ("manager",)

    def __init__(self, manager):
        self.manager = manager

    def __enter__(self):
        return None

    def __exit__(self, kind, value, traceback):
        return type(self.manager).__exit__(self.manager, kind, value, traceback)
