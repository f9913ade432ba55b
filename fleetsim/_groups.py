"""Unwrapping trio's exception groups at the API edge.

trio nurseries always raise `ExceptionGroup`s; callers of fleetsim want the one error that
happened (a port in use, a bad certificate), as trio-websocket does for `open_websocket`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["single_error"]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaves(exc))
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves


@contextmanager
def single_error() -> Iterator[None]:
    """Re-raise a group that holds exactly one real error as that error."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
