"""Evaluation results as plain-text (markdown) tables and a PNG plot."""
from __future__ import annotations

import math
from pathlib import Path

from phoenix.actions import BINARY_ACTION_NAMES

RANKER_METHODS = ("model", "random", "most_popular", "most_recent", "user_item_bias", "content", "oracle")


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


def _methods(methods: dict) -> list[str]:
    return [m for m in RANKER_METHODS if m in methods] + [m for m in methods if m not in RANKER_METHODS]


def ranker_table(evaluation: dict) -> str:
    """Per action: held-out positives, then AUC and log-loss of each method."""
    methods = _methods(evaluation["methods"])
    headers = ["action", "positives"] + [f"{m} AUC" for m in methods] + [f"{m} logloss" for m in methods]
    rows = []
    for action in BINARY_ACTION_NAMES:
        per = {m: evaluation["methods"][m][action] for m in methods}
        if per[methods[0]]["positives"] == 0:
            continue
        rows.append([action, per[methods[0]]["positives"]] + [per[m]["auc"] for m in methods]
                    + [per[m]["log_loss"] for m in methods])
    return (f"Ranker, held-out ({evaluation['test_candidates']} candidates)\n\n" + _table(headers, rows))


def ranker_segment_table(evaluation: dict, action: str = "favorite") -> str:
    """One action, every method, on all / warm / cold candidates."""
    segs = evaluation["segments"]
    methods = _methods(segs["all"]["methods"])
    oracle = "oracle" in methods
    headers = (["method", "AUC all", "AUC warm", "AUC cold", "PR-AUC all", "PR-AUC cold", "RCE all", "RCE cold",
                "calib all", "NDCG/user all", "NDCG/user cold"] + (["lift all", "lift cold"] if oracle else []))
    rows = []
    for m in methods:
        a, w, c = (segs[s]["methods"][m][action] for s in ("all", "warm", "cold"))
        row = [m, a["auc"], w["auc"], c["auc"], a["pr_auc"], c["pr_auc"], a["rce"], c["rce"], a["calibration"],
               segs["all"]["favorite_ndcg_per_user"][m], segs["cold"]["favorite_ndcg_per_user"][m]]
        if oracle:
            row += [a.get("lift_share", float("nan")), c.get("lift_share", float("nan"))]
        rows.append(row)
    counts = ", ".join(f"{s} {segs[s]['candidates']} ({segs[s]['methods'][methods[0]][action]['positives']} positive)"
                       for s in ("all", "warm", "cold"))
    return (f"Ranker, {action} by segment (candidates: {counts}; cold = post never seen before the cutoff; "
            f"RCE in %, calib = sum pred / sum labels"
            + ("; lift = (AUC - 0.5) / (AUC_oracle - 0.5)" if oracle else "") + ")\n\n" + _table(headers, rows))


def ranker_model_table(evaluation: dict) -> str:
    """The model per action: every metric, all and cold."""
    segs = evaluation["segments"]
    headers = ["action", "positives", "AUC", "AUC cold", "PR-AUC", "logloss", "RCE", "RCE cold", "calib"]
    rows = []
    for action in BINARY_ACTION_NAMES:
        a, c = segs["all"]["methods"]["model"][action], segs["cold"]["methods"]["model"][action]
        if a["positives"]:
            rows.append([action, a["positives"], a["auc"], c["auc"], a["pr_auc"], a["log_loss"], a["rce"], c["rce"],
                         a["calibration"]])
    return "Ranker model, every action (held-out)\n\n" + _table(headers, rows)


def retriever_table(evaluation: dict) -> str:
    methods = list(evaluation["methods"])
    keys = [k for k in evaluation["methods"][methods[0]] if k != "queries"]
    rows = [[m] + [evaluation["methods"][m][k] for k in keys] for m in methods]
    return (f"Retriever, held-out ({evaluation['test_queries']} engagements, corpus {evaluation['corpus']} posts)\n\n"
            + _table(["method"] + keys, rows))


