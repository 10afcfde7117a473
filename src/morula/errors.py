"""The error types a user of morula can meet.

In: nothing. Out: exception classes. Every error names the user's file and
line where one is known, what went wrong, and what to do about it.
"""


class MorulaError(Exception):
    """Base class of morula's own errors."""


class UnsupportedSyntaxError(SyntaxError, MorulaError):
    """Syntax morula cannot differentiate, found before any code ran.

    Carries ``filename``, ``lineno``, ``offset`` (column, 1-based) like a
    ``SyntaxError``, plus ``hint``: what to write instead.
    """

    def __init__(self, what, filename, lineno, col, hint, text=None):
        self.what = what
        self.hint = hint
        message = f"{filename}:{lineno}:{col + 1}: morula cannot differentiate {what}. {hint}"
        super().__init__(message, (filename, lineno, col + 1, text))

    def __str__(self):
        return self.msg


class MissingRuleError(MorulaError, TypeError):
    """A call to a function that has no derivative rule and no Python source."""

    def __init__(self, fn, where=None, reason=None):
        self.fn = fn
        name = describe_callable(fn)
        place = f"{where}: " if where else ""
        why = (f"morula could not transform its Python source ({reason})" if reason
               else "it is not written in Python, so morula cannot look inside")
        attribute = name.endswith("(attribute)")
        fix = (f"Fix: avoid this attribute in differentiated code (for ndarray.flat use ravel() or "
               f"reshape), or register an attribute rule with morula.rules.registry.attr_rule."
               if attribute else
               f"Fix: register a reverse rule with @morula.rrule({name}), or, if it has no "
               f"derivative (its output is a constant), declare morula.nondiff({name}).")
        super().__init__(
            f"{place}morula has no derivative rule for {name}, whose result may hold "
            f"floating-point values; {why}. " + fix
        )


class NonScalarOutputError(MorulaError, TypeError):
    """``grad`` was asked for the gradient of a function whose output is not a real scalar."""


class UnsupportedOperationError(MorulaError, TypeError):
    """An operation morula can see but cannot differentiate correctly.

    Raised from rules, the message gets the user's file and line when it does not name one."""

    def __init__(self, message):
        if ".py:" not in message.split(" ", 1)[0]:
            where = user_site()
            if where:
                message = f"{where}: {message}"
        super().__init__(message)


def user_site():
    """The user's file:line of the innermost function morula is differentiating, if any."""
    import sys
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name.endswith(("__fwd", "__jvp")):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def describe_callable(fn):
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return repr(fn)
    if module in (None, "builtins"):
        return name
    if module == "numpy" or module.startswith("numpy."):
        module = "np" + module[len("numpy"):]
        if module.startswith("np._core") or module.startswith("np.core"):
            module = "np"
    return f"{module}.{name}"


class ReverseOverNestedForwardError(UnsupportedOperationError):
    """Reverse mode met forward code of forward code (a third derivative with reverse mode
    outermost, e.g. the Hessian of a function that takes a derivative itself). Not supported yet:
    morula computes those with forward mode outermost instead (``grad``, ``value_and_grad``,
    ``hessian`` and ``hvp`` switch by themselves; ``vjp`` and ``jacobian`` raise this error)."""
