"""A charger's random stream: reproducible per seed, independent across chargers, small."""

from __future__ import annotations

import random
import statistics
import sys

from fleetsim.behaviour.random_stream import RandomStream


def test_the_same_seed_plays_the_same_stream_and_another_seed_another() -> None:
    first, again, other = RandomStream("0:CP00001"), RandomStream("0:CP00001"), RandomStream(
        "0:CP00002")
    a = [first.random() for _ in range(100)]
    assert a == [again.random() for _ in range(100)]
    assert a != [other.random() for _ in range(100)]


def test_draws_have_the_distributions_the_chargers_ask_for() -> None:
    rng = RandomStream("7:CP00042")
    uniform = [rng.random() for _ in range(50_000)]
    assert min(uniform) >= 0.0 and max(uniform) < 1.0
    assert abs(statistics.mean(uniform) - 0.5) < 0.01
    assert abs(statistics.pvariance(uniform) - 1 / 12) < 0.002
    assert abs(statistics.mean(rng.expovariate(4.0) for _ in range(50_000)) - 0.25) < 0.01
    assert abs(statistics.mean(rng.gauss(10.0, 2.0) for _ in range(50_000)) - 10.0) < 0.05
    faces = [rng.randint(1, 6) for _ in range(60_000)]
    assert set(faces) == {1, 2, 3, 4, 5, 6}
    assert all(abs(faces.count(face) - 10_000) < 500 for face in range(1, 7))
    assert 2.0 <= rng.uniform(2.0, 3.0) <= 3.0
    assert rng.choice("abc") in "abc"
    assert rng.randrange(0, 10, 5) in (0, 5)
    assert sorted(rng.sample(range(10), 10)) == list(range(10))
    assert rng.choices("ab", [0, 1], k=3) == ["b", "b", "b"]
    assert rng.lognormvariate(0.0, 1.0) > 0
    deck = list(range(20))
    rng.shuffle(deck)
    assert sorted(deck) == list(range(20)) and deck != list(range(20))
    assert rng.getrandbits(200) < 1 << 200


def test_a_stream_costs_a_fraction_of_a_random() -> None:
    assert sys.getsizeof(RandomStream("0:CP00001")) * 10 < sys.getsizeof(random.Random(0))
