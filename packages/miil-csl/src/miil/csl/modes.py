"""The names of the partial-label modes of the CSL loss, without torch (recipes and command-line parsers need them).

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss", Ben-Baruch et al.,
CVPR 2022 (arXiv 2110.10955), Section 3: un-annotated labels treated as negatives (``negative``), ignored
(``ignore``, ``ignore_normalize_classes``) or selected per class by the prior and the label likelihood
(``selective``). The loss itself is :class:`miil.csl.loss.PartialSelectiveLoss`.
"""

from __future__ import annotations

__all__ = ["PARTIAL_LOSS_MODES", "TOPK_SCOPES", "resolve_partial_loss_mode"]

PARTIAL_LOSS_MODES = ("negative", "ignore", "ignore_normalize_classes", "selective")
TOPK_SCOPES = ("batch", "sample")


def resolve_partial_loss_mode(mode: str | None) -> str:
    """One of ``PARTIAL_LOSS_MODES`` from a mode name of ours or of the reference code.

    The reference's ``partial_loss_mode=None`` (also written ``"none"`` on a command line) sets every label weight to
    1, which is ``"negative"``: un-annotated labels are negatives with their own ``alpha_unann`` / ``gamma_unann``.

    Args:
        mode: ``"negative"``, ``"ignore"``, ``"ignore_normalize_classes"``, ``"selective"``, or None / ``"none"``.
    """
    if mode is None or (isinstance(mode, str) and mode.strip().lower() in ("none", "null")):
        return "negative"
    if mode not in PARTIAL_LOSS_MODES:
        raise ValueError(f"unknown partial-label mode {mode!r}; expected one of {PARTIAL_LOSS_MODES} or None")
    return mode
