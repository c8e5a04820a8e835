"""The report's sections, each a function of the collected run data returning HTML (and the figures it needs)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tl_desktop.core.config import RunConfig
from tl_desktop.core.evaluation import statistics as cl
from tl_desktop.report import figures as fg
from tl_desktop.report.document import esc, figure, pct, side_by_side, table, with_ci


@dataclass
class RunData:
    run_dir: Path
    config: RunConfig
    manifest: dict[str, Any]
    metrics: dict[str, Any]                     # stored_result.summary of ``clinical`` (+ epochs run, best epoch)
    clinical: dict[str, Any]                    # the run's evaluation artefact
    history: list[dict[str, float]]
    environment: dict[str, Any]
    name: Any                                   # relative path -> displayed file name
    transfer: dict[str, Any] | None = None
    onnx: list[dict[str, Any]] = field(default_factory=list)
    project: str | None = None                  # the name of the project the run belongs to, if any
    figures: dict[str, bytes] = field(default_factory=dict)
    heatmaps: list[dict[str, Any]] = field(default_factory=list)
    card_pages: list[str] = field(default_factory=list)  # model card and checklist (report/model_card.py)


def _counts(manifest: dict[str, Any]) -> dict[str, Counter]:
    out: dict[str, Counter] = {s: Counter() for s in ("train", "val", "test")}
    for f in manifest["files"]:
        out.setdefault(f["subset"], Counter())[f["label"]] += 1
    return out


# --- summary ---------------------------------------------------------------------------------------------

def report_title(d: RunData) -> str:
    """"Chest X-rays: model report (run 20240101-...)", the project first; a run of no project by its ID."""
    return f"{d.project}: model report (run {d.run_dir.name})" if d.project else f"Model report {d.run_dir.name}"


def heading(d: RunData, created: str, version: str) -> str:
    """The report's title (the project's name, the run ID second) and the line on what it is."""
    title = f"{esc(d.project)}: model report" if d.project else f"Model report: {esc(d.run_dir.name)}"
    run = f"Run {esc(d.run_dir.name)}. " if d.project else ""
    return (f"<h1>{title}</h1><p class='muted'>{run}Created {esc(created)} by tl-desktop {esc(version)}. For "
            "research and quality assurance: these figures describe this test set only and are not a regulatory "
            "validation.</p>")


def summary(d: RunData, created: str, version: str) -> str:
    """Page 1: what is true for the task. Accuracy, balanced accuracy and each class's sensitivity and precision
    with Wilson intervals lead; the operating point follows only where there is one, with its status."""
    c, m = d.clinical, d.metrics
    test_cal = c["calibration"].get("test", {})
    right = sum(m["confusion_matrix"][i][i] for i in range(len(c["class_names"])))
    macro = (m.get("roc_auc") or {}).get("macro")
    rows = [
        ["Evaluated model", f"{esc(m['evaluation']['label'])} <span class='muted'>(computed "
                            f"{esc(str(c.get('computed_utc', '?')))})</span>"],
        ["Test images", f"{c['n']['test']} (validation {c['n']['val']})"],
        ["Accuracy", with_ci(_share(right, m["n"])) + " <span class='muted'>each image given its most probable "
                                                     "class</span>"],
        ["Balanced accuracy", f"<b>{pct(m['balanced_accuracy'])}</b> <span class='muted'>(the mean sensitivity of "
                              f"the {len(c['class_names'])} classes)</span>"],
        ["ROC-AUC (mean of the classes)", _num(macro)],
        *_point_rows(c),
        ["Calibration error (ECE, test)", f"{_num(test_cal.get('before', {}).get('ece'))} before, "
                                          f"<b>{_num(test_cal.get('after', {}).get('ece'))}</b> after temperature "
                                          f"scaling (T = {c['temperature']:.3f})"],
        ["Abstain (&ldquo;not sure&rdquo;)", "off" if c.get("abstain_threshold") is None else
         f"below top probability {c['abstain_threshold']:.3f}: answers {pct(_coverage(c))} of test images"],
    ]
    warn = "".join(f"<li class='warn'>{esc(w)}</li>" for w in c.get("warnings", []))
    return (heading(d, created, version) + "<h2>Summary</h2>" + table(["Figure", "Value"], rows, [170, 450], raw=True) +
            "<h3>Per class (most probable class, 95% Wilson intervals)</h3>" + _class_table(m) +
            (f"<h3>Read with care</h3><ul>{warn}</ul>" if warn else ""))


def _share(k: int, n: int) -> dict[str, Any]:
    low, high = cl.wilson_interval(k, n)
    return {"value": k / n if n else None, "k": k, "n": n, "low": low, "high": high}


def _coverage(c: dict[str, Any]) -> float:
    from tl_desktop.core.evaluation.stored_result import ClinicalResult

    return ClinicalResult(c).accuracy_at_abstain(c.get("abstain_threshold"))[1]


def _class_table(m: dict[str, Any]) -> str:
    """Each class's test images, sensitivity (recall) and precision with Wilson intervals."""
    from tl_desktop.core.evaluation.stored_result import class_figures

    rows = [[esc(name), f["recall"]["n"], _with_interval(f["recall"]), _with_interval(f["precision"])]
            for name, f in class_figures(m).items()]
    return table(["Class", "Test images", "Sensitivity (recall), 95% CI", "Precision, 95% CI"], rows, raw=True)


