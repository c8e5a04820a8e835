"""The report's model card: what the model is for (the user's form, ``core.project.intended_use``), the data,
the training, the test figures, the limitations and the subgroup results, as one JSON document
(``audit/model_card.json``) and one report section.

Everything but the form comes from what the run recorded: ``config.json`` and ``manifest.json`` (through
``RunData``, read by ``core.runs``), the run's one evaluation artefact (the same ``RunData.metrics`` and
``clinical`` the report's summary reads, so every figure is the summary's), and the verification files of the
exported models. Nothing is estimated here; where the run recorded nothing, the card says so.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tl_desktop.core.evaluation.stored_result import class_figures
from tl_desktop.core.fsutil import read_json
from tl_desktop.core.project.intended_use import IntendedUse
from tl_desktop.report import findings
from tl_desktop.report.audit import sanitise
from tl_desktop.report.document import esc, page_break, pct, table, with_ci
from tl_desktop.report.sections import RunData, _counts, _num, _rule, _share

FORMAT = 1
SMALL_TEST = 100           # fewer test images than this: a limitation (wide intervals)
SMALL_TEST_CLASS = 20      # fewer test images of one class than this: a limitation
IMBALANCE = 3.0            # largest / smallest class (training images) from which imbalance is a limitation
WIDE_INTERVAL = 0.20       # a 95% interval of accuracy wider than this (20 points) is called wide
SUBSETS = ("train", "val", "test")
NO_SUBGROUPS = "No subgroup analysis was run: the figures are for the test images as a whole."


def _project_of(run_dir: Path):
    """The project that lists this run (``PROJECT/runs/RUN``), or None."""
    from tl_desktop.core.project import project_file as proj

    folder = Path(run_dir).resolve().parent.parent
    if not (folder / proj.PROJECT_FILE).is_file():
        return None
    project = proj.load(folder)
    if not any(project.run_path(r).resolve() == Path(run_dir).resolve() for r in project.runs):
        return None
    return project


def project_model_card(run_dir: Path) -> IntendedUse | None:
    """The model card form of the project the run belongs to (``PROJECT/runs/RUN``), or None.

    Raises:
        ProjectError: the project lists the run but its file is damaged or its model card refused.
    """
    project = _project_of(run_dir)
    return None if project is None else project.model_card


def project_name(run_dir: Path) -> str | None:
    """The name of the project the run belongs to (the report's title), or None for a run of no project."""
    project = _project_of(run_dir)
    return (project.name or None) if project is not None else None


def build(d: RunData, intended: IntendedUse | None, onnx_files: list[Path]) -> dict[str, Any]:
    """The model card of a run as a JSON-ready dict (local folders reduced to their names)."""
    intended = intended or IntendedUse()
    names = list(d.clinical["class_names"])
    card = {"format": FORMAT, "run": d.run_dir.name,
            "task": findings.task_words(names) if findings.is_multilabel(d.clinical) else
            f"single-label: {len(names)} classes, one per image",
            "intended": {**intended.to_dict(), "filled_in": not intended.empty},
            "data": _data(d), "training": _training(d), "evaluation": _evaluation(d),
            "unfamiliar": _unfamiliar(onnx_files), "subgroups": subgroups(d.clinical)}
    card["limitations"] = limitations(d, card, intended)
    return sanitise(card)


# --- data --------------------------------------------------------------------------------------------------

def _data(d: RunData) -> dict[str, Any]:
    """The data part; a multi-label run counts the images with each finding (and the images per part)."""
    multilabel = findings.is_multilabel(d.clinical)
    counts = findings.finding_counts(d.manifest) if multilabel else _counts(d.manifest)
    review = d.manifest.get("review") if isinstance(d.manifest.get("review"), dict) else None
    in_app = d.manifest.get("labels_in_app") if isinstance(d.manifest.get("labels_in_app"), dict) else None
    return {"source": "CSV list of files and labels" if _from_csv(d) else "folder of class folders",
            "classes": list(d.manifest["classes"]),
            "images": {s: {c: counts.get(s, Counter())[c] for c in d.manifest["classes"]} for s in SUBSETS},
            "total": len(d.manifest["files"]), "skipped_files": d.config.skipped_files,
            "label_source": _label_source(d, in_app), "labels_in_app": in_app,
            "grouping": d.manifest["split"].get("group_by"), "grouping_words": _grouping(d),
            "split": {k: d.manifest["split"].get(k) for k in ("seed", "val_fraction", "test_fraction")},
            "review_decisions": review.get("counts") if review else None,
            "leakage": leakage(d.manifest),
            "images_per_part": {s: sum(f["subset"] == s for f in d.manifest["files"]) for s in SUBSETS},
            "no_finding": {s: counts.get(s, Counter())[findings.NONE] for s in SUBSETS} if multilabel else None}


def _from_csv(d: RunData) -> bool:
    """Labels from a CSV: one named with ``csv``, or a CSV file given as the data (how a multi-label set comes)."""
    return bool(d.config.csv) or str(d.config.data).lower().endswith(".csv")


def _label_source(d: RunData, in_app: dict[str, Any] | None) -> str:
    given = "the CSV's label column" if _from_csv(d) else "the names of the class folders"
    if in_app:
        return f"{given}, and {in_app.get('files', 0)} images labelled in the app"
    return given


def _grouping(d: RunData) -> str:
    kind, _, arg = str(d.manifest["split"].get("group_by") or "").partition(":")
    if not kind:
        return "none (images were split one by one, so images of one patient may be in more than one part)"
    if kind == "dicom":
        return f"by the DICOM tag {arg}: all images of one value stay in one part"
    if kind == "regex":
        return "by a file-name pattern: all images of one patient stay in one part"
    return f"by the CSV column {kind if kind != 'csv' else 'group'}: all images of one value stay in one part"


def leakage(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the manifest shows crossing parts: identical files (same SHA-256) and groups in more than one part."""
    subsets_of_sha: dict[str, set[str]] = {}
    for f in manifest["files"]:
        subsets_of_sha.setdefault(f["sha256"], set()).add(f["subset"])
    subset_of = {f["path"]: f["subset"] for f in manifest["files"]}
    groups: dict[str, set[str]] = {}
    for path, group in (manifest["split"].get("groups") or {}).items():
        if group is not None and path in subset_of:
            groups.setdefault(str(group), set()).add(subset_of[path])
    identical = sum(1 for s in subsets_of_sha.values() if len(s) > 1)
    crossing = sum(1 for s in groups.values() if len(s) > 1)
    return {"identical_files_across_parts": identical, "groups_across_parts": crossing,
            "grouped": bool(manifest["split"].get("group_by")), "clean": identical == 0 and crossing == 0}


# --- training and evaluation ------------------------------------------------------------------------------

def _training(d: RunData) -> dict[str, Any]:
    c = d.config
    return {"model": c.model, "weights_source": c.weights_source, "strategy": c.strategy, "epochs_set": c.epochs,
            "epochs_run": d.metrics.get("epochs_run"), "best_epoch": d.metrics.get("best_epoch"),
            "image_size": " x ".join(str(v) for v in c.input_size[-2:]), "batch_size": c.batch_size, "learning_rate": c.lr,
            "augmentation": c.augmentation, "class_balance": c.balance, "seed": c.seed,
            "versions": dict(c.versions)}


def _evaluation(d: RunData) -> dict[str, Any]:
    if findings.is_multilabel(d.clinical):
        return findings.card_evaluation(d)
    c, m = d.clinical, d.metrics
    right = sum(m["confusion_matrix"][i][i] for i in range(len(c["class_names"])))
    cal = (c.get("calibration") or {}).get("test") or {}
    pos = c.get("positive_class")
    out: dict[str, Any] = {
        "checkpoint": m["evaluation"]["label"], "computed_utc": c.get("computed_utc"),
        "test_images": c["n"]["test"], "validation_images": c["n"]["val"],
        "accuracy": _share(right, m["n"]), "balanced_accuracy": m["balanced_accuracy"],
        "roc_auc_macro": (m.get("roc_auc") or {}).get("macro"), "per_class": class_figures(m),
        "bootstrap": c.get("bootstrap"), "grouped_bootstrap": bool(d.manifest["split"].get("group_by")),
        "calibration": {"temperature": c.get("temperature"), "ece_before": (cal.get("before") or {}).get("ece"),
                        "ece_after": (cal.get("after") or {}).get("ece")},
        "abstain_threshold": c.get("abstain_threshold"), "decision": None, "warnings": list(c.get("warnings", []))}
    if pos is not None:
        op = c["operating_point"]["test"]
        out["decision"] = {"positive_class": pos, "threshold": c["decision_threshold"], "rule": _rule(c),
                           "source": c.get("decision_source"), "chosen_on": (c.get("threshold_rule") or {}).get("chosen_on"),
                           "auc": (c["curves"].get(pos) or {}).get("auc"),
                           **{k: op.get(k) for k in ("sensitivity", "specificity", "ppv", "npv", "accuracy")}}
    return out


def subgroups(clinical: dict[str, Any]) -> dict[str, Any] | None:
    """The stored subgroup analysis (``clinical["subgroups"]``, core/evaluation/subgroups.py) in short: per
    attribute, each value's test images, accuracy and flags (worse than the rest beyond its interval); None when
    none was run. The per-image values stay in clinical.json."""
    block = clinical.get("subgroups")
    if not isinstance(block, dict) or not isinstance(block.get("figures"), dict) or not block["figures"]:
        return None
    rows = {str(name): [{"value": r.get("value"), "n": r.get("n"), "accuracy": r.get("accuracy"),
                         "flagged": bool(r.get("flagged")), "flags": list(r.get("flags") or [])}
                        for r in found if isinstance(r, dict)]
            for name, found in block["figures"].items() if isinstance(found, list)}
    return {"attributes": list(rows), "decision": block.get("decision"), "rule": block.get("rule"), "figures": rows}


def flagged_subgroups(summary: dict[str, Any] | None) -> list[str]:
    """"PatientSex = F (sensitivity)" for each flagged subgroup of ``subgroups``' summary."""
    return [f"{name} = {r['value']} ({', '.join(r['flags'])})"
            for name, rows in (summary or {}).get("figures", {}).items() for r in rows if r["flagged"]]


def _unfamiliar(onnx_files: list[Path]) -> dict[str, Any] | None:
    """The unfamiliar-image check of the first exported file that has one (its threshold and what it flags)."""
    for path in onnx_files:
        try:
            found = read_json(path.with_name(f"{path.stem}.verification.json")).get("unfamiliarity")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(found, dict) and found.get("threshold") is not None:
            return {"file": path.name, "threshold": found["threshold"],
                    "validation_flagged": found.get("validation_flagged"), "probes_flagged": found.get("probes_flagged")}
    return None


# --- limitations ------------------------------------------------------------------------------------------

def limitations(d: RunData, card: dict[str, Any], intended: IntendedUse) -> list[dict[str, str]]:
    """Limitations from what the run recorded (id + sentence), then the user's own."""
    ev, data = card["evaluation"], card["data"]
    out = []
    test = data["images"]["test"]
    acc = ev["accuracy"]
    width = (acc["high"] - acc["low"]) if acc["value"] is not None else None
    if ev["test_images"] < SMALL_TEST or (width is not None and width > WIDE_INTERVAL):
        out.append(("small-test", f"Small test set: {ev['test_images']} images (fewer than {SMALL_TEST} is small); "
                    f"the 95% interval of accuracy spans {pct(acc['low'])} to {pct(acc['high'])}."))
    small = [f"{c} ({n})" for c, n in test.items() if n < SMALL_TEST_CLASS]
    if small:
        out.append(("small-test-class", f"Fewer than {SMALL_TEST_CLASS} test images of: {', '.join(small)}; "
                    "the figures of these classes are very uncertain."))
    out.append(("no-external-validation", "No external validation: every figure comes from a held-out part of the "
                "same data set, not from another hospital, scanner or period."))
    train = data["images"]["train"]
    if train and min(train.values()) and max(train.values()) / min(train.values()) >= IMBALANCE:
        big, few = max(train, key=train.get), min(train, key=train.get)
        out.append(("class-imbalance", f"Class imbalance: {train[big]} training images of {big} but {train[few]} "
                    f"of {few}; balanced accuracy and per-class figures matter more than accuracy."))
    out.extend(_leakage_limits(data))
    if card["subgroups"] is None:
        out.append(("no-subgroups", "Performance was not broken down by sex, age band, scanner or site."))
    elif flagged := flagged_subgroups(card["subgroups"]):
        out.append(("subgroup-flagged", f"Worse in a subgroup than in the other test images, beyond the interval: "
                    f"{'; '.join(flagged)}."))
    out.append(_unfamiliar_limit(card["unfamiliar"]))
    if ev["decision"] is not None and ev["decision"]["source"] != "user":
        out.append(("suggested-threshold", "The operating point is a suggestion of the app, not chosen by a user; "
                    "an exported model answers with the most probable class."))
    out.extend(("evaluation-note", f"{w[0].upper()}{w[1:]}.") for w in ev["warnings"])
    if intended.limitations:
        out.append(("user", intended.limitations))
    return [{"id": i, "text": t} for i, t in out]


def _leakage_limits(data: dict[str, Any]) -> list[tuple[str, str]]:
    leak = data["leakage"]
    out = []
    if not leak["grouped"]:
        out.append(("no-grouping", "The split was not grouped by patient: images of one patient may be in both "
                    "training and test, which makes the figures look better than they are."))
    if not leak["clean"]:
        out.append(("leakage", f"Leakage check: {leak['identical_files_across_parts']} identical files and "
                    f"{leak['groups_across_parts']} groups are in more than one part (training, validation, test)."))
    return out


def _unfamiliar_limit(found: dict[str, Any] | None) -> tuple[str, str]:
    if found is None:
        return ("no-unfamiliar-check", "No exported model with an unfamiliar-image check was included: nothing "
                "marks an image unlike the training images.")
    return ("unfamiliar-threshold", f"Images unlike the training images are marked when their unfamiliarity is above "
            f"{found['threshold']:.3f} (the 95th percentile of the validation images): about 1 in 20 ordinary "
            "images is marked too, and an unusual image below the threshold is not.")


# --- HTML ---------------------------------------------------------------------------------------------------

def section(card: dict[str, Any]) -> str:
    """The model card page(s) of the report."""
    return ("<h2>Model card</h2><p class='muted'>What this model is for (in the words of its makers), what it "
            "was trained and tested on, and what to keep in mind. Also in <i>audit/model_card.json</i>.</p>" +
            (f"<p><b>Task:</b> {esc(card['task'])}.</p>" if card["evaluation"].get("task") == "multi-label" else "") +
            _intended_html(card["intended"]) + _limitations_html(card["limitations"]) + _data_html(card["data"]) +
            _training_html(card["training"]) + page_break() +
            (findings.card_evaluation_html(card["evaluation"]) if card["evaluation"].get("task") == "multi-label"
             else _evaluation_html(card["evaluation"])) +
            (f"<h3>Subgroups</h3><p>{esc(findings.NO_SUBGROUPS)}</p>" if card["evaluation"].get("task") ==
             "multi-label" else _subgroups_html(card.get("subgroups"))))


def _limitations_html(items: list[dict[str, str]]) -> str:
    return ("<h3>Limitations</h3><p class='muted'>From what the run recorded, then the makers' own.</p><ul>" +
            "".join(f"<li>{_text(i['text'])}{' <i>(added by the makers)</i>' if i['id'] == 'user' else ''}</li>"
                    for i in items) + "</ul>")


def _text(value: str) -> str:
    """User or recorded text, escaped, line breaks kept."""
    return "<br>".join(esc(line) for line in str(value).splitlines()) or ""


def _intended_html(intended: dict[str, Any]) -> str:
    missing = "<span class='warn'>not filled in (Evaluate step: Model card…)</span>"
    rows = [[label, _text(intended.get(key, "")) or missing] for key, label in (
        ("intended_use", "Intended use"), ("intended_users", "Intended users"),
        ("out_of_scope", "Not for (out-of-scope use)"))]
    return "<h3>Intended use</h3>" + table(["", "In the makers' words"], rows, [170, 450], raw=True)


def _data_html(data: dict[str, Any]) -> str:
    rows = [[esc(c), *(data["images"][s][c] for s in SUBSETS)] for c in data["classes"]]
    if data.get("no_finding"):  # multi-label: images with each finding, then those with none
        rows.append([findings.NONE, *(data["no_finding"][s] for s in SUBSETS)])
        rows.append(["<b>All images</b>", *(data["images_per_part"][s] for s in SUBSETS)])
    else:
        rows.append(["<b>All</b>", *(sum(data["images"][s].values()) for s in SUBSETS)])
    review = data["review_decisions"]
    words = ", ".join(f"{n} {esc(k)}" for k, n in review.items() if n) if isinstance(review, dict) else ""
    skipped = f", {data['skipped_files']} unreadable files left out" if data["skipped_files"] else ""
    return ("<h3>Data</h3>" + f"<p>Source: {esc(data['source'])}; {data['total']} images used{skipped}. Labels "
            f"from {esc(data['label_source'])}. Patient grouping: {esc(data['grouping_words'])}. Review decisions "
            f"applied: {words or 'none'}.</p>" +
            table(["Finding" if data.get("no_finding") else "Class", "Training", "Validation", "Test"], rows,
                  [220, 130, 130, 130], raw=True))


def _training_html(t: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in t["versions"].items())
    return ("<h3>Training</h3>" + f"<p>{esc(t['model'])}, weights: {esc(t['weights_source'])}; strategy "
            f"{esc(t['strategy'])}; {t['epochs_run'] if t['epochs_run'] is not None else '?'} of {t['epochs_set']} "
            f"epochs (best {t['best_epoch'] if t['best_epoch'] is not None else '?'}); images {esc(t['image_size'])} "
            f"px; batch {t['batch_size']}, learning rate {t['learning_rate']}, augmentation {esc(t['augmentation'])}, "
            f"seed {t['seed']}.<br><span class='muted'>Software: {esc(versions)}.</span></p>")


def _evaluation_html(ev: dict[str, Any]) -> str:
    rows = [["Test images", f"{ev['test_images']} (validation {ev['validation_images']})"],
            ["Accuracy", with_ci(ev["accuracy"])], ["Balanced accuracy", f"<b>{pct(ev['balanced_accuracy'])}</b>"],
            ["ROC-AUC (mean of the classes)", _num(ev["roc_auc_macro"])]]
    rows += [[f"Sensitivity of {esc(name)} <span class='muted'>(most probable class)</span>", with_ci(f["recall"])]
             for name, f in ev["per_class"].items()]
    dec = ev["decision"]
    if dec is None:
        rows.append(["Decision rule", "each image gets its most probable class"])
    else:
        status = "chosen by the user, in the exported model" if dec["source"] == "user" else \
            "<span class='warn'>suggested by the app, not in the exported model</span>"
        rows += [["Decision rule", f"{esc(dec['positive_class'])} when its probability &ge; {dec['threshold']:.3f}: "
                                   f"{status} <span class='muted'>({esc(dec['rule'])})</span>"],
                 [f"At this threshold: sensitivity for {esc(dec['positive_class'])}", with_ci(dec["sensitivity"])],
                 [f"At this threshold: specificity for {esc(dec['positive_class'])}", with_ci(dec["specificity"])]]
    cal = ev["calibration"]
    rows.append(["Calibration error (ECE, test)", f"{_num(cal['ece_before'])} before, {_num(cal['ece_after'])} after "
                                                 "temperature scaling"])
    return ("<h3>Evaluation on the test images</h3>" + f"<p class='muted'>{esc(ev['checkpoint'])}; the same figures as the summary on "
            "page 1 (95% Wilson intervals).</p>" + table(["Figure", "Value"], rows, [220, 400], raw=True))


def _subgroups_html(summary: dict[str, Any] | None) -> str:
    if not summary:
        return f"<h3>Subgroups</h3><p>{esc(NO_SUBGROUPS)}</p>"
    count = sum(len(rows) for rows in summary["figures"].values())
    flagged = flagged_subgroups(summary)
    verdict = (f"<span class='warn'>{len(flagged)} flagged (worse than the other test images beyond the "
               f"interval): {esc('; '.join(flagged))}</span>" if flagged else "none flagged")
    return (f"<h3>Subgroups</h3><p>Test figures were broken down by {esc(', '.join(summary['attributes']))}: "
            f"{count} subgroups, {verdict}. The tables are in the section <i>Subgroups</i> and in "
            "<i>audit/clinical.json</i> (key <i>subgroups</i>).</p>")
