"""A method callable on the class and on its instances."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")


class StoreOrClassMethod(Generic[_T]):
    """A method that works on the class (any store) and on an instance (its database)."""

    def __init__(self, function: Callable[..., _T]) -> None:
        self.function = function
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def __get__(self, instance: Any, owner: type) -> Callable[..., _T]:
        return types.MethodType(self.function, owner if instance is None else instance)
