"""The "unlike the training images" reference every export carries: a score computed inside the ONNX graph.

An image's **unfamiliarity** is measured on the model's penultimate pooled features ``f`` (timm's
``forward_head(forward_features(x), pre_logits=True)``), against the features of the run's training images:

1. ``x = f - mean``; ``z = x @ basis`` with ``basis`` the top ``k`` principal directions of the training
   features (``k = min(64, n_train // 2, dim)``);
2. ``w = z @ whitening``, where ``whitening @ whitening.T`` is the Ledoit-Wolf shrunk precision of the training
   features in that subspace after removing their class means (one covariance shared by all classes);
3. ``d2 = min over classes c of ||w - centres[c]||^2`` (``centres`` = class means, whitened): the class-conditional
   Mahalanobis distance of Lee et al. (2018), here divided by ``k``;
4. ``r2 = ||x - z @ basis.T||^2 / residual_scale``: what lies outside the training subspace, divided by its mean
   on the training images (photos and noise differ from digits mostly there; measured in docs/unfamiliar.md);
5. ``unfamiliarity = sqrt(d2 / k + r2)``; an image is **unfamiliar** when it exceeds ``unfamiliar_threshold``,
   the 95th percentile of the scores of the run's validation images, so that about 95 % of images like the
   validation ones pass.

In a multi-label run an image has several findings or none, so the "classes" of step 2-3 are the combinations
of findings that occur among the training images (``no finding`` is one; at most ``MAX_COMBINATIONS``, the rarer
ones share one centre), as the reference's ``method`` says.

The score's nodes are named ``/reference/...`` and its parameters are initializers ``reference.<name>``
(``INITIALIZERS``), so any ONNX consumer gets the score as the output ``unfamiliarity`` without extra code, and
can read the reference back (``from_parameters``); ``scores`` below is the same formula in numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tl_desktop.core.errors import ExportError, UnreadableImage
from tl_desktop.core.events import CancelToken

if TYPE_CHECKING:
    from tl_desktop.core.models.run_model import LoadedRun

QUANTILE = 0.95
MAX_COMPONENTS = 64
MAX_REFERENCE_IMAGES = 5000   # training images sampled for the reference (seeded), to bound the export time
MIN_REFERENCE_IMAGES = 10
SCOPE = "reference"           # the submodule name: the score's ONNX nodes are "/reference/..."
MAX_COMBINATIONS = 64         # multi-label: centres for the most common combinations of findings, one for the rest
METHOD = ("class-conditional Mahalanobis (Ledoit-Wolf, shared covariance) in the top-k principal subspace of "
          "the training features, plus the normalised residual outside it")


@dataclass(frozen=True)
class Reference:
    """The fitted reference of one run's training features (float32 arrays) and its threshold."""

    mean: np.ndarray          # (d,)
    basis: np.ndarray         # (d, k), orthonormal columns
    whitening: np.ndarray     # (k, k)
    centres: np.ndarray       # (classes present, k), whitened class means
    residual_scale: float
    threshold: float = float("nan")
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def components(self) -> int:
        return int(self.basis.shape[1])

    @property
    def dim(self) -> int:
        return int(self.basis.shape[0])

    def metadata(self, action: str) -> dict[str, str]:
        """The ONNX metadata keys of the reference (each bounded by ``model_checks``)."""
        return {"unfamiliar_threshold": repr(float(self.threshold)), "unfamiliar_action": action,
                "feature_dim": str(self.dim), "unfamiliar_reference": json.dumps(self.info, sort_keys=True)}


