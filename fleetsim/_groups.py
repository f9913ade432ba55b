"""Unwrapping trio's exception groups at the API edge.

trio nurseries always raise `ExceptionGroup`s; callers of fleetsim want the one error that
happened (a port in use, a bad certificate), as trio-websocket does for `open_websocket`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["leaves", "single_error"]


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """Every exception in a (nested) group, groups flattened away."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(leaves(exc))
        else:
            found.append(exc)
    return found


@contextmanager
def single_error() -> Iterator[None]:
    """Re-raise a group that holds exactly one real error as that error."""
    try:
        yield
    except BaseExceptionGroup as group:
        errors = [exc for exc in leaves(group) if not isinstance(exc, trio.Cancelled)]
        if len(errors) == 1:
            raise errors[0] from None
        raise
