"""STAM's temporal transformer: a CLS token attends over the per-frame embeddings of a clip.

Paper: "An Image is Worth 16x16 Words, What is a Video Worth?" (STAM), Sharir, Noy and Zelnik-Manor, 2021
(arXiv 2103.13915), section 3 (temporal aggregation). The frame embeddings (the spatial ViT's CLS features) get a
learnable CLS token prepended and a learnable temporal position embedding added; a stack of transformer encoder
layers mixes them and the output CLS token represents the clip.

Defaults follow the original ``TAggregate``: 6 layers of PyTorch's ``nn.TransformerEncoderLayer`` with its own
defaults (8 heads, feed-forward width 2048, dropout 0.1, ReLU, post-norm) and a final LayerNorm; the CLS token and
the position embedding are initialised from a normal distribution truncated at two standard deviations (std 0.02),
linear layers likewise with zero bias. Changed from the original: a pre-norm option, batch-first tensors, and the
position embedding is resized (linear interpolation over time, the CLS position kept) both when a checkpoint for
another clip length is loaded and when a clip of another length is fed in, so one set of weights serves any T.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TemporalTransformer", "resize_temporal_pos_embed"]

_ACTIVATIONS = ("relu", "gelu")


def resize_temporal_pos_embed(pos_embed: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Resize a ``[1, T0 + 1, D]`` temporal position embedding to ``[1, num_frames + 1, D]``.

    The CLS position (index 0) is kept as is; the ``T0`` frame positions are linearly interpolated over time
    (``align_corners=False``, i.e. every frame position stands for the centre of its time slot).

    Args:
        pos_embed: Position embedding with the CLS position first.
        num_frames: Target number of frames ``T``.
    """
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1 or pos_embed.shape[1] < 2:
        raise ValueError(f"expected a [1, T + 1, D] temporal position embedding, got {tuple(pos_embed.shape)}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    cls_pos, frame_pos = pos_embed[:, :1], pos_embed[:, 1:]
    if frame_pos.shape[1] == num_frames:
        return pos_embed
    resized = F.interpolate(frame_pos.transpose(1, 2).float(), size=num_frames, mode="linear", align_corners=False)
    return torch.cat([cls_pos, resized.transpose(1, 2).to(pos_embed.dtype)], dim=1)


def _trunc_normal_(tensor: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)


class TemporalTransformer(nn.Module):
    """The STAM temporal aggregator: ``[B, T, D]`` frame embeddings in, ``[B, D]`` clip embedding (CLS) out.

    Args:
        num_frames: Clip length ``T`` the position embedding is created for (other lengths are interpolated).
        embed_dim: Width ``D`` of the frame embeddings and of the transformer.
        depth: Number of encoder layers.
        num_heads: Attention heads per layer.
        mlp_dim: Hidden width of each layer's feed-forward block.
        dropout: Dropout inside the encoder layers (attention weights, feed-forward, residual branches).
        activation: Feed-forward activation, ``"relu"`` (original) or ``"gelu"``.
        norm_first: Pre-norm layers (LayerNorm before attention / feed-forward) instead of the original post-norm.
        final_norm: Apply a LayerNorm to the encoder output (original: yes).
        layer_norm_eps: Epsilon of every LayerNorm.
        use_pos_embed: Add the learnable temporal position embedding; without it the aggregation ignores frame
            order.
        pos_embed_std: Initial standard deviation of the position embedding (original 0.02, suited to fine-tuning a
            pretrained ViT; a small model trained from scratch learns frame order much sooner with a larger one).
    """

    def __init__(
        self,
        *,
        num_frames: int = 16,
        embed_dim: int = 768,
        depth: int = 6,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        final_norm: bool = True,
        layer_norm_eps: float = 1e-5,
        use_pos_embed: bool = True,
        pos_embed_std: float = 0.02,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if num_frames < 1 or depth < 1:
            raise ValueError(f"num_frames and depth must be >= 1, got {num_frames} and {depth}")
        self.num_frames = num_frames
        self.embed_dim = embed_dim
        self.pos_embed_std = float(pos_embed_std)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_frames + 1, embed_dim)) if use_pos_embed else None
        layer = nn.TransformerEncoderLayer(
            d_model=embed_dim,
            nhead=num_heads,
            dim_feedforward=mlp_dim,
            dropout=dropout,
            activation=activation,
            layer_norm_eps=layer_norm_eps,
            batch_first=True,
            norm_first=norm_first,
        )
        norm = nn.LayerNorm(embed_dim, eps=layer_norm_eps) if final_norm else None
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, norm=norm, enable_nested_tensor=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The original initialisation: truncated normal (std 0.02) tokens and linear weights, zero biases."""
        _trunc_normal_(self.cls_token.data, 0.02)
        if self.pos_embed is not None:
            _trunc_normal_(self.pos_embed.data, self.pos_embed_std)
        for module in self.encoder.modules():
            if isinstance(module, nn.Linear):
                _trunc_normal_(module.weight.data, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "pos_embed"}

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected, errors):
        # A checkpoint made for another clip length (STAM-16 weights in a STAM-32 model) loads with its temporal
        # position embedding interpolated; every other key stays strict.
        key = prefix + "pos_embed"
        if self.pos_embed is not None and key in state_dict:
            src = state_dict[key]
            if src.ndim == 3 and src.shape[1] != self.pos_embed.shape[1] and src.shape[2] == self.embed_dim:
                state_dict[key] = resize_temporal_pos_embed(src, self.num_frames)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected, errors)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Aggregate a clip.

        Args:
            frames: ``[B, T, D]`` frame embeddings in temporal order.

        Returns:
            ``[B, D]``: the encoder's output at the CLS position.
        """
        if frames.ndim != 3 or frames.shape[-1] != self.embed_dim:
            raise ValueError(f"expected [B, T, {self.embed_dim}] frame embeddings, got {tuple(frames.shape)}")
        x = torch.cat([self.cls_token.expand(frames.shape[0], -1, -1).to(frames.dtype), frames], dim=1)
        if self.pos_embed is not None:
            pos = self.pos_embed
            if pos.shape[1] != x.shape[1]:
                pos = resize_temporal_pos_embed(pos, frames.shape[1])
            x = x + pos.to(x.dtype)
        return self.encoder(x)[:, 0]

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}, embed_dim={self.embed_dim}, pos_embed={self.pos_embed is not None}"