def _retrieval_segment_table(title: str, segments: dict, ks, hit: str = "recall") -> str:
    """`hit`: what to call recall@K (with one target per query it is the hit rate, HR@K)."""
    methods = list(segments["all"])
    headers = (["method"] + [f"{n}@{k}" for k in ks for n in (hit, "ndcg")]
               + [f"{hit}@{ks[0]} warm", f"{hit}@{ks[0]} cold"])
    rows = []
    for m in methods:
        a = segments["all"][m]
        rows.append([m] + [a[f"{n}@{k}"] for k in ks for n in ("recall", "ndcg")]
                    + [segments["warm"][m][f"recall@{ks[0]}"], segments["cold"][m][f"recall@{ks[0]}"]])
    n = {s: segments[s][methods[0]]["queries"] for s in ("all", "warm", "cold")}
    return f"{title} (queries: all {n['all']}, warm {n['warm']}, cold {n['cold']})\n\n" + _table(headers, rows)


def full_report(results: dict) -> str:
    parts = []
    if "ranker" in results:
        r = results["ranker"]
        parts.append(f"{r['checkpoint']}: " + ranker_table(r))
        if "segments" in r:
            parts += [ranker_segment_table(r), ranker_model_table(r)]
        parts += r.get("notes", [])
    if "retriever" in results:
        r = results["retriever"]
        if "segments" not in r:
            parts.append(f"{r['checkpoint']}: " + retriever_table(r))
        else:
            parts.append(_retrieval_segment_table(
                f"{r['checkpoint']}: Retriever, time split, full corpus", r["segments"], (10, 50, 100))
                + f"\n\n{r['queries_note']}")
            lolo = r["leave_last_out"]
            parts.append(_retrieval_segment_table("Retriever, leave-last-out, full corpus (HR = recall with one target)",
                                                  lolo["segments"], (10, 50), hit="HR")
                         + f"\n\n{lolo['note']}")
    return "\n\n".join(parts) + "\n"


def plot(ranker_eval: dict | None, retriever_eval: dict | None, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if ranker_eval is not None:
        panels.append("ranker")
        if "segments" in ranker_eval:
            panels.append("ranker_segments")
    if retriever_eval is not None:
        panels.append("retriever")
        if "leave_last_out" in retriever_eval:
            panels.append("lolo")
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 4.5 * len(panels)), squeeze=False)

    def bars(ax, methods, groups, value, ylabel, title, hline=None):
        width = 0.8 / max(len(methods), 1)
        for i, m in enumerate(methods):
            ax.bar([x + i * width for x in range(len(groups))], [value(m, g) for g in groups], width, label=m)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups, rotation=30, ha="right")
        if hline is not None:
            ax.axhline(hline, color="grey", lw=0.8, ls="--")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(ncol=min(len(methods), 7), fontsize=8)

    ranker: dict = ranker_eval or {}     # (a panel is drawn only for what was evaluated)
    retriever: dict = retriever_eval or {}
    for ax, panel in zip((a[0] for a in axes), panels):
        if panel == "ranker":
            methods = _methods(ranker["methods"])
            actions = [a for a in BINARY_ACTION_NAMES if not math.isnan(ranker["methods"][methods[0]][a]["auc"])]
            bars(ax, methods, actions, lambda m, a: ranker["methods"][m][a]["auc"], "held-out ROC-AUC",
                 "Ranker: per-action ROC-AUC (all posts)", 0.5)
            ax.set_ylim(0.3, 1.0)
        elif panel == "ranker_segments":
            segs = ranker["segments"]
            methods = _methods(segs["all"]["methods"])
            bars(ax, methods, list(segs), lambda m, s: segs[s]["methods"][m]["favorite"]["auc"], "favorite ROC-AUC",
                 "Ranker: favorite AUC on all / warm / cold posts", 0.5)
            ax.set_ylim(0.3, 1.0)
        elif panel == "retriever":
            res = retriever["methods"]
            methods = list(res)
            keys = [k for k in res[methods[0]] if k != "queries"]
            bars(ax, methods, keys, lambda m, k: res[m][k], "held-out value", "Retriever, time split: recall@K, NDCG@K")
        else:
            segs = retriever["leave_last_out"]["segments"]
            methods = list(segs["all"])
            keys = [k for k in segs["all"][methods[0]] if k != "queries"]
            bars(ax, methods, keys, lambda m, k: segs["all"][m][k], "value",
                 "Retriever, leave-last-out, full corpus: HR@K, NDCG@K")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