def _with_interval(f: dict[str, Any]) -> str:
    return "n/a" if f["value"] is None else f"{pct(f['value'])} ({pct(f['low'])}–{pct(f['high'])})"


def _point_rows(c: dict[str, Any]) -> list[list[str]]:
    """The decision rule: none (the most probable class), or the operating point with its figures and status."""
    from tl_desktop.core.evaluation.decision import USER

    pos = c.get("positive_class")
    if pos is None:
        return [["Decision rule", "none: each image gets its most probable class <span class='muted'>(the "
                                  "exported model answers the same way)</span>"]]
    op = c["operating_point"]["test"]
    auc = (c["curves"].get(pos) or {}).get("auc")
    when = (c.get("decision_chosen_utc") or "")[:10]
    status = (f"chosen{' on ' + when if when else ''} (in the exported model)" if c.get("decision_source") == USER
              else "suggested (not in the exported model)")
    return [
        ["Operating point", f"<b>{esc(pos)}</b> when its probability &ge; {c['decision_threshold']:.3f}, "
                            f"<b>{status}</b> <span class='muted'>({esc(_rule(c))})</span>"],
        ["Finding (positive class)" if c.get("decision_source") == USER else "Suggested finding (positive class)",
         f"{esc(pos)} <span class='muted'>&mdash; {esc(c['positive_reason'])}</span>"],
        [f"Sensitivity for {esc(pos)}", with_ci(op["sensitivity"])],
        [f"Specificity for {esc(pos)}", with_ci(op["specificity"])],
        [f"AUC (ROC) of {esc(pos)}", "n/a" if not auc else f"<b>{auc['auc']:.3f}</b> <span class='muted'>(95% CI "
         f"{auc['low']:.3f}&ndash;{auc['high']:.3f}, {auc['n_boot']} bootstrap resamples)</span>"],
        ["Accuracy at this operating point", with_ci(op["accuracy"])],
    ]


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rule(c: dict[str, Any]) -> str:
    rule = c.get("threshold_rule", {})
    method, target = rule.get("method"), rule.get("target")
    if rule.get("chosen_on") == "user":
        return "threshold set by the user"
    words = {"youden": "maximises sensitivity + specificity on the validation split",
             "sensitivity": f"sensitivity >= {target} on the validation split",
             "specificity": f"specificity >= {target} on the validation split", "fixed": "fixed value"}
    return words.get(method, str(method)) + ("; accepted by the user" if rule.get("accepted_by_user") else "")


# --- data and model --------------------------------------------------------------------------------------

