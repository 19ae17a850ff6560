"""The `pad analyze` table."""

from trainer.analysis.measure import format_table


def test_table_has_one_row_per_projector():
    rows = [{"projector": n, "H_before": 3.0, "H_after": h, "delta_H": h - 3.0, "align": a, "cos_sim": c,
             "labels": 10} for n, h, a, c in [("random", 2.5, 0.1, 0.05), ("pa", 2.0, 0.6, 0.7)]]
    table = format_table(rows).splitlines()
    assert len(table) == 4 and table[3].startswith("| pa | 3.000 | 2.000 | -1.000 | 0.600 | 0.700 | 10 |")
