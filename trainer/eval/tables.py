"""`eval.md`: the report laid out as the paper's tables, the models side by side with their differences.

Table 4 (captions of the stage-1 model: METEOR, ROUGE-L, SPICE, then CIDEr and BLEU-4), Table 5 (REC Acc@0.5 in
percent per split and their average), Tables 6-7 (lmms-eval's VQA and instruction-following benchmarks, in
the paper's columns) and Table 8 (every other lmms-eval task asked for). Each table has a row per model and,
for every model after the first, a row of its difference to the first (the baseline). Over several seeds a
cell reads `mean ± std`. What could not be measured is written where its number would be, with the reason.
"""

from __future__ import annotations

from typing import Any, Sequence

from trainer.eval.lmms_paper import PAPER_TASKS
from trainer.eval.report import Report, value_of

CAPTION_COLUMNS = (("METEOR", "METEOR"), ("ROUGE_L", "ROUGE-L"), ("SPICE", "SPICE"), ("CIDEr", "CIDEr"),
                   ("Bleu_4", "BLEU-4"))

TABLE_TITLES = {6: "Table 6: visual question answering", 7: "Table 7: instruction following"}


def _cell(cell: Any, scale: float, digits: int) -> str:
    if isinstance(cell, dict) and "std" in cell:
        return f"{cell['mean'] * scale:.{digits}f} ± {cell['std'] * scale:.{digits}f}"
    value = value_of(cell)
    return "n/a" if value is None else f"{value * scale:.{digits}f}"


def _delta(a: Any, b: Any, scale: float, digits: int) -> str:
    va, vb = value_of(a), value_of(b)
    return "n/a" if va is None or vb is None else f"{(vb - va) * scale:+.{digits}f}"


def _table(models: Sequence[str], columns: Sequence[str], cells: dict[str, list[Any]], scale: float = 1.0,
           digits: int = 4) -> list[str]:
    """Markdown rows: a header, one row per model, then one difference row per model after the first."""
    lines = ["| Model | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    lines += [f"| {m} | " + " | ".join(_cell(c, scale, digits) for c in cells[m]) + " |" for m in models]
    base = models[0]
    for m in models[1:]:
        lines.append(f"| Δ {m} − {base} | "
                     + " | ".join(_delta(a, b, scale, digits) for a, b in zip(cells[base], cells[m], strict=True))
                     + " |")
    return lines


def _captions(report: Report, models: list[str]) -> list[str]:
    part = report["captions"]
    shown = [m for m in models if m in part["scores"]]
    if not shown:
        return []
    cells = {m: [part["scores"][m].get(key) for key, _ in CAPTION_COLUMNS] for m in shown}
    lines = [f"## Table 4: captions of the stage-1 model (frozen LLM, `plain` template, greedy), "
             f"{_count(part['images'])} images of `{part['source']}`", ""]
    lines += _table(shown, [label for _, label in CAPTION_COLUMNS], cells)
    lines += [""] + [f"- {metric}: not computed: {why}" for metric, why in part.get("missing", {}).items()]
    return lines


def _count(value: Any) -> str:
    return str(int(value_of(value) or 0))


def _rec(report: Report, models: list[str]) -> list[str]:
    part = report["rec"]
    splits = list(part["splits"])
    shown = [m for m in models if all(m in part["splits"][s] for s in splits)]
    if not shown:
        return []
    frame = part["frame"]
    key = "accuracy"
    lines = [f"## Table 5: referring-expression comprehension, Acc@{part['threshold']} (%)", ""]

    def rows(metric: str) -> list[str]:
        cells = {m: [part["splits"][s][m].get(metric) for s in splits] + [part["average"][m].get(metric)]
                 for m in shown}
        return _table(shown, [*splits, "Avg"], cells, scale=100.0, digits=2)

    lines += rows(key)
    lines += ["", f"Boxes read in the `{frame}` frame ("
              + ("x / width, y / height of the original image: LLaVA-1.5's RefCOCO data" if frame == "image" else
                 "the padded square of `image_aspect: pad`") + "). Unparseable answers (misses): "
              + "; ".join(f"{m}: " + ", ".join(f"{s} {_count(part['splits'][s][m]['unparseable'])}/"
                                               f"{_count(part['splits'][s][m]['total'])}" for s in splits)
                          for m in shown)]
    if frame != "image":
        lines += ["", "The same answers as lmms-eval's `refcoco_bbox_rec` reads them (image frame):", ""]
        lines += rows("accuracy_image_frame")
    return lines


def _lmms(report: Report, models: list[str]) -> list[str]:
    part = report["lmms_eval"]
    scores, headline = part["scores"], part["headline"]
    asked = list(part["tasks"])
    lines: list[str] = []
    tables = [(title, [(t.task, t.benchmark) for t in PAPER_TASKS if t.table == number and t.task in asked])
              for number, title in TABLE_TITLES.items()]
    paper = {t.task for t in PAPER_TASKS}
    tables.append(("Table 8: other lmms-eval tasks", [(t, t) for t in asked if t not in paper]))
    for title, cols in tables:
        if not cols:
            continue
        shown = [m for m in models if m in scores]
        cells = {m: [scores[m].get(t, {}).get(headline.get(t, "")) for t, _ in cols] for m in shown}
        labels = [f"{label} ({headline.get(t, '?')})" for t, label in cols]
        lines += [f"## {title} (lmms-eval {part.get('version', '')}, `llava_hf` on each model's HF export)", ""]
        lines += _table(shown, labels, cells) + [""]
    return lines


def render_markdown(report: Report) -> str:
    models = list(report["models"])
    lines = ["# pad eval", ""]
    if report.get("seeds"):
        lines += [f"Mean ± std over seeds {report['seeds']}.", ""]
    lines += ["| Model | stage 1 | stage 2 |", "| --- | --- | --- |"]
    lines += [f"| {m} | {s.get('stage1') or '—'} | {s.get('stage2') or '—'} |" for m, s in report["models"].items()]
    for section, render in (("captions", _captions), ("rec", _rec), ("lmms_eval", _lmms)):
        if report.get(section):
            lines += [""] + render(report, models)
    return "\n".join(lines).rstrip() + "\n"
