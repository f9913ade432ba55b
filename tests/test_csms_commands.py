"""Every CALL the embedded CSMS can send with `--commands`, in both versions, sans-IO: the
whole catalogue of each, every request checked against the official schemas shipped by the
`ocpp` package, and the `Deck` that deals them."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from fleetsim.csms.commands_16 import MIX, pick_command
from fleetsim.csms.commands_201 import MIX_201, NEEDS_TRANSACTION_201, pick_command_201
from fleetsim.csms.deck import Deck
from fleetsim.ocpp import v16, v201

from .schemas import SCHEMAS_16, validator_16, validator_201

WALL = 1_764_000_000.0
CSMS_ACTIONS_16 = v16.CSMS_ACTIONS
"""The 19 CSMS-initiated OCPP 1.6 actions."""


def test_the_mixes_are_the_whole_catalogues() -> None:
    assert set(MIX) == CSMS_ACTIONS_16 and len(MIX) == 19
    assert set(MIX_201) == v201.CSMS_ACTIONS and len(MIX_201) == 40
    for action in MIX:
        assert SCHEMAS_16.joinpath(f"{action}.json").is_file(), action
    assert all(weight >= 1 for weight in (*MIX.values(), *MIX_201.values()))


@pytest.mark.parametrize("action", sorted(MIX))
def test_every_1_6_command_validates(action: str) -> None:
    rng = random.Random(action)
    for transactions in (set(), {17, 42}):
        for _ in range(50):
            picked, payload = pick_command(rng, transactions, WALL, action=action)
            assert picked == action
            validator_16(action).validate(payload)


@pytest.mark.parametrize("action", sorted(MIX_201))
def test_every_2_0_1_command_validates(action: str) -> None:
    rng = random.Random(action)
    for transactions in ([], ["tx-17", "tx-42"]):
        if action in NEEDS_TRANSACTION_201 and not transactions:
            with pytest.raises(ValueError, match="needs a running transaction"):
                pick_command_201(rng, transactions, WALL, action=action)
            continue
        for _ in range(50):
            picked, payload = pick_command_201(rng, transactions, WALL, action=action)
            assert picked == action
            validator_201(f"{action}Request").validate(payload)
            if "transactionId" in payload:
                assert payload["transactionId"] in transactions, payload


def test_drawn_by_weight_without_a_deck() -> None:
    rng = random.Random(5)
    seen_16 = Counter(pick_command(rng, set(), WALL)[0] for _ in range(3000))
    assert set(seen_16) <= set(MIX) and seen_16["Reset"] < seen_16["GetConfiguration"] / 10
    idle = {pick_command_201(rng, (), WALL)[0] for _ in range(3000)}
    assert idle <= set(MIX_201) - NEEDS_TRANSACTION_201


def test_a_round_of_the_deck_deals_the_mix_exactly() -> None:
    deck = Deck(MIX_201, random.Random(3))
    size = sum(MIX_201.values())
    for _ in range(3):
        assert Counter(deck.deal() for _ in range(size)) == MIX_201
    rounds = [[deck.deal() for _ in range(size)] for _ in range(2)]
    assert rounds[0] != rounds[1]  # shuffled anew


def test_the_deck_keeps_skipped_actions_for_a_charger_that_can_take_them() -> None:
    mix = {"GetVariables": 3, "RequestStopTransaction": 2}
    deck = Deck(mix, random.Random(1))
    without = [deck.deal(NEEDS_TRANSACTION_201) for _ in range(3)]
    assert without == ["GetVariables"] * 3
    assert [deck.deal(), deck.deal()] == ["RequestStopTransaction"] * 2
    for _ in range(3):
        assert deck.deal(NEEDS_TRANSACTION_201) == "GetVariables"
    # a charger without a transaction when only RequestStops are left starts the next round:
    # they are dropped, and the command rate holds
    assert deck.deal(NEEDS_TRANSACTION_201) == "GetVariables"
    assert Counter(deck.deal() for _ in range(4)) == {"GetVariables": 2,
                                                      "RequestStopTransaction": 2}
    with pytest.raises(ValueError, match="every action of the mix is skipped"):
        Deck({"CostUpdated": 1}, random.Random(1)).deal(NEEDS_TRANSACTION_201)
