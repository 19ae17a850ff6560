"""eval.json aggregation over seeds and eval.md's layout (rows per model, difference rows, n/a reasons)."""

import pytest

from trainer.eval.report import aggregate, spread
from trainer.eval.tables import render_markdown


def _report(meteor_a: float, meteor_b: float, acc_a: float, acc_b: float) -> dict:
    rec_cell = lambda acc: {"accuracy": acc, "total": 10, "hits": int(acc * 10), "unparseable": 1}  # noqa: E731
    return {
        "models": {"llava": {"stage1": "a", "stage2": "b"}, "pad": {"stage1": "c", "stage2": "d"}},
        "captions": {"scores": {"llava": {"METEOR": meteor_a, "CIDEr": 0.5}, "pad": {"METEOR": meteor_b, "CIDEr": 0.7}},
                     "missing": {"SPICE": "Stanford CoreNLP models absent"}, "images": 10, "source": "c.json"},
        "rec": {"frame": "image", "threshold": 0.5,
                "splits": {"refcoco_val": {"llava": rec_cell(acc_a), "pad": rec_cell(acc_b)}},
                "average": {"llava": {"accuracy": acc_a}, "pad": {"accuracy": acc_b}}},
    }


def test_spread_is_population_std():
    s = spread([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx((2 / 3) ** 0.5)


def test_markdown_has_rows_differences_and_missing_reason():
    md = render_markdown(_report(0.1220, 0.1256, 0.5622, 0.6597))
    assert "| llava | 0.1220 | n/a | n/a | 0.5000 | n/a |" in md      # METEOR, ROUGE-L, SPICE, CIDEr, BLEU-4
    assert "| Δ pad − llava | +0.0036 | n/a | n/a | +0.2000 | n/a |" in md
    assert "SPICE: not computed: Stanford CoreNLP models absent" in md
    assert "| pad | 65.97 | 65.97 |" in md and "| Δ pad − llava | +9.75 | +9.75 |" in md
    assert "Unparseable answers (misses): llava: refcoco_val 1/10" in md


def test_aggregate_over_seeds_gives_mean_and_std():
    merged = aggregate([_report(0.1, 0.2, 0.5, 0.6), _report(0.3, 0.4, 0.7, 0.8)], seeds=[0, 1])
    meteor = merged["captions"]["scores"]["pad"]["METEOR"]
    assert meteor["mean"] == pytest.approx(0.3) and meteor["std"] == pytest.approx(0.1)
    assert merged["captions"]["missing"] == {"SPICE": "Stanford CoreNLP models absent"}
    md = render_markdown(merged)
    assert "Mean ± std over seeds [0, 1]." in md
    assert "| pad | 0.3000 ± 0.1000 |" in md
    assert "| pad | 70.00 ± 10.00 | 70.00 ± 10.00 |" in md
    assert merged["rec"]["threshold"] == 0.5 and "Acc@0.5 (%)" in md  # a setting, not averaged
