"""GPU budget: clips chosen to cover the most stage-1 mass, against hand-solved instances and
brute force."""

import itertools

import numpy as np
import pandas as pd
import pytest

from ethoflow import budget

# three overlapping clips: A = [0,10), B = [6,16), C = [12,22)
WINDOWS = [(0, 10), (6, 16), (12, 22)]
P = np.zeros(25)
P[0:10] = 1.0
P[10:12] = 1.5
P[12:22] = 1.0
# masses: A 10, B 4 + 3 + 4 = 11, C 10; A+C 20 (disjoint), A+B = B+C = 17. Greedy takes B
# first (17 at best); the optimum for two clips is A+C.
COST = 30.0  # GPU seconds per clip


def test_segments_between_clip_boundaries():
    bounds, mass, covers = budget.segments(WINDOWS, P)
    assert bounds.tolist() == [[0, 6], [6, 10], [10, 12], [12, 16], [16, 22]]
    assert mass.tolist() == [6, 4, 3, 4, 6]
    assert [c.tolist() for c in covers] == [[0], [0, 1], [1], [1, 2], [2]]


def test_two_of_three_overlapping_clips_by_hand():
    (mask,) = budget.select_clips([WINDOWS], [P], COST, 2 * COST)
    assert mask.tolist() == [True, False, True]
    (mask,) = budget.select_clips([WINDOWS], [P], COST, 2.9 * COST)  # still two clips
    assert mask.tolist() == [True, False, True]
    (mask,) = budget.select_clips([WINDOWS], [P], COST, COST)
    assert mask.tolist() == [False, True, False]  # the heaviest single clip, B


def test_the_budget_couples_sessions():
    # a second session with one clip of mass 15: two clips -> that one and B (26 > 20)
    p2 = np.zeros(50)
    p2[20:35] = 1.0
    w2 = pd.DataFrame({"start_frame": [20], "end_frame": [35]})
    m1, m2 = budget.select_clips([WINDOWS, w2], [P, p2], COST, 2 * COST)
    assert m1.tolist() == [False, True, False] and m2.tolist() == [True]


def test_zero_and_unlimited_budgets():
    assert budget.select_clips([WINDOWS], [P], COST, 0)[0].tolist() == [False] * 3
    assert budget.select_clips([WINDOWS], [P], COST, COST / 2)[0].tolist() == [False] * 3
    for unlimited in (None, float("inf"), 3 * COST):
        assert budget.select_clips([WINDOWS], [P], COST, unlimited)[0].tolist() == [True] * 3
    assert budget.select_clips([np.zeros((0, 2))], [np.zeros(5)], COST, COST)[0].size == 0


def test_redundant_and_worthless_clips_are_not_sent():
    p = np.zeros(40)
    p[0:20] = 1.0
    w = [(0, 10), (5, 15), (10, 20), (30, 40)]  # (5,15) lies in the other two; (30,40) has 0
    (mask,) = budget.select_clips([w], [p], COST, 3 * COST)
    assert mask.tolist() == [True, False, True, False]


def _best_by_brute_force(wins, ps, k):
    clips = [(i, c) for i, w in enumerate(wins) for c in range(len(w))]
    best = 0.0
    for r in range(min(k, len(clips)) + 1):
        for subset in itertools.combinations(clips, r):
            masks = [np.zeros(len(w), bool) for w in wins]
            for i, c in subset:
                masks[i][c] = True
            mass = sum(
                budget.covered_mass(w, p, m) for w, p, m in zip(wins, ps, masks, strict=True)
            )
            best = max(best, mass)
    return best


def test_matches_brute_force_on_random_instances():
    rng = np.random.default_rng(0)
    for _ in range(25):
        wins, ps = [], []
        for _ in range(rng.integers(1, 4)):
            n = 40
            starts = rng.integers(0, n - 5, rng.integers(1, 5))
            lengths = rng.integers(3, 15, len(starts))
            wins.append(np.stack([starts, np.minimum(starts + lengths, n)], 1))
            p = rng.random(n) * (rng.random(n) < 0.7)
            ps.append(p)
        n_clips = sum(len(w) for w in wins)
        k = int(rng.integers(0, n_clips + 1))
        masks = budget.select_clips(wins, ps, COST, k * COST)
        assert sum(int(m.sum()) for m in masks) <= k
        got = sum(budget.covered_mass(w, p, m) for w, p, m in zip(wins, ps, masks, strict=True))
        assert got == pytest.approx(_best_by_brute_force(wins, ps, k), abs=1e-6)


def test_tradeoff_recall_given_up_for_hours_saved():
    t = budget.tradeoff([WINDOWS], [P], COST, 2 * COST)
    # all mass (23) lies in the three clips; A + C cover 20 of it
    assert t["without_budget"] == pytest.approx((1.0, 3 * COST / 3600))
    assert t["with_budget"] == pytest.approx((20 / 23, 2 * COST / 3600))
    assert budget.tradeoff([WINDOWS], [P], COST, None)["with_budget"] == pytest.approx(
        (1.0, 3 * COST / 3600)
    )
