"""Dealing a command mix like cards, for the embedded CSMS's commands in either OCPP version."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping

__all__ = ["Deck"]


class Deck:
    """Deals a mix's actions like cards: each round holds every action as many times as its
    weight, shuffled, so that the mix is exact and every round sends the whole catalogue,
    a few hundred commands long (random draws leave the rare actions out of most short runs).
    """

    __slots__ = ("_cards", "_mix", "_rng")

    def __init__(self, mix: Mapping[str, int], rng: random.Random) -> None:
        self._mix = mix
        self._rng = rng
        self._cards: list[str] = []

    def deal(self, skip: Collection[str] = ()) -> str:
        """The next action, passing over those in `skip` (they cannot be sent now); they stay
        in the round for another charger, and are dropped with it if none takes them."""
        for _ in range(2):
            cards = self._cards
            for index in range(len(cards) - 1, -1, -1):
                if cards[index] not in skip:
                    return cards.pop(index)
            self._cards = [action for action, n in self._mix.items() for _ in range(n)]
            self._rng.shuffle(self._cards)
        raise ValueError("every action of the mix is skipped")
