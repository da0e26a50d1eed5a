"""A method callable on the class and on its instances."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")


class StoreOrClassMethod(classmethod, Generic[_T]):  # type: ignore[type-arg]
    """A method that works on the class (any store) and on an instance (its database).

    A ``classmethod`` that, called on an instance, receives the instance
    rather than its class. Being a ``classmethod`` is also how
    documentation tools see it: called mostly on the class.
    """

    def __init__(self, function: Callable[..., _T]) -> None:
        super().__init__(function)
        self.function = function
        self.__doc__ = function.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> Callable[..., _T]:
        return types.MethodType(self.function, owner if instance is None else instance)