def fit(features: np.ndarray, labels: np.ndarray) -> Reference:
    """The reference of training ``features`` (n, d) with integer class ``labels`` (n,); no threshold yet."""
    from sklearn.covariance import LedoitWolf

    x64 = np.asarray(features, np.float64)
    mean = x64.mean(0)
    centred = x64 - mean
    k = max(1, min(MAX_COMPONENTS, len(x64) // 2, x64.shape[1]))
    basis = np.linalg.svd(centred, full_matrices=False)[2][:k].T
    z = centred @ basis
    classes = np.unique(labels)
    means = np.stack([z[labels == c].mean(0) for c in classes])
    within = z - means[np.searchsorted(classes, labels)]
    whitening = np.linalg.cholesky(LedoitWolf().fit(within).precision_)
    residual = ((centred - z @ basis.T) ** 2).sum(1).mean()
    floor = 1e-6 * float((centred ** 2).sum(1).mean()) or 1e-12
    return Reference(mean.astype(np.float32), basis.astype(np.float32), whitening.astype(np.float32),
                     (means @ whitening).astype(np.float32), float(max(residual, floor)),
                     info={"method": METHOD, "components": k, "n_reference": len(x64)})


def scores(ref: Reference, features: np.ndarray) -> np.ndarray:
    """Unfamiliarity of each row of ``features`` (n, d): the formula of the graph, in numpy (float64)."""
    x = np.asarray(features, np.float64) - ref.mean
    z = x @ ref.basis
    w = z @ ref.whitening
    d2 = ((w[:, None, :] - ref.centres[None]) ** 2).sum(-1).min(1)
    r2 = ((x - z @ ref.basis.T) ** 2).sum(1) / ref.residual_scale
    return np.sqrt(d2 / ref.components + r2)


def calibrate(ref: Reference, features: np.ndarray, subset: str) -> Reference:
    """``ref`` with its threshold: the ``QUANTILE`` of the scores of ``features`` (images like the training ones)."""
    values = scores(ref, features)
    threshold = float(np.quantile(values, QUANTILE))
    info = {**ref.info, "threshold_from": subset, "n_threshold": len(values), "quantile": QUANTILE}
    return replace(ref, threshold=threshold, info=info)


def score_module(ref: Reference):
    """A torch module computing the unfamiliarity of pooled features (n, d) -> (n,): what the graph holds.

    Its buffers become the graph's initializers under stable names (``INITIALIZERS``), so a consumer can read
    the reference out of the file and recompute the score from the ``features`` output (docs/unfamiliar.md).
    """
    import torch

    arrays = parameters(ref)

    class Unfamiliarity(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, value in arrays.items():
                self.register_buffer(name, torch.from_numpy(value))

        def forward(self, features):
            x = features - self.mean
            z = x @ self.basis
            w = z @ self.whitening
            d2 = ((w.unsqueeze(1) - self.centres) ** 2).sum(-1).min(1).values
            residual = x - z @ self.basis_t
            return torch.sqrt(d2 * self.inv_components + (residual * residual).sum(1) * self.inv_residual_scale)

    return Unfamiliarity().eval()


INITIALIZERS = ("mean", "basis", "basis_t", "whitening", "centres", "inv_components", "inv_residual_scale")


def parameters(ref: Reference) -> dict[str, np.ndarray]:
    """The reference as the float32 arrays the graph holds (initializers ``reference.<name>``)."""
    arrays = {"mean": ref.mean, "basis": ref.basis, "basis_t": ref.basis.T, "whitening": ref.whitening,
              "centres": ref.centres[None], "inv_components": np.float32(1.0 / ref.components),
              "inv_residual_scale": np.float32(1.0 / ref.residual_scale)}
    return {name: np.ascontiguousarray(arrays[name], np.float32) for name in INITIALIZERS}


def from_parameters(arrays: dict[str, np.ndarray], threshold: float = float("nan")) -> Reference:
    """The reference back from the graph's arrays (``parameters``' inverse), e.g. read from an exported file."""
    return Reference(arrays["mean"], arrays["basis"], arrays["whitening"], arrays["centres"][0],
                     float(1.0 / np.asarray(arrays["inv_residual_scale"]).reshape(-1)[0]), threshold)


def pooled_features(model, x):
    """The penultimate pooled features of a timm model (what the reference is fitted on)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


# --- the reference of a run ------------------------------------------------------------------------------

def build(run: LoadedRun, cancel: CancelToken | None = None) -> Reference:
    """Fit the reference on the run's training images and set its threshold on its validation images (else
    test, else training), all read through the prepared-image cache.

    Raises:
        ExportError: fewer than ``MIN_REFERENCE_IMAGES`` training images, or one cannot be read.
        Cancelled: the token was set.
    """
    train = _sample(run.files("train"), MAX_REFERENCE_IMAGES)
    if len(train) < MIN_REFERENCE_IMAGES:
        raise ExportError(f"cannot build the unfamiliar-image reference: the run has {len(train)} training "
                          f"images, at least {MIN_REFERENCE_IMAGES} are needed")
    multi = getattr(run.config, "task", None) == "multi-label"
    index = _combinations(train) if multi else {name: i for i, name in enumerate(run.class_names)}
    features, labels = _features(run, train, index, cancel)
    ref = fit(features, labels)
    if multi:
        ref = replace(ref, info={**ref.info, "method": f"{METHOD}; classes = the combinations of findings "
                                                       f"among the training images ({len(set(index.values()))})"})
    for subset in ("val", "test"):
        files = _sample(run.files(subset), MAX_REFERENCE_IMAGES)
        if files:
            return calibrate(ref, _features(run, files, index, cancel)[0], subset)
    return calibrate(ref, features, "train")


def _combinations(train: list) -> dict[str, int]:
    """Class index of each combination of findings (a manifest label ``a;b``, "" for none) among training
    files, most common first; beyond ``MAX_COMBINATIONS - 1`` the rarer ones share the last index."""
    from collections import Counter

    common = [label for label, _ in Counter(label for _, label in train).most_common()]
    return {label: min(i, MAX_COMBINATIONS - 1) for i, label in enumerate(common)}


def _sample(files: list, limit: int) -> list:
    if len(files) <= limit:
        return files
    keep = np.sort(np.random.default_rng(0).choice(len(files), limit, replace=False))
    return [files[i] for i in keep]


def _features(run: LoadedRun, files: list, index: dict[str, int], cancel: CancelToken | None):
    from tl_desktop.core.evaluation.predict import predict_features

    try:
        return predict_features(run.model, run.data_config, [p for p, _ in files],
                                [index.get(label, -1) for _, label in files], cancel=cancel)
    except UnreadableImage as exc:
        raise ExportError(f"cannot build the unfamiliar-image reference: {exc}; restore the run's images or "
                          "train again") from exc
