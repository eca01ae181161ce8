"""Evaluation results as plain-text (markdown) tables and a PNG plot."""
from __future__ import annotations

import math
from pathlib import Path

from phoenix.actions import BINARY_ACTION_NAMES

RANKER_METHODS = ("model", "random", "most_popular", "most_recent")


def _fmt(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _table(headers: list[str], rows: list[list]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join(lines)


def ranker_table(evaluation: dict) -> str:
    """Per action: held-out positives, then AUC and log-loss of each method."""
    methods = [m for m in RANKER_METHODS if m in evaluation["methods"]]
    headers = ["action", "positives"] + [f"{m} AUC" for m in methods] + [f"{m} logloss" for m in methods]
    rows = []
    for action in BINARY_ACTION_NAMES:
        per = {m: evaluation["methods"][m][action] for m in methods}
        if per[methods[0]]["positives"] == 0:
            continue
        rows.append([action, per[methods[0]]["positives"]] + [per[m]["auc"] for m in methods]
                    + [per[m]["log_loss"] for m in methods])
    return (f"Ranker, held-out ({evaluation['test_candidates']} candidates)\n\n" + _table(headers, rows))


def retriever_table(evaluation: dict) -> str:
    methods = list(evaluation["methods"])
    keys = [k for k in evaluation["methods"][methods[0]] if k != "queries"]
    rows = [[m] + [evaluation["methods"][m][k] for k in keys] for m in methods]
    return (f"Retriever, held-out ({evaluation['test_queries']} engagements, corpus {evaluation['corpus']} posts)\n\n"
            + _table(["method"] + keys, rows))


def plot(ranker_eval: dict | None, retriever_eval: dict | None, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in (ranker_eval, retriever_eval) if p is not None]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 4.5 * len(panels)), squeeze=False)
    row = 0
    if ranker_eval is not None:
        ax = axes[row][0]
        methods = [m for m in RANKER_METHODS if m in ranker_eval["methods"]]
        actions = [a for a in BINARY_ACTION_NAMES
                   if not math.isnan(ranker_eval["methods"][methods[0]][a]["auc"])]
        width = 0.8 / len(methods)
        for i, m in enumerate(methods):
            ax.bar([x + i * width for x in range(len(actions))],
                   [ranker_eval["methods"][m][a]["auc"] for a in actions], width, label=m)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(actions))], actions, rotation=45, ha="right")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0.3, 1.0)
        ax.set_ylabel("held-out ROC-AUC")
        ax.set_title("Ranker: per-action ROC-AUC")
        ax.legend(ncol=len(methods))
        row += 1
    if retriever_eval is not None:
        ax = axes[row][0]
        methods = list(retriever_eval["methods"])
        keys = [k for k in retriever_eval["methods"][methods[0]] if k != "queries"]
        width = 0.8 / len(methods)
        for i, m in enumerate(methods):
            ax.bar([x + i * width for x in range(len(keys))],
                   [retriever_eval["methods"][m][k] for k in keys], width, label=m)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(keys))], keys)
        ax.set_ylabel("held-out value")
        ax.set_title("Retriever: recall@K and NDCG@K")
        ax.legend(ncol=len(methods))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