def data_section(d: RunData) -> str:
    counts = _counts(d.manifest)
    classes = d.manifest["classes"]
    rows = [[name, counts["train"][name], counts["val"][name], counts["test"][name],
             sum(counts[s][name] for s in ("train", "val", "test"))] for name in classes]
    rows.append(["all", *(sum(counts[s].values()) for s in ("train", "val", "test")), len(d.manifest["files"])])
    split = d.manifest["split"]
    group = split.get("group_by")
    grouping = (f"grouped by {esc(group)}: all images of one group (e.g. one patient) are in one subset"
                if group else "<span class='warn'>not grouped: images of the same patient may appear in "
                              "training and test</span>")
    folder = Path(d.config.data).name or "?"
    skipped = d.config.skipped_files
    return ("<h2>Data</h2>"
            f"<p>Data set folder <b>{esc(folder)}</b>: {len(d.manifest['files'])} usable images in "
            f"{len(classes)} classes{f', {skipped} files skipped as unusable' if skipped else ''}. "
            f"Split with seed {split.get('seed')}, validation {pct(split.get('val_fraction'), 0)}, test "
            f"{pct(split.get('test_fraction'), 0)}, {grouping}. Every file is listed with its SHA-256 in "
            "<i>audit/manifest.csv</i>.</p>" + table(["Class", "Training", "Validation", "Test", "Total"], rows))


def model_section(d: RunData) -> str:
    c = d.config
    hyper = [["Model", c.model], ["Weights", c.weights_source],
             ["Strategy", c.strategy],
             ["Epochs run / best / set", f"{d.metrics.get('epochs_run', '?')} / {d.metrics.get('best_epoch', '?')} / "
                                         f"{c.epochs}"],
             ["Batch size", c.batch_size], ["Learning rate", c.lr],
             ["Input size", "x".join(str(v) for v in c.input_size)],
             ["Augmentation", f"{c.augmentation} (flip {'on' if c.allow_flip else 'off'}, "
                              f"rotate {'on' if c.allow_rotate else 'off'})"],
             ["Label smoothing", c.label_smoothing], ["Class balance", c.balance],
             ["Early-stopping patience", c.patience], ["Seed", c.seed]]
    paired = [hyper[i] + hyper[i + 1] for i in range(0, len(hyper) - 1, 2)]
    env = d.environment
    hw = env.get("training_hardware") or {}
    here = env["report_computer"]
    memory = f", {here['memory_gib']} GiB memory" if here.get("memory_gib") else ""
    gpus = "; GPU " + ", ".join(here["gpus"]) if here["gpus"] else "; no GPU"
    trained_on = hw.get("device") or f"device setting '{env.get('training_device_setting')}' (resolved device not recorded)"
    versions = ", ".join(f"{k} {v}" for k, v in env.get("training_versions", {}).items())
    return ("<h2>Model and training</h2>" + table(["Setting", "Value", "Setting", "Value"], paired, [110, 200, 120, 190]) +
            f"<p><b>Libraries at training:</b> {esc(versions)}.<br><b>Trained on:</b> {esc(trained_on)}.<br>"
            f"<b>This computer:</b> {esc(here['os'])}; {esc(here['cpu'])}, {here['cpu_count']} cores{esc(memory)}"
            f"{esc(gpus)}.</p>")


def training_curves(d: RunData) -> str:
    if not d.history:
        return ""
    epochs = [h["epoch"] for h in d.history]
    loss_top = max([h.get("train_loss", 0) for h in d.history] + [h.get("val_loss", 0) for h in d.history]) * 1.1
    d.figures["loss.png"] = fg.line_chart(fg.Chart(
        "Loss per epoch", "epoch", "loss", [
            fg.Series("training", epochs, [h.get("train_loss") for h in d.history], fg.PALETTE[0], markers=True),
            fg.Series("validation", epochs, [h.get("val_loss") for h in d.history], fg.PALETTE[1], markers=True)],
        xlim=(min(epochs) - 0.2, max(epochs) + 0.2), ylim=(0, max(loss_top, 1e-3)), width=300, height=220, integer_x=True,
        legend_top=True))
    d.figures["accuracy.png"] = fg.line_chart(fg.Chart(
        "Accuracy per epoch", "epoch", "accuracy", [
            fg.Series("training", epochs, [h.get("train_acc") for h in d.history], fg.PALETTE[0], markers=True),
            fg.Series("validation (balanced)", epochs, [h.get("val_balanced_acc") for h in d.history],
                      fg.PALETTE[1], markers=True)],
        xlim=(min(epochs) - 0.2, max(epochs) + 0.2), width=300, height=220, integer_x=True))
    return "<h3>Training curves</h3>" + side_by_side([figure("loss.png", 300, 220), figure("accuracy.png", 300, 220)])


