"""Exceptions raised by django-keyval.

Every exception derives from :class:`KeyValError`, and also from the built-in
exception a caller would naturally catch (``KeyError`` for a missing key,
``TypeError`` and ``ValueError`` for bad input), so existing ``except``
clauses keep working.
"""

from __future__ import annotations


class KeyValError(Exception):
    """Base class of every exception raised by django-keyval."""


class KeyNotFoundError(KeyValError, KeyError):
    """Raised when a key is missing (or expired) in a store."""

    def __str__(self) -> str:
        # KeyError.__str__ shows repr(message); a sentence reads better.
        return str(self.args[0]) if self.args else ""


class StoreDisconnectedError(KeyValError, NameError):
    """Raised when a store is used after :meth:`~django_keyval.models.KeyVal.disconnect`."""


class ArgumentTypeError(KeyValError, TypeError):
    """Raised when an argument (a key, name, timeout, delta, alias...) has the wrong type."""


class InvalidKeyError(KeyValError, ValueError):
    """Raised for a key, store name or database alias that cannot be used (too long, unknown...)."""


class InvalidTimeoutError(KeyValError, ValueError):
    """Raised when a timeout is negative, NaN or infinite."""


class ValueTooLargeError(KeyValError, ValueError):
    """Raised when a serialized value is larger than ``KEYVAL_MAX_VALUE_SIZE``."""


class SerializationError(KeyValError, TypeError):
    """Raised when a value cannot be serialized; the original error is its ``__cause__``."""


class InvalidSerializerError(KeyValError, ValueError):
    """Raised for a serializer that cannot be imported, lacks the methods or has a reserved name."""


class DeserializationError(KeyValError, ValueError):
    """Raised when stored bytes cannot be turned back into a value."""


class BadSignatureError(DeserializationError):
    """Raised when a pickled value fails its signature check; it is never unpickled."""


class NotAnIntegerError(KeyValError, TypeError):
    """Raised by ``incr``/``decr`` when the stored value is not an integer."""


class CounterOverflowError(KeyValError, OverflowError):
    """Raised by ``incr``/``decr`` when the result would not fit in a signed 64-bit integer."""


class TransferError(KeyValError, ValueError):
    """Raised when a pair cannot be exported or a line cannot be imported; names which."""


class PairChangedError(KeyValError, RuntimeError):
    """Raised when the admin would save over a pair that changed since its page was shown."""


class InvalidArgumentError(KeyValError, ValueError):
    """Raised for an argument of the right type whose value cannot be used (a negative version)."""


class UpdateConflictError(KeyValError, RuntimeError):
    """Raised by ``update`` when other writers changed the pair first on every one of its tries."""


class LockNotOwnedError(KeyValError, RuntimeError):
    """Raised when a lock is released or extended by a ``Lock`` that no longer holds its lease."""


class LockAlreadyHeldError(KeyValError, RuntimeError):
    """Raised when ``acquire()`` is called on a ``Lock`` that holds its lease already."""


class LockTimeoutError(KeyValError, TimeoutError):
    """Raised when ``with kv.lock(...)`` cannot acquire the lock within its ``blocking_timeout``."""


class InvalidOperationsError(KeyValError, ValueError):
    """Raised when ``KEYVAL_OPERATIONS`` names no usable operations class for a database."""
