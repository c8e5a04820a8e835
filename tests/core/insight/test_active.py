"""Active learning: the uncertainty order with diversity beats random on real digits; the loop's undo,
skip and proposals behave as the labelling view needs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tl_desktop.core.data.labels import Labels
from tl_desktop.core.insight import active
from tl_desktop.core.insight.labelling_simulation import held_out, simulate


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's real handwritten digits: 1,797 images, 10 classes; the 64 grey levels as features."""
    data = load_digits()
    return data.data.astype(np.float32) / 16.0, np.array([f"d{t}" for t in data.target])


def test_uncertainty_with_diversity_is_at_or_above_random_at_every_budget(digits):
    x, y = digits
    budgets = (20, 40, 60)
    smart = simulate(x, y, "uncertainty", budgets, seeds=2)
    chance = simulate(x, y, "random", budgets, seeds=2)
    assert smart.pool == chance.pool and smart.test == chance.test  # one fixed held-out part
    for budget in budgets:
        assert smart.mean(budget) >= chance.mean(budget), (budget, smart.mean(budget), chance.mean(budget))
    assert smart.mean(20) > chance.mean(20) + 0.05  # typical images first: every class seen early
    assert [p.labels for p in smart.points] == [20, 40, 60, 20, 40, 60] and {p.seed for p in smart.points} == {0, 1}
    assert 0.9 < smart.full_accuracy <= 1.0


def test_a_batch_is_diverse_not_ten_near_identical_images(digits):
    x, y = digits
    rows = np.arange(200)
    # 60 exact copies of one image among the candidates: margin sampling alone would take several of them
    xx = np.concatenate([x[:200], np.repeat(x[200:201], 60, axis=0)])
    proba = np.full((260, 2), 0.5)
    proba[:200, 0], proba[:200, 1] = 0.9, 0.1     # the copies are the most uncertain
    proba[:200] += np.linspace(0, 0.05, 200)[:, None] * np.array([1, -1])
    picked = active.choose(xx, np.arange(260), 10, proba=proba, seed=0)
    assert len(picked) == len(set(picked)) == 10
    assert sum(i >= 200 for i in picked) <= 2  # one cluster of copies, not ten picks of them
    cold = active.choose(x, rows, 10, seed=0)
    assert len(set(y[cold])) >= 6  # before any label: typical images of many classes


def test_the_held_out_part_is_stratified_and_fixed(digits):
    _, y = digits
    pool, test = held_out(y, 0.3, 0)
    again, test2 = held_out(y, 0.3, 0)
    assert np.array_equal(test, test2) and not set(pool) & set(test)
    shares = {c: np.mean(y[test] == c) for c in np.unique(y)}
    assert max(shares.values()) - min(shares.values()) < 0.02


def test_the_loop_proposes_after_two_classes_and_undo_goes_back_step_by_step(digits):
    x, y = digits
    paths = [f"img_{i:04d}.png" for i in range(300)]
    labels = Labels(classes=["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9"])
    loop = active.LabellingLoop(paths, labels, x[:300], order="uncertainty")
    assert loop.suggestion(paths[0]) is None
    first = loop.queue(10)
    assert len(first) == 10 and len(set(first)) == 10
    for path in first:
        loop.answer(path, y[loop.row[path]])
    assert loop.wants_fit()
    fitted = active.fit(*loop.fit_inputs())
    loop.take(fitted)
    assert fitted.proba is not None and fitted.estimate.labels == 10  # orders the queue from the first fit
    if not fitted.proposes:  # proposals once two classes have two labels each
        assert loop.suggestion(loop.current()) is None
        for path in loop.queue(5):
            loop.answer(path, y[loop.row[path]])
            first.append(path)
        assert loop.wants_fit()
        loop.take(active.fit(*loop.fit_inputs()))
        assert loop.fitted.proposes
    nxt = loop.current()
    assert nxt not in first
    proposed, p = loop.suggestion(nxt)
    assert proposed in labels.classes and 0 < p <= 1
    loop.not_sure(nxt)
    loop.skip(loop.current())
    skipped = loop.skipped[0]
    assert labels.state_of(nxt) == ("not-sure", None)
    assert loop.undo() == nxt and labels.state_of(nxt) == ("open", None)
    assert loop.current() == nxt  # the undone image is shown again
    assert loop.undo() == first[-1] and first[-1] not in labels.assigned
    assert loop.progress()["labelled"] == len(first) - 1 and loop.progress()["open"] == 300 - len(first) + 1
    assert skipped not in loop.queue(5)  # skipped images wait until every other open image was seen


def test_the_estimate_says_when_labels_stop_paying_off(digits):
    x, y = digits
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    curve: list[tuple[int, float]] = []
    for n in (40, 80, 160, 320, 640):
        fitted = active.fit(x, order[:n], y[order[:n]], curve)
        curve = fitted.estimate.curve
    assert [c[0] for c in curve] == [40, 80, 160, 320, 640]
    assert curve[-1][1] > 0.9 and fitted.estimate.folds == 5
    assert fitted.estimate.low < fitted.estimate.accuracy < fitted.estimate.high  # Wilson, on 640 labels
    assert fitted.estimate.words().startswith(f"{100 * fitted.estimate.accuracy:.0f} % (95 % interval ")
    assert fitted.estimate.answer in ("unlikely", "maybe")  # 320 -> 640 digits gains little
    early = active.fit(x, order[:80], y[order[:80]], curve[:1]).estimate
    assert early.answer == "likely" and "still pay off" in early.sentence
    rough = active.fit(x, order[:20], y[order[:20]], [(10, 0.9)]).estimate
    assert rough.answer == "unknown" and "rough estimate from 20 labels" in rough.sentence  # no verdict on noise
    assert active.answer([(35, 0.9)]) == ("unknown", "Whether more labels still pay off shows after the next few "
                                                     "labels.")  # reopened: one estimate, no gain yet
    none = active.fit(x, order[:3], y[order[:3]]).estimate
    assert none.accuracy is None and "at least 2" in none.sentence


def test_sequential_and_random_orders(digits):
    x, _ = digits
    paths = [f"{i}.png" for i in range(50)]
    loop = active.LabellingLoop(paths, Labels(classes=["a"]), x[:50], order="sequential")
    assert loop.queue(3) == paths[:3]
    loop.set_order("random")
    shuffled = loop.queue(10)
    assert shuffled != paths[:10] and len(set(shuffled)) == 10
    with pytest.raises(ValueError):
        loop.set_order("smart")
