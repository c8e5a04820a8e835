"""The glossary's entries: each says in a sentence or two what a word on screen means, then its technical name.

Keys are what ``glossary.term_button("auc")`` and a widget's ``glossary_term`` property name; ``ALIASES`` lets
a view use the word it shows ("ppv", "roc", "fp16") for the entry that explains it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    title: str
    plain: str
    technical: str
    see_also: tuple[str, ...] = ()


TERMS: dict[str, Term] = {
    "sensitivity": Term(
        "Sensitivity", "Of the images that truly show the condition, the share the model finds. High sensitivity "
        "means few cases are missed.", "sensitivity, recall, true-positive rate (TPR)",
        ("specificity", "threshold")),
    "specificity": Term(
        "Specificity", "Of the images that truly do not show the condition, the share the model correctly calls "
        "negative. High specificity means few false alarms.", "specificity, true-negative rate (TNR); "
        "1 − specificity is the false-positive rate", ("sensitivity", "ppv_npv")),
    "ppv_npv": Term(
        "Positive and negative predictive value", "When the model says “yes”, how often it is right (PPV); when "
        "it says “no”, how often it is right (NPV). Both depend on how common the condition is among your images.",
        "positive predictive value (PPV, precision), negative predictive value (NPV)",
        ("sensitivity", "average_precision")),
    "auc_roc": Term(
        "AUC and the ROC curve", "The ROC curve shows sensitivity against false alarms for every possible "
        "threshold. The area under it (AUC) is the chance that the model scores a random case above a random "
        "non-case: 0.5 is guessing, 1.0 is perfect.", "receiver operating characteristic (ROC), area under the "
        "ROC curve (AUC, AUROC), one-vs-rest for several classes", ("threshold", "confidence_interval")),
    "calibration": Term(
        "Calibration", "Whether the model's percentages can be taken at their word: of the images it gives 80 %, "
        "about 80 % should be right. The reliability diagram shows this; points on the diagonal are well "
        "calibrated.", "calibration, reliability diagram, expected calibration error (ECE)", ("temperature",)),
    "temperature": Term(
        "Temperature scaling", "One number, fitted on the validation images, that makes the model's percentages "
        "less over- or under-confident. It never changes which class the model picks.",
        "temperature scaling (T); T > 1 softens, T < 1 sharpens the probabilities", ("calibration",)),
    "confidence_interval": Term(
        "Confidence interval", "The range the true figure probably lies in, given how few test images there are. "
        "A wide range means the figure is uncertain: more test images narrow it.",
        "95 % confidence interval (CI); Wilson interval for proportions, bootstrap interval for AUC",
        ("bootstrap",)),
    "bootstrap": Term(
        "Bootstrap", "A way to see how much a figure could change with other test images: the test set is "
        "redrawn many times at random (whole patients together when images are grouped) and the figure "
        "recomputed each time.", "bootstrap resampling (percentile interval), patient-level (cluster) bootstrap",
        ("confidence_interval", "grouped_split")),
    "linear_probe": Term(
        "Train only the last layer", "The pretrained network is kept as it is and only its final decision layer "
        "is trained on your images. Fast, works with few images, and a good first try.",
        "linear probe (frozen backbone, a linear classifier on its features)", ("fine_tune", "full_training")),
    "fine_tune": Term(
        "Adjust the last layers", "The last stages of the pretrained network are trained on your images along "
        "with the decision layer, in small steps; the early layers stay as they are. Needs more images than "
        "training only the last layer.", "fine-tuning (partial unfreezing, discriminative learning rates)",
        ("linear_probe", "full_training")),
    "full_training": Term(
        "Adjust the whole network", "Every layer of the pretrained network is trained on your images, the early "
        "layers in smaller steps. Needs the most images and time (a GPU); can fit your images best, or learn "
        "them by heart when there are too few.",
        "full fine-tuning (all layers unfrozen, starting from pretrained weights)",
        ("fine_tune", "from_scratch")),
    "from_scratch": Term(
        "Start from nothing", "The network starts with random weights and learns only from your images, with no "
        "pretrained knowledge. A comparison to see whether pretraining helped; it rarely wins with few images.",
        "training from scratch (random initialisation, no transfer learning)", ("full_training",)),
    "grouped_split": Term(
        "Keeping a patient's images together", "All images of one patient (or one study) go to the same part: "
        "training, validation or test. Otherwise the model can be tested on a patient it has already seen, which "
        "flatters its figures.", "grouped split, patient-level split (group k-fold, GroupShuffleSplit)",
        ("leakage", "validation_test")),
    "leakage": Term(
        "Leakage", "When information from the test images reaches training, for example the same patient or a "
        "near-copy of an image on both sides. The figures then look better than the model will do on new "
        "patients.", "data leakage, train–test contamination", ("grouped_split", "near_duplicate")),
    "validation_test": Term(
        "Training, validation and test images", "Training images teach the model; validation images choose the "
        "best epoch and the settings; test images are kept aside until the end to measure the model once, "
        "honestly.", "train / validation / test split (held-out test set)", ("grouped_split", "leakage")),
    "threshold": Term(
        "Threshold (operating point)", "The percentage above which the model's answer counts as “yes”. Lowering "
        "it finds more cases (higher sensitivity) at the price of more false alarms (lower specificity).",
        "decision threshold, operating point (a point on the ROC curve), Youden's J", ("sensitivity", "auc_roc")),
    "balanced_accuracy": Term(
        "Balanced accuracy", "The average of the share found right in each class, so a rare class counts as much "
        "as a common one. A model that always answers the common class gets no credit for it.",
        "balanced accuracy (mean per-class recall)", ("sensitivity", "f1")),
    "f1": Term(
        "F1 score", "One number that is high only when both the share of “yes” answers that are right (PPV) and "
        "the share of cases found (sensitivity) are high.", "F1 score (harmonic mean of precision and recall); "
        "macro F1 averages it over the classes", ("ppv_npv", "sensitivity")),
    "hamming_loss": Term(
        "Share of wrong finding decisions", "With several findings per image, the share of single image-finding "
        "decisions (present or absent) that are wrong. 0 is perfect.", "Hamming loss (multi-label); "
        "1 − Hamming loss is the share of right decisions", ("exact_match",)),
    "exact_match": Term(
        "All findings right", "With several findings per image, the share of images for which every finding is "
        "called right at once. Strict: one wrong finding makes the whole image wrong.",
        "exact match ratio, subset accuracy (multi-label)", ("hamming_loss",)),
    "average_precision": Term(
        "Average precision", "A summary of the precision–recall curve: how right the model's “yes” answers stay "
        "as it is asked to find more and more of the cases. Useful when the condition is rare.",
        "average precision (AP), area under the precision–recall curve (AUPRC)", ("ppv_npv", "auc_roc")),
    "augmentation": Term(
        "Augmentation", "Small random changes to the training images (flips, slight turns, brightness) so the "
        "model learns the finding, not the exact picture. Only changes that keep the meaning should be allowed: "
        "no left-right flip where the side matters.", "data augmentation", ("epoch",)),
    "epoch": Term(
        "Epoch", "One pass of the model over all training images. Training runs for several epochs; the best one, "
        "judged on the validation images, is kept.", "epoch (best epoch: highest validation balanced accuracy, then lowest validation loss)",
        ("batch_size", "learning_rate")),
    "batch_size": Term(
        "Batch size", "How many images the model looks at before each small correction. Larger batches need more "
        "memory; if the computer runs out of memory, lower it.", "batch size (mini-batch)",
        ("epoch", "learning_rate")),
    "learning_rate": Term(
        "Learning rate", "How big each correction during training is. Too big and training jumps around, too "
        "small and it barely moves; empty means the recommended value for the chosen way of training.",
        "learning rate (LR), with a schedule (warm-up, cosine decay)", ("epoch", "batch_size")),
    "onnx": Term(
        "ONNX model file", "The exported model as one file that other programs can run without this app or "
        "Python, on a hospital computer or a server. Each export is checked to give the same answers as the "
        "trained model.", "Open Neural Network Exchange (.onnx), run with ONNX Runtime", ("int8_fp16",)),
    "int8_fp16": Term(
        "Smaller model files (int8, fp16)", "Copies of the exported model that store their numbers with less "
        "precision: smaller and often faster, at the risk of slightly different answers, which are measured "
        "before you use them.", "fp16 (half precision), int8 (8-bit quantisation)", ("onnx",)),
    "near_duplicate": Term(
        "Near-duplicate images", "Images that are the same picture, or almost (resized, re-saved, slightly "
        "cropped). Split between training and test, they make the test too easy.",
        "near-duplicates (perceptual hashing, embedding similarity)", ("leakage",)),
    "label_issue": Term(
        "Possible label mistake", "An image whose given class disagrees strongly with what the model, trained "
        "without that image, expects. Worth a second look: the label may be wrong, or the image unusual.",
        "label issue (confident learning, out-of-fold predictions)", ("active_learning",)),
    "unfamiliar_image": Term(
        "Unfamiliar image", "An image unlike those the model was trained on (another scanner, body part or kind "
        "of picture). The model still answers, but its answer should not be trusted.",
        "out-of-distribution (OOD) detection, distance in embedding space", ("abstain",)),
    "active_learning": Term(
        "Which images to label next", "The app suggests the unlabelled images the model is least sure about: "
        "labelling those first usually improves the model fastest.",
        "active learning (uncertainty sampling)", ("label_issue",)),
    "subgroup": Term(
        "Subgroup", "A part of the test images that share something, such as sex, age band, site or scanner. The "
        "model's figures per subgroup show whether it works as well for each.",
        "subgroup analysis, stratified performance, fairness", ("confidence_interval",)),
    "model_card": Term(
        "Model card", "A short document that comes with a model: what it is for, what data it learned from, how "
        "well it did and where it should not be used.", "model card (Mitchell et al., 2019)", ("onnx",)),
    "confusion_matrix": Term(
        "Confusion matrix", "A table of what the model said for each true class: rows are the true classes, "
        "columns the model's answers. The diagonal holds the right answers; click a cell to see those images.",
        "confusion matrix", ("sensitivity", "specificity")),
    "abstain": Term(
        "“Not sure”", "The model may be allowed to answer “not sure” when its top percentage is low. Fewer images "
        "then get an answer, and those that do are more often right.",
        "abstention, selective prediction, accuracy–coverage curve", ("calibration", "threshold")),
    "device": Term(
        "Device (CPU or GPU)", "Where the computing happens. A graphics card (GPU) trains many times faster than "
        "the processor (CPU); Automatic uses one when the computer has a usable one.",
        "compute device: CPU, CUDA (NVIDIA GPU), MPS (Apple GPU)", ("batch_size",)),
    "strategy": Term(
        "Training strategy", "How much of the pretrained network is changed to fit your images: only a small "
        "final layer (quickest, needs the fewest images), the last blocks as well, the whole network, or a "
        "network that starts from nothing (needs by far the most images).",
        "transfer-learning strategy: linear probe, fine-tuning, full fine-tuning, training from scratch",
        ("linear_probe", "fine_tune", "full_training", "from_scratch")),
    "cache": Term(
        "Cache", "Copies of your images already resized for the model, and the model's summaries of them, kept "
        "so the next training starts faster. It can be deleted at any time; it is made again when needed.",
        "prepared-image cache, embedding cache", ()),
}

ALIASES: dict[str, str] = {
    "auc": "auc_roc", "roc": "auc_roc", "ppv": "ppv_npv", "npv": "ppv_npv", "precision": "ppv_npv",
    "recall": "sensitivity", "ci": "confidence_interval", "patient_grouping": "grouped_split",
    "operating_point": "threshold", "validation": "validation_test", "test": "validation_test",
    "fp16": "int8_fp16", "int8": "int8_fp16", "ood": "unfamiliar_image", "not_sure": "abstain",
    "gpu": "device", "fine-tune": "fine_tune", "linear-probe": "linear_probe", "full": "full_training",
    "scratch": "from_scratch",
}


def lookup(key: str | None) -> str | None:
    """The entry key for ``key`` or one of its aliases; None when there is no such entry."""
    if not key:
        return None
    key = key.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in TERMS else None