# --- results ---------------------------------------------------------------------------------------------

def results_section(d: RunData) -> str:
    """The confusion matrix of the most probable class, and at the operating point where there is one."""
    c = d.clinical
    names = c["class_names"]
    argmax = d.metrics["confusion_matrix"]
    d.figures["confusion_argmax.png"] = fg.confusion_chart("Most probable class", names, argmax)
    cells = [figure("confusion_argmax.png", *_confusion_size(names, False))]
    text = (f"<p>Test images: {c['n']['test']}. Counts are images; rows are the true class. Left: each image "
            "given its most probable class (the per-class figures are on page 1).")
    pos = c.get("positive_class")
    if pos is None:
        return "<h2>Results on the test split</h2>" + text + "</p>" + side_by_side(cells)
    op = c["operating_point"]["test"]
    d.figures["confusion_threshold.png"] = fg.confusion_chart(
        f"At threshold {c['decision_threshold']:.3f}", names, op["confusion"]["matrix"], op["confusion"]["not_sure"])
    cells.append(figure("confusion_threshold.png", *_confusion_size(names, any(op["confusion"]["not_sure"]))))
    stats = [[label, with_ci(op[key])] for key, label in (("sensitivity", "Sensitivity (recall of the finding)"),
                                                          ("specificity", "Specificity"), ("ppv", "PPV (precision)"),
                                                          ("npv", "NPV"))]
    return ("<h2>Results on the test split</h2>" + text +
            f" Right: {esc(pos)} when its probability is at least {c['decision_threshold']:.3f}" +
            (", and &ldquo;not sure&rdquo; below the abstain threshold" if c.get("abstain_threshold") is not None
             else "") + ".</p>" + side_by_side(cells) +
            f"<h3>{esc(pos)} at threshold {c['decision_threshold']:.3f} (95% Wilson intervals)</h3>" +
            ("" if c.get("abstain_threshold") is None else
             f"<p>On the {pct(op['coverage'])} of test images the model answered; the others are &ldquo;not "
             "sure&rdquo; and go to a human reader.</p>") +
            table(["Figure", "Value"], stats, [230, 330], raw=True))


def _confusion_size(names: list[str], extra: bool) -> tuple[int, int]:
    n = len(names)
    label_w = min(150, 20 + 7 * max(len(c) for c in names))
    return label_w + 30 + 56 * (n + int(extra)) + 10, 52 + label_w // 2 + 56 * n + 10


def curves_section(d: RunData) -> str:
    c = d.clinical
    names, pos = c["class_names"], c.get("positive_class")
    shown = [n for n in names if c["curves"].get(n)] if len(names) > 2 or pos is None else \
        [pos] if c["curves"].get(pos) else []
    roc, pr = [], []
    for i, name in enumerate(shown):
        entry = c["curves"][name]
        a = entry["auc"]
        colour = fg.PALETTE[i % len(fg.PALETTE)]
        roc.append(fg.Series(f"{name}: AUC {a['auc']:.3f} ({a['low']:.3f}–{a['high']:.3f})",
                             entry["roc"]["fpr"], entry["roc"]["tpr"], colour))
        pr.append(fg.Series(f"{name}: AP {entry['pr']['average_precision']:.3f}", entry["pr"]["recall"],
                            entry["pr"]["precision"], colour, step=True))
    op = (c.get("operating_point") or {}).get("test") or {}
    spec, sens = ((op.get(k) or {}).get("value") for k in ("specificity", "sensitivity"))
    point = [] if spec is None or sens is None else [(1 - spec, sens, "#ffcc00", f"threshold {c['decision_threshold']:.3f}")]
    d.figures["roc.png"] = fg.line_chart(fg.Chart("ROC curve (test)", "1 - specificity (false-positive rate)",
                                                  "sensitivity", roc, diagonal="chance", points=point, width=300, height=260))
    prevalence = c["curves"][pos]["pr"]["prevalence"] if pos is not None and c["curves"].get(pos) else None
    d.figures["pr.png"] = fg.line_chart(fg.Chart(
        "Precision-recall (test)", "recall (sensitivity)", "precision (PPV)", pr,
        points=[] if not point or op["ppv"]["value"] is None else [(sens, op["ppv"]["value"], "#ffcc00", "threshold")],
        width=300, height=260))
    text = ("<h2>Discrimination</h2><p>The ROC curve shows every trade-off between finding the positive cases "
            "(sensitivity) and false alarms (1 - specificity) as the threshold moves; the area under it (AUC) is "
            "the chance that a random positive image scores higher than a random negative one. " +
            ("The yellow dot is the operating point. " if point else "With more than two classes each class is "
             "shown against all the others. ") + "The interval is a bootstrap on the test images; when the split was grouped by "
            "patient, whole patients are resampled, since images of one patient are alike.")
    if prevalence is not None:
        text += f" On the precision-recall chart, a useless model sits at the prevalence ({pct(prevalence)})."
    return text + "</p>" + side_by_side([figure("roc.png", 300, 260), figure("pr.png", 300, 260)])


