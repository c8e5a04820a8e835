"""The report of a multi-label run (several findings per image, each present or absent), from its evaluation.

A multi-label evaluation (``clinical.json`` with ``task: "multi-label"``, ``core.evaluation.multilabel_run``) has no
confusion matrix, no single class of interest and no temperature: page 1 leads with exact match, the mean AUC and
the plain lines of ``multilabel.summary_lines``, then the per-finding table (``multilabel_run.table_rows``: the
same cells as the Evaluate step's findings table) and how the thresholds were chosen; a later page has every
finding's ROC and precision-recall curves. The model card and checklist read ``card_evaluation`` and
``card_evaluation_html``; the audit folder gets ``findings.json`` (``audit_json``). Every number is read from the
stored evaluation.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tl_desktop.core.evaluation import multilabel_run
from tl_desktop.core.evaluation.multilabel import summary_lines
from tl_desktop.report import figures as fg
from tl_desktop.report.document import esc, figure, pct, side_by_side, table, with_ci

NONE = "no finding"
SUBSETS = ("train", "val", "test")
# the Evaluate step's table (multilabel_run.table_rows) with the two counts in one column, to fit the page
HEADINGS = ["Finding", "Test images with / without it", "AUC (95% CI)", "AP", "Threshold",
            "Sensitivity (95% CI)", "Specificity (95% CI)"]
WIDTHS = [72, 70, 96, 60, 84, 112, 112]
NO_HEATMAPS = ("Grad-CAM examples are not included in the report of a multi-label run; the Evaluate step shows, "
               "for any test image, what speaks for each finding.")
NO_SUBGROUPS = ("The subgroup breakdown is made for single-label runs only: the figures of this multi-label run are "
                "not broken down by sex, age band, scanner or site.")


def is_multilabel(clinical: dict[str, Any]) -> bool:
    return clinical.get("task") == multilabel_run.TASK


def task_words(names: list[str]) -> str:
    """"multi-label: 2 findings (seven, zero), each present or absent on its own"."""
    return f"multi-label: {len(names)} findings ({', '.join(names)}), each present or absent on its own"


def exact_match(metrics: dict[str, Any]) -> dict[str, Any]:
    """Exact match (every finding right) as a proportion with its Wilson interval."""
    from tl_desktop.core.evaluation.statistics import wilson_interval

    n = metrics["n"]
    k = round((metrics.get("subset_accuracy") or 0.0) * n)
    low, high = wilson_interval(k, n)
    return {"value": k / n if n else None, "k": k, "n": n, "low": low, "high": high}


def finding_counts(manifest: dict[str, Any]) -> dict[str, Counter]:
    """Images with each finding per part, and ``no finding`` (an image with two findings counts for both)."""
    out: dict[str, Counter] = {s: Counter() for s in SUBSETS}
    for f in manifest["files"]:
        found = f.get("findings") or []
        for name in found or [NONE]:
            out.setdefault(f["subset"], Counter())[name] += 1
    return out


# --- page 1 ------------------------------------------------------------------------------------------------

def summary(d: Any, created: str, version: str) -> str:
    """Page 1 of a multi-label run: the task, exact match, mean AUC, the plain lines, the per-finding table
    and the threshold rule."""
    c, m = d.clinical, d.metrics
    names = c["class_names"]
    macro = (m.get("roc_auc") or {}).get("macro")
    rows = [
        ["Evaluated model", f"{esc(m['evaluation']['label'])} <span class='muted'>(computed "
                            f"{esc(str(c.get('computed_utc', '?')))})</span>"],
        ["Task", esc(task_words(names))],
        ["Test images", f"{c['n']['test']} (validation {c['n']['val']})"],
        ["Exact match", with_ci(exact_match(m)) + " <span class='muted'>every finding of the image right</span>"],
        ["ROC-AUC (mean of the findings)", "n/a" if macro is None else f"<b>{macro:.3f}</b>"],
        ["Macro / micro F1", f"{_num(m.get('macro_f1'))} / {_num(m.get('micro_f1'))}"],
        ["Hamming loss", f"{_num(m.get('hamming_loss'))} <span class='muted'>(share of image-finding decisions "
                         "that are wrong)</span>"],
        ["Decision rule", "a finding is called when its probability reaches its own threshold, chosen on the "
                          "validation images (below)"],
    ]
    warn = "".join(f"<li class='warn'>{esc(w)}</li>" for w in c.get("warnings", []))
    from tl_desktop.report.sections import heading

    return (heading(d, created, version) + "<h2>Summary</h2>" + table(["Figure", "Value"], rows, [170, 450], raw=True) + findings_table(d) +
            (f"<h3>Read with care</h3><ul>{warn}</ul>" if warn else ""))


def findings_table(d: Any) -> str:
    """The plain lines, the per-finding table (the Evaluate step's cells) and the threshold rule."""
    lines = "".join(f"<li>{esc(line)}</li>" for line in summary_lines(d.clinical["multilabel"]))
    return ("<h3>Findings on the test images</h3>" + f"<ul>{lines}</ul>" +
            table(HEADINGS, [[name, f"{pos} / {neg}", *rest] for name, pos, neg, *rest in
                             multilabel_run.table_rows(d.metrics)], WIDTHS) +
            f"<p class='muted'>AP: average precision. {esc(multilabel_run.rule_text(d.clinical))} AUC intervals: bootstrap "
            f"({esc(d.clinical['multilabel'].get('bootstrap_method') or 'percentile')}); sensitivity and "
            "specificity: Wilson 95% intervals.</p>")


def data_section(d: Any) -> str:
    """Images per finding and part (an image with several findings is counted once for each)."""
    counts = finding_counts(d.manifest)
    total = Counter(f["subset"] for f in d.manifest["files"])
    rows = [[name, *(counts[s][name] for s in SUBSETS), sum(counts[s][name] for s in SUBSETS)]
            for name in [*d.manifest["classes"], NONE]]
    rows.append(["all images", *(total[s] for s in SUBSETS), len(d.manifest["files"])])
    split = d.manifest["split"]
    group = split.get("group_by")
    grouping = (f"grouped by {esc(group)}: all images of one group (e.g. one patient) are in one subset"
                if group else "<span class='warn'>not grouped: images of the same patient may appear in "
                              "training and test</span>")
    return ("<h2>Data</h2>"
            f"<p>{len(d.manifest['files'])} usable images, {esc(task_words(d.manifest['classes']))}. Split with "
            f"seed {split.get('seed')}, validation {pct(split.get('val_fraction'), 0)}, test "
            f"{pct(split.get('test_fraction'), 0)}, {grouping}. Rows count the images with each finding; an image "
            "with several findings is counted in each of its rows. Every file is listed with its SHA-256 in "
            "<i>audit/manifest.csv</i>.</p>" + table(["Finding", "Training", "Validation", "Test", "Total"], rows))


# --- curves --------------------------------------------------------------------------------------------------

def curves_section(d: Any) -> str:
    """Every finding's ROC and precision-recall curve on the test images, one chart each."""
    labels = d.clinical["multilabel"]["labels"]
    roc, pr = [], []
    for i, name in enumerate(d.clinical["class_names"]):
        entry = labels[name]
        if entry.get("roc") is None or entry.get("auc") is None:
            continue
        a, colour = entry["auc"], fg.PALETTE[i % len(fg.PALETTE)]
        roc.append(fg.Series(f"{name}: AUC {a['auc']:.3f} ({a['low']:.3f}–{a['high']:.3f})", entry["roc"]["fpr"],
                             entry["roc"]["tpr"], colour))
        pr.append(fg.Series(f"{name}: AP {entry['pr']['average_precision']:.3f}", entry["pr"]["recall"],
                            entry["pr"]["precision"], colour, step=True))
    d.figures["roc.png"] = fg.line_chart(fg.Chart("ROC curve of each finding (test)", "1 - specificity "
                                                  "(false-positive rate)", "sensitivity", roc, diagonal="chance",
                                                  width=300, height=260))
    d.figures["pr.png"] = fg.line_chart(fg.Chart("Precision-recall of each finding (test)", "recall (sensitivity)",
                                                 "precision (PPV)", pr, width=300, height=260))
    rows = [[esc(name), with_ci(labels[name]["ppv"]), _num(labels[name].get("f1"))] for name in d.clinical["class_names"]]
    return ("<h2>Discrimination of each finding</h2><p>Each finding is judged on its own: its ROC curve shows every "
            "trade-off between finding the images that have it (sensitivity) and false alarms on those that do not "
            "(1 - specificity) as its threshold moves; the area under it (AUC) is the chance that a random image "
            "with the finding scores higher than a random image without it. The interval is a bootstrap on the "
            "test images; when the split was grouped by patient, whole patients are resampled.</p>" +
            side_by_side([figure("roc.png", 300, 260), figure("pr.png", 300, 260)]) +
            "<h3>At each finding's threshold</h3>" +
            table(["Finding", "PPV (precision), 95% CI", "F1"], rows, [120, 380, 120], raw=True) +
            f"<p class='muted'>{esc(NO_HEATMAPS)} {esc(NO_SUBGROUPS)}</p>")


# --- model card and audit ------------------------------------------------------------------------------------

def card_evaluation(d: Any) -> dict[str, Any]:
    """The model card's evaluation of a multi-label run (the keys the limitations and checklist read, with
    what does not apply set to None)."""
    c, m = d.clinical, d.metrics
    per = {name: {k: e.get(k) for k in ("n_pos", "n_neg", "auc", "average_precision", "threshold", "sensitivity",
                                         "specificity", "ppv", "f1")} for name, e in m["per_label"].items()}
    return {"task": multilabel_run.TASK, "findings": list(c["class_names"]), "task_words": task_words(c["class_names"]),
            "checkpoint": m["evaluation"]["label"], "computed_utc": c.get("computed_utc"),
            "test_images": c["n"]["test"], "validation_images": c["n"]["val"], "accuracy": exact_match(m),
            "accuracy_is": "exact match (every finding of an image right)", "balanced_accuracy": None,
            "roc_auc_macro": (m.get("roc_auc") or {}).get("macro"), "per_class": {}, "per_finding": per,
            "macro_f1": m.get("macro_f1"), "micro_f1": m.get("micro_f1"), "hamming_loss": m.get("hamming_loss"),
            "thresholds": dict(m["thresholds"]), "threshold_rule": multilabel_run.rule_text(c),
            "bootstrap": c.get("bootstrap"), "grouped_bootstrap": bool(d.manifest["split"].get("group_by")),
            "calibration": {"temperature": None, "ece_before": None, "ece_after": None},
            "abstain_threshold": None, "decision": None, "warnings": list(c.get("warnings", []))}


def card_evaluation_html(ev: dict[str, Any]) -> str:
    """The model card's evaluation table of a multi-label run."""
    from tl_desktop.core.evaluation.subgroup_tables import interval_text

    rows = [["Task", esc(ev["task_words"])],
            ["Test images", f"{ev['test_images']} (validation {ev['validation_images']})"],
            ["Exact match", with_ci(ev["accuracy"])], ["ROC-AUC (mean of the findings)", _num(ev["roc_auc_macro"])]]
    for name, f in ev["per_finding"].items():
        rows += [[f"AUC of {esc(name)}", esc(interval_text(f["auc"], "auc"))],
                 [f"{esc(name)} at threshold {f['threshold']:.3f}: sensitivity", with_ci(f["sensitivity"])],
                 [f"{esc(name)} at threshold {f['threshold']:.3f}: specificity", with_ci(f["specificity"])]]
    rows.append(["Decision rule", esc(ev["threshold_rule"])])
    return ("<h3>Evaluation on the test images</h3>" + f"<p class='muted'>{esc(ev['checkpoint'])}; the same figures "
            "as the summary on page 1 (AUC: bootstrap 95% interval; proportions: Wilson 95% intervals).</p>" +
            table(["Figure", "Value"], rows, [220, 400], raw=True))


def audit_json(clinical: dict[str, Any]) -> dict[str, Any]:
    """``audit/findings.json``: the stored test figures per finding and over all findings (curves stay in
    clinical.json), the thresholds and their rule, and the checkpoint."""
    figures = clinical["multilabel"]
    labels = {name: {k: v for k, v in entry.items() if k not in ("roc", "pr")} for name, entry in
              figures["labels"].items()}
    return {"task": multilabel_run.TASK, "findings": list(clinical["class_names"]),
            "checkpoint": clinical.get("checkpoint"), "computed_utc": clinical.get("computed_utc"),
            "thresholds": clinical.get("thresholds"), "threshold_rule": clinical.get("threshold_rule"),
            "test": {**{k: v for k, v in figures.items() if k != "labels"}, "labels": labels},
            "curves": "ROC and precision-recall curves of each finding: clinical.json, key multilabel.labels"}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
