"""Tangent memory of one forward-mode evaluation: tangents of mutable values, by identity.

In: arrays, lists, dicts and Python objects met while a ``jvp`` runs. Out: their
tangents, such that every alias and every view sees the same tangent and an
in-place write to any of them changes it for all.

- An array's tangent is kept per *root buffer* (the array that owns the
  memory): one tangent buffer with the root's layout. The tangent of any view
  is the same view (offset, shape, strides) into that tangent buffer, so
  ``y = x[1:]; y[0] = v`` changes the tangent of ``x`` too.
- A list's tangent is a list of the items' tangents, a dict's a dict, a
  Python object's a dict of its attributes' tangents. Items that are
  themselves mutable are looked up by their own identity, never by the copy
  stored in the container.

``None`` is the zero tangent throughout. The table keeps the objects it was
asked about alive, so identities are not reused while it lives.
"""

ARRAY_MEMORY = {}   # array type -> adapter (root_id, zeros, view, assign, setitem, ...), registered by rules


class TangentTable:
    def __init__(self):
        # id(root) -> (tangent buffer, an array of that root, owned): a buffer that is not owned
        # is a tangent the table was given (a seed, a rule's fresh result) and is copied before
        # the first in-place write, so writes never reach the caller's array
        self.buffers = {}
        # ids of every array serving as a buffer, adopted or made here: a rule's result tangent
        # that *is* one of them (y = x + 0.0 hands back x's tangent) must be copied, not adopted,
        # or a later in-place write to x would change y's tangent too
        self.adopted = set()
        self.borrowed = set()  # ids of adopted arrays that belong to the caller (seed tangents)
        self.objects = {}    # id(obj) -> (obj, tangent container)
        self.closures = {}   # id(function) -> (function, getter of its captured variables' tangents)

    # -- arrays ---------------------------------------------------------------
    # The adapter is asked for the root's *id* and for views of a buffer, never for the root
    # itself: an outer transform differentiating this code must not see the root array come out
    # of a call (it would take it for a new array).
    def array(self, x, memory):
        """The tangent of array ``x`` (a view into its root's tangent buffer), or None."""
        entry = self.buffers.get(memory.root_id(x))
        if entry is None:
            return None
        return memory.view(entry[0], x)

    def array_to_return(self, x, memory):
        """``array`` for a tangent handed back to the caller: never (a view of) an array the
        caller handed in (``jvp(lambda x: x, ...)`` returns a copy of the seed)."""
        entry = self.buffers.get(memory.root_id(x))
        if entry is None:
            return None
        tangent = memory.view(entry[0], x)
        if id(entry[0]) in self.borrowed:
            tangent = memory.copy(tangent)
        return tangent

    def has_array(self, x, memory):
        return memory.root_id(x) in self.buffers

    def array_for_write(self, x, memory):
        """The tangent of ``x``, created as zeros (for its whole root buffer) if it had none;
        None for arrays that cannot carry a derivative (integers)."""
        key = memory.root_id(x)
        entry = self.buffers.get(key)
        if entry is None:
            buf = memory.zeros(x)
            if buf is None:
                return None
            entry = (buf, x, True)   # x keeps its root alive: ids stay unique while the table lives
            self.buffers[key] = entry
            self.adopted.add(id(buf))
        elif not entry[2]:   # an adopted tangent: copied before it is written
            buf = memory.zeros(entry[1])
            memory.assign(buf, entry[0])
            entry = (buf, entry[1], True)
            self.buffers[key] = entry
            self.adopted.add(id(buf))
        return memory.view(entry[0], x)

    def set_array(self, x, tangent, memory, borrowed=False):
        """Record ``tangent`` as the tangent of array ``x`` (a fresh result or an input;
        ``borrowed``: the caller's own array, a seed)."""
        if tangent is None:
            return
        key = memory.root_id(x)
        if key == id(x) and key not in self.buffers and id(tangent) not in self.adopted:
            adoptable = getattr(memory, "adoptable", None)
            if adoptable is not None and adoptable(x, tangent):
                # no zero buffer and copy: the tangent itself, laid out like x, becomes the buffer
                self.buffers[key] = (tangent, x, False)
                self.adopted.add(id(tangent))
                if borrowed:
                    self.borrowed.add(id(tangent))
                return
        target = self.array_for_write(x, memory)
        if target is not None:
            memory.assign(target, tangent)

    # -- containers and objects ---------------------------------------------------
    def container(self, obj):
        entry = self.objects.get(id(obj))
        return None if entry is None else entry[1]

    def set_container(self, obj, tangent):
        self.objects[id(obj)] = (obj, tangent)

    def list_for_write(self, lst):
        entry = self.objects.get(id(lst))
        if entry is None or len(entry[1]) != len(lst):
            old = entry[1] if entry is not None else []
            t = list(old[:len(lst)]) + [None] * (len(lst) - len(old))
            self.objects[id(lst)] = (lst, t)
            return t
        return entry[1]

    def dict_for_write(self, obj):
        entry = self.objects.get(id(obj))
        if entry is None:
            entry = (obj, {})
            self.objects[id(obj)] = entry
        return entry[1]
