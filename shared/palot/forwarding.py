"""``Forward``: a facade's method that is a part's method, written once.

A facade such as ``AgentService`` hands each call to the part that owns it. Written as a method, each hand-off
repeats the part's whole signature; ``name = Forward("_part", Part.name)`` gives the part's bound method
itself, with its signature and docstring (``help()``, ``inspect.signature`` and type checkers see them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

P = ParamSpec("P")
R = TypeVar("R")


class Forward(Generic[P, R]):
    """The method ``method`` of the object in the facade's attribute ``part``."""

    def __init__(self, part: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.part = part
        self.name = method.__name__
        functools.update_wrapper(self, method)  # type: ignore[arg-type] - copies the name and the docstring

    @overload
    def __get__(self, facade: None, owner: type | None = None) -> Forward[P, R]: ...

    @overload
    def __get__(self, facade: object, owner: type | None = None) -> Callable[P, R]: ...

    def __get__(self, facade: object | None, owner: type | None = None) -> Forward[P, R] | Callable[P, R]:
        if facade is None:
            return self
        method: Callable[P, R] = getattr(getattr(facade, self.part), self.name)
        return method
