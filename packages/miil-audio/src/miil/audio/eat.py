"""EAT: an end-to-end audio classifier on raw waveforms (a 1-D CNN encoder and a transformer aggregator).

Paper: "End-to-End Audio Strikes Back: Boosting Augmentations Towards An Efficient Audio Classification Network",
Gazneli, Zimerman, Ridnik, Sharir, Noy, 2022 (arXiv 2204.11479), Sec. 3; EAT-S / EAT-M sizes from the authors'
configs (``SoundNetRaw``).

The raw waveform ``[B, 1, L]`` goes through
1. a stem: reflection pad, 7-tap convolution to ``base_channels``, BN, LeakyReLU(0.2);
2. down-sampling stages: one :class:`~miil.audio.layers.DownBlock1d` per factor in ``ds_factors`` (channels x2,
   anti-aliased stride), with a dilated residual block after every other stage (the 1st, 3rd, ...);
3. dilated stages: for each factor in ``dilated_factors`` three residual blocks with dilations 1, 3, 9 and a down
   block; the total down-sampling is ``prod(ds_factors) * prod(dilated_factors)`` (1024x for ESC-50 / AudioSet);
4. a 1x1 projection to ``embed_dim`` and :class:`~miil.audio.layers.TransformerAggregator` over the tokens;
5. a linear head on the CLS output.

Weights are initialised as in the original: convolutions ``N(0, 0.02)`` with zero biases, BN to identity, linear
biases zero, CLS and positions zero. Clips of any length at least :attr:`EAT.min_length` are accepted; the position
embedding is interpolated when the token count differs from the one it was built for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn as nn

from .layers import ConvNormAct1d, DilatedResBlock1d, DownBlock1d, TransformerAggregator

__all__ = ["EAT", "EATConfig", "EAT_CONFIGS", "create_eat", "eat_m", "eat_s"]


@dataclass(frozen=True)
class EATConfig:
    """The size of an EAT model (the original's ``nf``, ``emb_dim``, ``dim_feedforward``, ``n_layers``, ``n_head``).

    Args:
        base_channels: Stem channels ``nf``; the encoder ends with ``nf * 2 ** (len(ds_factors) + 2)`` channels.
        embed_dim: Transformer width ``emb_dim``.
        mlp_dim: Transformer feed-forward width.
        depth: Transformer layers.
        num_heads: Attention heads.
        ds_factors: Strides of the first down-sampling stages (``(4, 4, 4, 4)``; ``(4, 4, 4)`` for 1 s speech).
        dilated_factors: Strides of the dilated stages (``(2, 2)``).
        dilations: Dilations of the residual blocks of each dilated stage.
        kernel_size: Length of the depthwise convolutions of the residual blocks.
        dropout: Dropout inside the transformer layers.
    """

    base_channels: int = 16
    embed_dim: int = 128
    mlp_dim: int = 512
    depth: int = 4
    num_heads: int = 8
    ds_factors: tuple[int, ...] = (4, 4, 4, 4)
    dilated_factors: tuple[int, ...] = (2, 2)
    dilations: tuple[int, ...] = (1, 3, 9)
    kernel_size: int = 15
    dropout: float = 0.1


EAT_CONFIGS: dict[str, EATConfig] = {
    "eat_s": EATConfig(base_channels=16, embed_dim=128, mlp_dim=512, depth=4, num_heads=8),
    "eat_m": EATConfig(base_channels=32, embed_dim=256, mlp_dim=2048, depth=6, num_heads=16),
}


class EAT(nn.Module):
    """EAT on raw waveforms; see the module docstring for the architecture.

    Args:
        num_classes: Classifier outputs (0 for no head: ``forward`` then returns the CLS embedding).
        seq_len: Clip length in samples the position embedding is built for (e.g. 114688 for ESC-50 at 22.05 kHz).
        config: Model size; :data:`EAT_CONFIGS` holds EAT-S and EAT-M.
        dynamic_length: Accept clips whose token count differs from ``seq_len``'s by interpolating the positions.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        seq_len: int,
        config: EATConfig | None = None,
        dynamic_length: bool = True,
    ):
        super().__init__()
        cfg = config or EAT_CONFIGS["eat_s"]
        self.config = cfg
        self.num_classes = num_classes
        self.seq_len = seq_len
        self.stride = math.prod(cfg.ds_factors) * math.prod(cfg.dilated_factors)
        ch = cfg.base_channels
        self.stem = ConvNormAct1d(in_channels=1, out_channels=ch, kernel_size=7)
        down: list[nn.Module] = []
        for i, f in enumerate(cfg.ds_factors):
            down.append(DownBlock1d(channels=ch, stride=f))
            ch *= 2
            if i % 2 == 0:
                down.append(DilatedResBlock1d(channels=ch, dilation=1, kernel_size=cfg.kernel_size))
        self.down = nn.Sequential(*down)
        dilated: list[nn.Module] = []
        for f in cfg.dilated_factors:
            dilated += [DilatedResBlock1d(channels=ch, dilation=d, kernel_size=cfg.kernel_size) for d in cfg.dilations]
            dilated.append(DownBlock1d(channels=ch, stride=f))
            ch *= 2
        self.dilated = nn.Sequential(*dilated)
        self.encoder_channels = ch
        self.project = nn.Conv1d(ch, cfg.embed_dim, 1)
        self.aggregator = TransformerAggregator(
            embed_dim=cfg.embed_dim,
            num_tokens=self.num_tokens(seq_len),
            depth=cfg.depth,
            num_heads=cfg.num_heads,
            mlp_dim=cfg.mlp_dim,
            dropout=cfg.dropout,
            dynamic_length=dynamic_length,
        )
        self.num_features = cfg.embed_dim
        self.head = nn.Linear(cfg.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        self.min_length = self._min_length()
        if seq_len < self.min_length:
            raise ValueError(
                f"seq_len {seq_len} is shorter than the {self.min_length} samples this EAT configuration needs"
            )

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Conv1d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def num_tokens(self, num_samples: int) -> int:
        """Tokens the encoder makes from a clip of ``num_samples`` samples (each stage rounds up).

        Args:
            num_samples: Clip length.
        """
        n = num_samples
        for f in (*self.config.ds_factors, *self.config.dilated_factors):
            n = -(-n // f)
        return n

    def _min_length(self) -> int:
        # Reflection padding of p samples at cumulative stride s needs ceil(L / s) > p, i.e. L >= s * p + 1.
        cfg = self.config
        pads = [(1, 3)]  # the stem
        stride = 1
        for i, f in enumerate(cfg.ds_factors):
            pads += [(stride, (f + 1) // 2), (stride, f)]  # down convolution, blur
            stride *= f
            if i % 2 == 0:
                pads.append((stride, cfg.kernel_size // 2))
        for f in cfg.dilated_factors:
            pads += [(stride, d * (cfg.kernel_size // 2)) for d in cfg.dilations]
            pads += [(stride, (f + 1) // 2), (stride, f)]
            stride *= f
        return max(s * p + 1 for s, p in pads)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, L]`` or ``[B, 1, L]`` -> tokens ``[B, T, embed_dim]``."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"EAT expects mono waveforms [B, L] or [B, 1, L], got shape {tuple(x.shape)}")
        if x.shape[-1] < self.min_length:
            raise ValueError(
                f"clip of {x.shape[-1]} samples is shorter than the {self.min_length} samples this EAT needs; "
                "zero-pad it (miil.audio.fit_length)"
            )
        x = self.dilated(self.down(self.stem(x)))
        return self.project(x).transpose(1, 2)

    def forward_head(self, tokens: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """Tokens -> logits (or the CLS embedding with ``pre_logits``)."""
        cls = self.aggregator(tokens)
        return cls if pre_logits else self.head(cls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a fresh one for ``num_classes`` outputs (zero bias, as at construction).

        Args:
            num_classes: New number of classes (0 removes the head).
        """
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            nn.init.zeros_(self.head.bias)

    def set_seq_len(self, seq_len: int) -> None:
        """Re-build the position embedding for clips of ``seq_len`` samples (interpolating the learned one).

        Args:
            seq_len: The new clip length.
        """
        if seq_len < self.min_length:
            raise ValueError(f"seq_len {seq_len} is shorter than the {self.min_length} samples this EAT needs")
        self.aggregator.resize_pos_embed(self.num_tokens(seq_len))
        self.seq_len = seq_len

    def model_args(self) -> dict[str, Any]:
        """JSON-ready constructor arguments, stored beside checkpoints."""
        return {"num_classes": self.num_classes, "seq_len": self.seq_len, "config": asdict(self.config)}


def _config(name_or_config: str | EATConfig | dict[str, Any], overrides: dict[str, Any]) -> EATConfig:
    if isinstance(name_or_config, EATConfig):
        base = name_or_config
    elif isinstance(name_or_config, dict):
        base = EATConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in name_or_config.items()})
    else:
        key = name_or_config.lower().replace("-", "_")
        if key not in EAT_CONFIGS:
            raise KeyError(f"unknown EAT model {name_or_config!r}; known: {', '.join(sorted(EAT_CONFIGS))}")
        base = EAT_CONFIGS[key]
    fields = {k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v for k, v in overrides.items()}
    unknown = sorted(set(fields) - set(asdict(base)))
    if unknown:
        raise TypeError(f"unknown EAT config fields {unknown}; known: {sorted(asdict(base))}")
    return replace(base, **fields)


def create_eat(
    name_or_config: str | EATConfig | dict[str, Any] = "eat_s",
    *,
    num_classes: int,
    seq_len: int,
    dynamic_length: bool = True,
    **overrides: Any,
) -> EAT:
    """Build an EAT by name ("eat_s", "eat_m"), :class:`EATConfig` or config dict, with field overrides.

    Args:
        name_or_config: Model size.
        num_classes: Classifier outputs.
        seq_len: Clip length in samples.
        dynamic_length: Accept other clip lengths (position interpolation).
        **overrides: :class:`EATConfig` fields to change (e.g. ``ds_factors=(4, 4, 4)`` for 1 s speech).
    """
    return EAT(
        num_classes=num_classes,
        seq_len=seq_len,
        config=_config(name_or_config, overrides),
        dynamic_length=dynamic_length,
    )


def eat_s(*, num_classes: int = 50, seq_len: int = 114688, **overrides: Any) -> EAT:
    """EAT-S (about 5.2M parameters at 50 classes): width 128, 4 layers, 8 heads, feed-forward 512, nf 16.

    Args:
        num_classes: Classifier outputs.
        seq_len: Clip length in samples (ESC-50 at 22.05 kHz by default).
        **overrides: :class:`EATConfig` fields to change.
    """
    return create_eat("eat_s", num_classes=num_classes, seq_len=seq_len, **overrides)


def eat_m(*, num_classes: int = 527, seq_len: int = 221184, **overrides: Any) -> EAT:
    """EAT-M (about 25M parameters): width 256, 6 layers, 16 heads, feed-forward 2048, nf 32.

    Args:
        num_classes: Classifier outputs.
        seq_len: Clip length in samples (AudioSet at 22.05 kHz by default).
        **overrides: :class:`EATConfig` fields to change.
    """
    return create_eat("eat_m", num_classes=num_classes, seq_len=seq_len, **overrides)