def calibration_section(d: RunData) -> str:
    c = d.clinical
    cal = c["calibration"].get("test")
    if not cal:
        return ""
    before, after = cal["before"], cal["after"]
    mids = [(a + b) / 2 for a, b in zip(before["edges"], before["edges"][1:], strict=False)]
    d.figures["calibration.png"] = fg.line_chart(fg.Chart(
        "Reliability (test)", "stated probability of the top class", "observed accuracy", [
            fg.Series(f"before: ECE {before['ece']:.3f}", before["confidence"], before["accuracy"], fg.PALETTE[1],
                      dashed=True, markers=True),
            fg.Series(f"after T = {c['temperature']:.2f}: ECE {after['ece']:.3f}", after["confidence"],
                      after["accuracy"], fg.PALETTE[0], markers=True)], diagonal="perfect calibration",
        width=300, height=260))
    labels = [f"{m:.2f}".lstrip("0") for m in mids]
    d.figures["calibration_counts.png"] = fg.bar_chart("Test images per probability bin (after)", labels,
                                                       after["count"], width=300, height=100)
    cov = c["coverage"].get("test")
    cells = [figure("calibration.png", 300, 260) + "<br>" + figure("calibration_counts.png", 300, 100)]
    if cov:
        low = min(cov["accuracy"])
        abstain = c.get("abstain_threshold")
        points = []
        if abstain is not None:
            from tl_desktop.core.evaluation.stored_result import ClinicalResult

            accuracy, coverage = ClinicalResult(c).accuracy_at_abstain(abstain)  # of the most probable class
            points = [(coverage, accuracy or 0, "#ffcc00", f"abstain below {abstain:.3f}")]
        d.figures["coverage.png"] = fg.line_chart(fg.Chart(
            "Answer only when sure (test)", "share of images answered (coverage)", "accuracy on answered images",
            [fg.Series("all abstain thresholds", cov["coverage"], cov["accuracy"], fg.PALETTE[2], step=True)],
            ylim=(max(0.0, min(low, 0.95) - 0.05), 1.0), points=points, width=300, height=260))
        cells.append(figure("coverage.png", 300, 260))
    worse = ""
    if after["ece"] is not None and before["ece"] is not None and after["ece"] > before["ece"]:
        worse = (f" <span class='warn'>On this test split the recalibration did not help (ECE {before['ece']:.3f} "
                 f"before, {after['ece']:.3f} after): the temperature was fitted on only {c['n']['val']} validation "
                 "images, or the test images differ from them.</span>")
    return ("<h2>Calibration and abstaining</h2><p>A model is calibrated when, of the images it gives "
            "80% to, about 80% are right: its points then lie on the diagonal. The expected calibration error "
            "(ECE) is the average gap, weighted by how many images fall in each bin. Temperature scaling divides "
            f"the model's scores by one number T fitted on the validation split (here T = {c['temperature']:.3f}); "
            "it changes how sure the model says it is, never which class it picks. The right chart shows how "
            "accuracy rises when the model may answer &ldquo;not sure&rdquo; on its least confident images." + worse +
            "</p>" + side_by_side(cells))


