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
