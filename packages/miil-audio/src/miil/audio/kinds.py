"""The names of EAT's augmentations that a recipe switches on (arXiv 2204.11479, Sec. 3.3).

Kept apart from :mod:`miil.audio.augment` and free of torch, so that recipes and the command-line parsers are built
without importing the augmentations themselves.
"""

from __future__ import annotations

__all__ = ["MIX_KINDS", "NOISE_KINDS", "SIGNAL_KINDS"]

#: Per-sample signal augmentations (each applied with the recipe's probability, in a random order).
SIGNAL_KINDS = ("gain", "polarity", "time_shift", "time_mask", "segment_gain", "cyclic_shift")
#: Noise kinds; one is drawn per sample.
NOISE_KINDS = ("white", "blue", "pink", "red", "violet", "uniform", "phase", "sine")
#: Batch mixes; one is drawn per batch once mixing has started.
MIX_KINDS = ("mixup", "timemix", "freqmix", "phmix")