def heatmap_section(d: RunData) -> str:
    if not d.heatmaps:
        return ""
    cells = []
    for h in d.heatmaps:
        mark = "correct" if h["true"] == h["predicted"] else "<span class='warn'>wrong</span>"
        cells.append(figure(h["file"], 280, 136) +
                     f"<br>predicted <b>{esc(h['predicted'])}</b> ({pct(h['probability'])}), true {esc(h['true'])}: "
                     f"{mark}<br><span class='muted'>{esc(h['name'])}</span>")
    rows = [cells[i: i + 2] for i in range(0, len(cells), 2)]
    grid = "".join(side_by_side(r) for r in rows)
    return ("<h2>Where the model looked (Grad-CAM)</h2><p>Each pair shows a test image as the "
            "model saw it and the same image with a heatmap: red areas raised the probability of the predicted "
            "class most, blue areas little. A heatmap on a label, a ruler or the image border instead of the "
            "anatomy is a warning sign (a shortcut). Most confident correct and wrong test images are shown."
            "</p>" + grid)


def transfer_section(d: RunData) -> str:
    """The 'did transfer help?' verdict (core/transfer.py's transfer.json), when the run has one."""
    t = d.transfer
    if not t:
        return ""
    words = {"positive": "Transfer helped", "negative": "Transfer hurt", "neutral": "No clear effect of transfer"}
    verdict = words.get(str(t.get("verdict")), str(t.get("verdict", "")))
    diff = t.get("difference") or {}
    figure_text = ""
    if {"value", "low", "high"} <= set(diff):
        figure_text = (f"<p>Best transfer model ({esc(t.get('best_transfer', '?'))}) minus best model without "
                       f"transfer ({esc(t.get('best_no_transfer', '?'))}): <b>{100 * diff['value']:+.1f}</b> points of "
                       f"balanced accuracy (95% CI {100 * diff['low']:+.1f} to {100 * diff['high']:+.1f}) on "
                       f"{esc(t.get('test_images', '?'))} test images.</p>")
    summary = "".join(f"{esc(line)}<br>" for line in str(t.get("summary", "")).splitlines())
    return ("<h2>Did transfer help?</h2>" + f"<p><b>{esc(verdict)}</b></p>" + figure_text +
            (f"<p class='muted'>{summary}</p>" if summary else "") +
            (f"<p class='muted'>Rule: {esc(t['rule'])}</p>" if t.get("rule") else ""))


def audit_section(d: RunData, files: list[str]) -> str:
    rows = []
    for o in d.onnx:
        match = "yes" if o.get("decision_matches") else \
            "<span class='warn'>NO: export again to carry this report's decision rule (temperature, thresholds)</span>"
        agreement = o.get("agreement", o.get("top1_agreement"))
        rows.append([esc(o["file"]), esc(o.get("precision", "?")), f"{o.get('max_abs_diff') or float('nan'):.2e}",
                     "?" if agreement is None else f"{agreement:.3f}", "passed" if o.get("passed") else "FAILED",
                     match, (o.get("sha256") or "")[:16]])
    multi = any(o.get("agreement_kind") == "findings_agreement" for o in d.onnx)
    heading = "Same findings (share of images)" if multi else "Top-1 agreement"
    onnx = ("<h3>Exported model</h3>" + table(["File", "Precision", "max |p_onnx - p_torch|", heading,
                                               "Verification", "Decides as reported", "SHA-256 (start)"], rows,
                                              raw=True)) if rows else \
        "<p class='muted'>No exported ONNX file was found for this run.</p>"
    listing = "".join(f"<li>{esc(f)}</li>" for f in files)
    return ("<h2>Audit folder</h2><p>Everything needed to check this report is in the folder <i>audit</i> next to "
            "it; <i>SHA256SUMS</i> fingerprints each file. File names are relative to the data set folder; no "
            "DICOM header value is copied.</p>" + onnx + f"<ul>{listing}</ul>")
