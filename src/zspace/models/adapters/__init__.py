"""Adapters: models of other libraries seen through zspace's model protocol (:mod:`zspace.models.protocol`).

Each adapter is one module here, named after its library (an optional extra of the package, imported only when
used), exposing ``adapt(obj) -> ModelAdapter`` for an in-memory model of that library. :func:`adapt` picks the
adapter by the module the object's class comes from, so no library is imported to look at an object.
"""

from __future__ import annotations

import importlib
from typing import Any

# the library a model class comes from (its top-level module) -> the adapter module in this package
LIBRARIES: dict[str, str] = {
    "pythae": "zspace.models.adapters.pythae",
    "diffusers": "zspace.models.adapters.diffusers",
}


def library_of(obj: Any) -> str | None:
    """The library (a key of :data:`LIBRARIES`) whose class ``obj`` is an instance of, or None."""
    for cls in type(obj).__mro__:
        top = (cls.__module__ or "").split(".")[0]
        if top in LIBRARIES:
            return top
    return None


def adapt(obj: Any) -> Any:
    """``obj`` wrapped by its library's adapter (a :class:`~zspace.models.protocol.ModelAdapter`), or None when
    no adapter knows its class. The adapter refuses, in one line, a model of its library it cannot wrap."""
    lib = library_of(obj)
    if lib is None:
        return None
    module = importlib.import_module(LIBRARIES[lib])
    fn = getattr(module, "adapt", None)
    return fn(obj) if callable(fn) else None


__all__ = ["LIBRARIES", "adapt", "library_of"]
