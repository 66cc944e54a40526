"""Multi-label classifiers for the CSL recipes: a timm backbone with a linear or bottleneck head.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5: TResNet backbones (TResNet-M on COCO and OpenImages, TResNet-L on OpenImages). For OpenImages' 9,605
classes the reference models end in a bottleneck head, ``Linear(F -> 512)`` followed by ``Linear(512 -> C)`` without
an activation in between (``bottleneck_head`` in the reference ``tresnet.py``). Any timm model can serve as the
backbone: miil-core's backbone adapter gives its pooled pre-logits features, whose width (timm's
``head_hidden_size``, the ``conv_head`` width for MobileNetV3 / V4 and GhostNet) is checked against every output.
``"mosaic_cnn"`` is a small CNN for the embedded digit mosaics.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn

from miil.core.backbones import backbone_features, create_backbone, feature_width, prepare_backbone

__all__ = ["BottleneckHead", "MosaicCNN", "MultiLabelClassifier", "create_csl_model"]


def _init_linear(layer: nn.Linear) -> nn.Linear:
    # The reference initialises every linear layer with N(0, 0.01) weights.
    nn.init.normal_(layer.weight, std=0.01)
    nn.init.zeros_(layer.bias)
    return layer


class BottleneckHead(nn.Module):
    """``Linear(in_features -> bottleneck_features)`` then ``Linear(bottleneck_features -> num_classes)``.

    Args:
        in_features: Width of the pooled backbone features.
        num_classes: Number of output logits.
        bottleneck_features: Width of the embedding in between (512 for the OpenImages models).
    """

    def __init__(self, in_features: int, num_classes: int, *, bottleneck_features: int = 512):
        super().__init__()
        self.embedding = _init_linear(nn.Linear(in_features, bottleneck_features))
        self.fc = _init_linear(nn.Linear(bottleneck_features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(x))


class MosaicCNN(nn.Module):
    """A small CNN for the digit mosaics; ``forward`` returns pooled ``[B, num_features]`` features.

    Args:
        in_chans: Input channels.
        width: Channels of the first block (doubled twice).
    """

    def __init__(self, *, in_chans: int = 1, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.features = nn.Sequential(
            block(in_chans, width),
            block(width, width),
            nn.MaxPool2d(2),
            block(width, 2 * width),
            nn.MaxPool2d(2),
            block(2 * width, 4 * width),
        )
        self.num_features = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Max pooling: a digit present anywhere on the canvas fires its class.
        return self.features(x).amax(dim=(2, 3))


_LOCAL_MODELS = {"mosaic_cnn": MosaicCNN}


class MultiLabelClassifier(nn.Module):
    """A backbone returning pooled features, and a linear or bottleneck head producing one logit per class.

    Args:
        backbone: A timm model (its pooled pre-logits features are used; its classifier is removed), or a module
            mapping images to ``[B, F]`` pooled features.
        num_classes: Number of classes.
        bottleneck_features: Use a :class:`BottleneckHead` of this width instead of a single linear layer.
        num_features: ``F``; read from the backbone (``head_hidden_size``, else ``num_features``) when not given.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        bottleneck_features: int | None = None,
        num_features: int | None = None,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.backbone = prepare_backbone(backbone, "pooled")
        self.num_features = num_features or feature_width(backbone, "pooled")
        self.num_classes = num_classes
        if bottleneck_features:
            self.head: nn.Module = BottleneckHead(
                self.num_features, num_classes, bottleneck_features=bottleneck_features
            )
        else:
            self.head = _init_linear(nn.Linear(self.num_features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(backbone_features(self.backbone, x, "pooled", width=self.num_features))


def create_csl_model(
    model: str | nn.Module = "tresnet_m",
    *,
    num_classes: int,
    bottleneck_features: int | None = None,
    pretrained: bool = False,
    checkpoint: str | os.PathLike | None = None,
    **kwargs: Any,
) -> MultiLabelClassifier:
    """A multi-label classifier on a timm backbone (or ``"mosaic_cnn"``).

    Args:
        model: timm model name (e.g. ``"tresnet_m"``, ``"tresnet_m.miil_in21k"``), ``"mosaic_cnn"``, or a module
            returning pooled features.
        num_classes: Number of classes.
        bottleneck_features: Width of a bottleneck head (512 in the OpenImages recipes); None for a linear head.
        pretrained: Load timm's pretrained backbone weights (downloads from the Hugging Face hub).
        checkpoint: Local backbone weights (safetensors or a weights-only torch file), loaded strictly.
        kwargs: Passed to ``timm.create_model`` (or ``MosaicCNN``), e.g. ``in_chans``, ``drop_path_rate``.
    """
    if isinstance(model, str) and model in _LOCAL_MODELS:
        if pretrained:
            raise ValueError(f"{model!r} has no pretrained weights; use pretrained=False")
        backbone = create_backbone(_LOCAL_MODELS[model], checkpoint=checkpoint, **kwargs)
    elif isinstance(model, str):
        backbone = create_backbone(model, pretrained=pretrained, checkpoint=checkpoint, num_classes=0, **kwargs)
    else:
        backbone = create_backbone(model, checkpoint=checkpoint)
    return MultiLabelClassifier(backbone, num_classes, bottleneck_features=bottleneck_features)
