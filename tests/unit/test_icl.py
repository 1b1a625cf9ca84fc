import numpy as np

from ethoflow.icl import build_prompt, choose_exemplars


def test_prompt_lists_every_label_with_definition():
    p = build_prompt(["freezing", "fleeing"], {"freezing": "no movement but breathing"})
    assert "- freezing: no movement but breathing" in p
    assert "- fleeing: fleeing" in p and "- other:" in p


def test_rare_class_is_always_reached_and_choice_is_reproducible():
    y = [np.array([0] * 50 + [1] * 30), np.array([0] * 40 + [2] + [-1] * 5)]
    picks = choose_exemplars(y, per_class=2, n_classes=3, seed=1)
    labels = [int(y[s][i]) for s, i in picks]
    assert labels[0] == 2  # the rarest class comes first
    assert sorted(labels) == [0, 0, 1, 1, 2]
    assert picks == choose_exemplars(y, per_class=2, n_classes=3, seed=1)
    assert picks != choose_exemplars(y, per_class=2, n_classes=3, seed=2)
    assert choose_exemplars(y, per_class=0, n_classes=3, seed=1) == []


def test_covering_choice_spans_the_class_and_is_reproducible():
    # class 1 has three variants: 20 clips near (0, 0), 3 near (10, 0), 2 near (0, 10)
    rng = np.random.default_rng(0)
    centres = [(0, 0)] * 20 + [(10, 0)] * 3 + [(0, 10)] * 2
    x1 = np.asarray(centres, float) + rng.normal(0, 0.3, (25, 2))
    x0 = rng.normal(5, 0.3, (10, 2))
    y = [np.array([1] * 25), np.array([0] * 10 + [-1])]
    feats = [x1, np.r_[x0, [[99.0, 99.0]]]]  # the unlabelled outlier is never picked
    picks = choose_exemplars(y, per_class=3, n_classes=2, seed=0, features=feats)
    ones = [i for s, i in picks if s == 0]
    variants = {centres[i] for i in ones}
    assert len(ones) == 3 and variants == {(0, 0), (10, 0), (0, 10)}  # one of each variant
    assert centres[ones[0]] == (0, 0)  # the most typical clip first
    assert (1, 10) not in picks
    assert picks == choose_exemplars(y, per_class=3, n_classes=2, seed=0, features=feats)
    assert choose_exemplars(y, per_class=0, n_classes=2, seed=0, features=feats) == []
    # more exemplars than clips of a class: all of them, no repeats
    many = choose_exemplars(y, per_class=30, n_classes=2, seed=0, features=feats)
    assert sorted(many) == sorted(
        {(s, i) for s, yy in enumerate(y) for i in range(len(yy)) if yy[i] >= 0}
    )


def test_cover_with_uninformative_features_still_picks_distinct_clips():
    from ethoflow.icl import cover

    picks = cover(np.zeros((6, 0)), 4, np.random.default_rng(1))
    assert len(set(picks)) == 4 and all(0 <= i < 6 for i in picks)
    assert picks == cover(np.zeros((6, 0)), 4, np.random.default_rng(1))
