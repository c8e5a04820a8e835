"""A reporting checklist in the style of TRIPOD-AI and CLAIM: items the app can answer, each ticked from what the
run recorded (with where the report or the audit folder shows it) or left open with what to add.

The items and their wording are the app's own (not the guidelines' text); docs/model-card.md lists each rule.
Statuses: ``done`` (the run records it), ``partly`` (the app records its part; the makers must add theirs) and
``open`` (nothing recorded: ``what_to_add`` says what would close it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tl_desktop.report.document import esc, table
from tl_desktop.report.model_card import SMALL_TEST
from tl_desktop.report.sections import RunData

DONE, PARTLY, OPEN = "done", "partly", "open"
WORDS = {DONE: "&#10003;&nbsp;done", PARTLY: "&#9680;&nbsp;partly", OPEN: "&#9744;&nbsp;open"}
GUIDELINES = "TRIPOD-AI and CLAIM"


@dataclass(frozen=True)
class Item:
    id: str
    topic: str
    status: str
    evidence: str      # what the run recorded, and where
    what_to_add: str   # empty when done

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "topic": self.topic, "status": self.status, "evidence": self.evidence,
                "what_to_add": self.what_to_add}


def _item(id_: str, topic: str, ok: bool | str, evidence: str, add: str) -> Item:
    """``ok``: True (done), False (open) or a status."""
    status = ok if isinstance(ok, str) else DONE if ok else OPEN
    return Item(id_, topic, status, evidence, "" if status == DONE else add)


def build(d: RunData, card: dict[str, Any]) -> list[Item]:
    """The checklist of a run from its model card (``model_card.build``) and the run data."""
    return [rule(d, card) for rule in RULES]


def to_json(items: list[Item]) -> dict[str, Any]:
    """``audit/checklist.json``: the items with their status, and how many have each."""
    return {"format": 1, "style": f"in the style of {GUIDELINES}; the items and their wording are tl-desktop's",
            "counts": {s: sum(i.status == s for i in items) for s in (DONE, PARTLY, OPEN)},
            "items": [i.to_dict() for i in items]}


# --- the rules, in the order of a paper: purpose, data, split, model, evaluation, safety, software -------------

def _use(d: RunData, card: dict[str, Any]) -> Item:
    text = card["intended"]["intended_use"]
    return _item("USE-1", "Intended use (task, setting, role of the model)", bool(text),
                 "Model card: Intended use" if text else "not filled in",
                 "Describe the clinical question and where in the workflow the model would be used (Evaluate step: "
                 "Model card…, or report --model-card).")


def _users(d: RunData, card: dict[str, Any]) -> Item:
    text = card["intended"]["intended_users"]
    return _item("USE-2", "Intended users", bool(text), "Model card: Intended users" if text else "not filled in",
                 "Say who would read the model's answers (for example radiologists, as a second reader).")


def _scope(d: RunData, card: dict[str, Any]) -> Item:
    text = card["intended"]["out_of_scope"]
    return _item("USE-3", "Out-of-scope use", bool(text), "Model card: Not for" if text else "not filled in",
                 "Name the patients, images and uses the model is not for (for example children, other scanners).")


def _source(d: RunData, card: dict[str, Any]) -> Item:
    data = card["data"]
    return _item("DATA-1", "Data source and inclusion", PARTLY,
                 f"{data['source']}: {data['total']} images used, {data['skipped_files']} unreadable left out; "
                 "every file with its SHA-256 in audit/manifest.csv",
                 "Add where and when the images were collected (sites, period, devices) and who was included.")


def _classes(d: RunData, card: dict[str, Any]) -> Item:
    n = len(card["data"]["classes"])
    what = f"multi-label: {n} findings" if _multilabel(card) else f"{n} classes"
    return _item("DATA-2", "Outcome classes and images per class and part", True,
                 f"{what}; Data section and Model card; audit/split.json", "")


def _multilabel(card: dict[str, Any]) -> bool:
    return card["evaluation"].get("task") == "multi-label"


def _labels(d: RunData, card: dict[str, Any]) -> Item:
    return _item("DATA-3", "Reference standard (how the labels were given)", PARTLY,
                 f"labels from {card['data']['label_source']}",
                 "Say who gave the labels and on what basis (expert reading, pathology, follow-up), and how "
                 "disagreements were settled.")


def _review(d: RunData, card: dict[str, Any]) -> Item:
    counts = card["data"]["review_decisions"]
    return _item("DATA-4", "Data quality review (duplicates, label errors)", counts is not None,
                 "review decisions applied: audit/review_decisions.csv" if counts is not None else "no review recorded",
                 "Run the data audit (Data step: Data quality, or tl-desktop audit) and record the decisions on "
                 "near-duplicates and likely label errors before training.")


def _split(d: RunData, card: dict[str, Any]) -> Item:
    s = card["data"]["split"]
    return _item("SPLIT-1", "Data split (training, validation, test)", True,
                 f"validation {s['val_fraction']}, test {s['test_fraction']}, seed {s['seed']}; audit/split.json and "
                 "audit/manifest.csv (part of each file)", "")


def _independence(d: RunData, card: dict[str, Any]) -> Item:
    grouped = card["data"]["leakage"]["grouped"]
    return _item("SPLIT-2", "Independence of the parts (patient grouping)", grouped,
                 f"grouped {card['data']['grouping_words']}" if grouped else "not grouped",
                 "Group the split by patient (Data step: keep images of one patient together; a CSV group column "
                 "or the DICOM PatientID) so that no patient is in both training and test.")


def _leakage(d: RunData, card: dict[str, Any]) -> Item:
    leak = card["data"]["leakage"]
    return _item("SPLIT-3", "Duplicates and leakage across parts", leak["clean"],
                 f"{leak['identical_files_across_parts']} identical files and {leak['groups_across_parts']} groups in "
                 "more than one part (from audit/manifest.csv)",
                 "Remove or regroup the files in more than one part and train again.")


def _model(d: RunData, card: dict[str, Any]) -> Item:
    t = card["training"]
    return _item("MODEL-1", "Model and pretrained weights", bool(t["model"] and t["weights_source"]),
                 f"{t['model']}, weights {t['weights_source']}; Model and training section", "Record the weights.")


def _hyper(d: RunData, card: dict[str, Any]) -> Item:
    return _item("MODEL-2", "Training details (hyperparameters, seed)", True,
                 "Model and training section; audit/run_config.json", "")


def _preprocessing(d: RunData, card: dict[str, Any]) -> Item:
    return _item("MODEL-3", "Preprocessing and augmentation", bool(d.config.data_config),
                 f"images {card['training']['image_size']} px, augmentation {card['training']['augmentation']}; "
                 "audit/run_config.json (data_config)", "Record the preprocessing.")


def _selection(d: RunData, card: dict[str, Any]) -> Item:
    best = card["training"]["best_epoch"]
    return _item("MODEL-4", "Model selection on validation only", bool(d.history) and best is not None,
                 f"best epoch {best} by the validation figures; audit/history.csv" if d.history else "no history",
                 "The run has no training history; train again.")


def _test(d: RunData, card: dict[str, Any]) -> Item:
    n = card["evaluation"]["test_images"]
    return _item("EVAL-1", "Held-out test set", n > 0, f"{n} test images never used in training or model selection",
                 "Choose a test share above 0 and train again.")


def _intervals(d: RunData, card: dict[str, Any]) -> Item:
    grouped = " (whole patients resampled)" if card["evaluation"]["grouped_bootstrap"] else ""
    return _item("EVAL-2", "Performance with 95% confidence intervals", card["evaluation"]["accuracy"]["value"] is not None,
                 f"Wilson intervals for proportions, bootstrap for AUC{grouped}; Summary and audit/clinical.json",
                 "The test set is empty.")


def _size(d: RunData, card: dict[str, Any]) -> Item:
    n = card["evaluation"]["test_images"]
    return _item("EVAL-3", "Test set size", n >= SMALL_TEST, f"{n} test images",
                 f"Fewer than {SMALL_TEST} test images: the intervals are wide; add images or test externally.")


def _calibration(d: RunData, card: dict[str, Any]) -> Item:
    if _multilabel(card):
        return _item("EVAL-4", "Calibration", OPEN, "not measured for a multi-label run",
                     "Check by hand how well each finding's probabilities match how often it is present.")
    cal = card["evaluation"]["calibration"]
    return _item("EVAL-4", "Calibration", cal["ece_after"] is not None,
                 "ECE before/after temperature scaling; Calibration section", "Not enough test images to measure it.")


def _operating_point(d: RunData, card: dict[str, Any]) -> Item:
    if _multilabel(card):
        thresholds = ", ".join(f"{k} {v:.3f}" for k, v in card["evaluation"]["thresholds"].items())
        return _item("EVAL-5", "Operating point chosen on validation", DONE,
                     f"one threshold per finding, chosen on the validation images: {thresholds}", "")
    dec = card["evaluation"]["decision"]
    if dec is None:
        return _item("EVAL-5", "Operating point chosen on validation", OPEN, "none: the most probable class answers",
                     "If the model will detect one finding, choose it and its threshold in the Evaluate step.")
    status = DONE if dec["source"] == "user" else PARTLY
    return _item("EVAL-5", "Operating point chosen on validation", status,
                 f"{dec['positive_class']} at {dec['threshold']:.3f} ({dec['rule']})",
                 "The threshold is only suggested: choose it in the Evaluate step (Use this operating point).")


def _errors(d: RunData, card: dict[str, Any]) -> Item:
    if _multilabel(card):
        return _item("EVAL-6", "Error analysis and explanations", PARTLY,
                     "per-finding sensitivity, specificity and PPV; the images with a wrong finding in "
                     "audit/metrics.json (misclassified)",
                     "Look at the wrong images and each finding's heatmap in the Evaluate step (Mistakes and "
                     "heatmaps).")
    return _item("EVAL-6", "Error analysis and explanations", bool(d.heatmaps),
                 "confusion matrix, Grad-CAM of right and wrong images" if d.heatmaps else "confusion matrix only",
                 "Include the example heatmaps (leave out only when images carry patient text) and look at the "
                 "wrong images in the Evaluate step.")


def _subgroups(d: RunData, card: dict[str, Any]) -> Item:
    from tl_desktop.report.model_card import flagged_subgroups

    found = card.get("subgroups")
    flagged = f", {len(flagged_subgroups(found))} flagged" if found else ""
    return _item("EVAL-7", "Subgroup performance", found is not None,
                 f"by {', '.join(found['attributes'])}{flagged}: Subgroups section and audit/clinical.json" if found
                 else "no subgroup analysis was run",
                 "Evaluate by sex, age band, scanner or site (a CSV column or a non-identifying DICOM tag).")


def _external(d: RunData, card: dict[str, Any]) -> Item:
    return _item("EVAL-8", "External validation", OPEN, "test images come from the same data set",
                 "Test the model on images from another site, scanner or period before clinical use.")


def _baseline(d: RunData, card: dict[str, Any]) -> Item:
    return _item("EVAL-9", "Comparison with a simpler model", d.transfer is not None,
                 "Did transfer help? section; audit/transfer.json" if d.transfer else "no comparison recorded",
                 "Run the transfer check (Model step or tl-desktop transfer-check) to compare with a model "
                 "trained without pretrained weights.")


def _unfamiliar(d: RunData, card: dict[str, Any]) -> Item:
    found = card["unfamiliar"]
    return _item("SAFE-1", "Images unlike the training images", found is not None,
                 f"{found['file']} marks images above unfamiliarity {found['threshold']:.3f}" if found else
                 "no exported model with the check", "Export the model (Export step); it carries the check.")


def _abstain(d: RunData, card: dict[str, Any]) -> Item:
    a = card["evaluation"]["abstain_threshold"]
    return _item("SAFE-2", "Uncertain answers (\u201cnot sure\u201d)", a is not None,
                 f"not sure below top probability {a:.3f}" if a is not None else "off",
                 "Optional: set an abstain threshold (Evaluate step, Calibration tab) so uncertain images go to a "
                 "human reader.")


def _limits(d: RunData, card: dict[str, Any]) -> Item:
    own = bool(card["intended"]["limitations"])
    return _item("LIM-1", "Limitations", DONE if own else PARTLY,
                 f"{len(card['limitations'])} in the Model card ({'with' if own else 'without'} the makers' own)",
                 "Add what you know beyond the recorded facts (for example image quality, missing patient groups).")


def _export(d: RunData, card: dict[str, Any]) -> Item:
    passed = [o["file"] for o in d.onnx if o.get("passed")]
    return _item("SW-1", "Exported model verified against the trained one", bool(passed),
                 f"{', '.join(passed)} in audit/model with its verification" if passed else "no verified export",
                 "Export the model (Export step) and include it in the report.")


def _versions(d: RunData, card: dict[str, Any]) -> Item:
    return _item("SW-2", "Software and versions", bool(card["training"]["versions"]),
                 "library versions at training and this computer: audit/environment.json",
                 "The run did not record its library versions.")


def _trace(d: RunData, card: dict[str, Any]) -> Item:
    hashed = all(f.get("sha256") for f in d.manifest["files"])
    return _item("SW-3", "Traceability (checksums of data and results)", hashed,
                 "SHA-256 of every image (audit/manifest.csv) and of every audit file (audit/SHA256SUMS)",
                 "Some files of the manifest have no SHA-256: train the run again.")


RULES: tuple[Callable[[RunData, dict[str, Any]], Item], ...] = (
    _use, _users, _scope, _source, _classes, _labels, _review, _split, _independence, _leakage, _model, _hyper,
    _preprocessing, _selection, _test, _intervals, _size, _calibration, _operating_point, _errors, _subgroups,
    _external, _baseline, _unfamiliar, _abstain, _limits, _export, _versions, _trace)


# --- HTML ---------------------------------------------------------------------------------------------------

def section(items: list[Item]) -> str:
    """The checklist page of the report."""
    counts = {s: sum(i.status == s for i in items) for s in (DONE, PARTLY, OPEN)}
    # the item id's hyphen is one the line never breaks at
    rows = [[f"<b>{esc(i.id).replace('-', '&#8209;')}</b>", esc(i.topic), _status(i.status),
             esc(i.evidence) + (f"<br><span class='warn'>Next step: {esc(i.what_to_add)}</span>" if i.what_to_add else "")]
            for i in items]
    return ("<h2>Reporting checklist</h2>" +
            f"<p>Items that journals and ethics boards ask for, in the style of {GUIDELINES} (the wording is this "
            "app's; check the guidelines themselves before submitting). Each is ticked from what the run recorded, "
            f"with where to find it, or left open with what to add: {counts[DONE]} done, {counts[PARTLY]} partly, "
            f"{counts[OPEN]} open. Also in <i>audit/checklist.json</i>.</p>" +
            table(["Item", "Topic", "Status", "Recorded (where) / what to add"], rows, [78, 140, 84, 318], raw=True))


def _status(status: str) -> str:
    colour = {DONE: "#1b6e2a", PARTLY: "#8a4b00", OPEN: "#8a1c1c"}[status]
    return f"<span style='color: {colour}'><b>{WORDS[status]}</b></span>"
