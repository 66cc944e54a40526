"""A CLS token over a token sequence: the aggregator of STAM, PETA and EAT.

Papers: STAM (arXiv 2103.13915), section 3, aggregates the frame embeddings of a clip; PETA (arXiv 2109.12499),
section 3, the image embeddings of a photo album; EAT (arXiv 2204.11479), section 3.2, the tokens of a raw-waveform
encoder. The authors wrote the same module (``TAggregate``) for the three: a learnable CLS token is prepended to the
tokens, a learnable position embedding is added, PyTorch's ``nn.TransformerEncoderLayer`` stack (post-norm) and a
final LayerNorm run, and the output at the CLS position stands for the sequence. What the papers set differently:

| | STAM | PETA | EAT |
|---|---|---|---|
| layers x heads, feed-forward | 6 x 8, 2048 | 6 x 8, 2048 | 4 x 8, 512 (S); 6 x 16, 2048 (M) |
| activation | ReLU | ReLU | GELU |
| position embedding | T + 1 positions | 33 positions, optional | T + 1 positions, resized for fine-tuning |
| initialisation | truncated normal, std 0.02 | truncated normal, std 0.02 | CLS and positions zero, layers PyTorch's |

Changed from the originals: batch-first tensors; a key-padding ``mask`` for sequences of different lengths (albums of
any size) instead of repeating items; every layer's attention, per head, on request (the original PETA kept the
last layer's, head-averaged); ``norm_first`` for pre-norm layers; a sequence whose length differs from the position
embedding's follows ``pos_embed_mode``: ``"interpolate"`` resamples the token positions linearly (the CLS position
kept), on the fly and when a checkpoint made for another length is loaded; ``"crop"`` uses the first positions and
refuses longer sequences; ``"fixed"`` accepts only the built length.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..io import remap_state_dict

__all__ = [
    "INITS",
    "POS_EMBED_MODES",
    "ClsEncoderLayer",
    "ClsTransformer",
    "check_token_mask",
    "convert_original_aggregator",
    "original_aggregator_rules",
    "rename_legacy_encoder_keys",
    "resize_pos_embed",
]

POS_EMBED_MODES = ("interpolate", "crop", "fixed")
INITS = ("trunc_normal", "zero_tokens")
_ACTIVATIONS = ("relu", "gelu")


def resize_pos_embed(pos_embed: torch.Tensor, num_tokens: int, *, num_prefix: int = 1) -> torch.Tensor:
    """Resize a ``[1, num_prefix + N0, D]`` position embedding to ``[1, num_prefix + num_tokens, D]``.

    The prefix positions (the CLS token's) are kept as they are; the ``N0`` token positions are linearly
    interpolated (``align_corners=False``: every position stands for the centre of its slot).

    Args:
        pos_embed: Position embedding, prefix positions first.
        num_tokens: Target number of token positions.
        num_prefix: Leading positions kept unchanged.
    """
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1 or pos_embed.shape[1] <= num_prefix:
        raise ValueError(f"expected a [1, {num_prefix} + N, D] position embedding, got {tuple(pos_embed.shape)}")
    if num_tokens < 1:
        raise ValueError(f"cannot resize the position embedding to {num_tokens} tokens")
    prefix, tokens = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    if tokens.shape[1] == num_tokens:
        return pos_embed
    resized = F.interpolate(tokens.transpose(1, 2).float(), size=num_tokens, mode="linear", align_corners=False)
    return torch.cat([prefix, resized.transpose(1, 2).to(pos_embed.dtype)], dim=1)


def check_token_mask(
    mask: torch.Tensor | None,
    batch: int,
    length: int,
    device: torch.device,
    *,
    sequence: str = "sequence",
    item: str = "token",
) -> torch.Tensor:
    """Validate a ``[B, N]`` mask (``True`` = a real item) and return it as a bool tensor; ``None`` means all real.

    Args:
        mask: The mask, or ``None``.
        batch: Expected batch size ``B``.
        length: Expected sequence length ``N``.
        device: Device of the returned mask.
        sequence: What a row is, for the messages (``"album"``).
        item: What an entry is, for the messages (``"image"``).
    """
    if mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    if mask.shape != (batch, length):
        raise ValueError(f"{sequence} mask must have shape {(batch, length)}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{sequence} mask must be a bool tensor (True = real {item}), got {mask.dtype}")
    if not bool(mask.any(dim=1).all()):
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"{sequence}s {empty} of the batch have no {item}s (their mask is all False)")
    return mask.to(device)


class ClsEncoderLayer(nn.TransformerEncoderLayer):
    """PyTorch's transformer encoder layer (batch-first) that can also return its attention weights per head.

    The parameter names are PyTorch's (``self_attn``, ``linear1``, ``linear2``, ``norm1``, ``norm2``), as in the
    originals, so their checkpoints load by renaming a prefix. ``forward`` is PyTorch's own (with its fast path in
    inference); :meth:`forward_with_attention` computes the same layer and returns the attention too.

    Args:
        embed_dim: Token width.
        num_heads: Attention heads.
        mlp_dim: Hidden width of the feed-forward block.
        dropout: Dropout on the attention weights, after attention, inside and after the feed-forward block.
        activation: ``"relu"`` (STAM, PETA) or ``"gelu"`` (EAT).
        norm_first: Pre-norm instead of the originals' post-norm.
        layer_norm_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        embed_dim: int,
        *,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
    ):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        if embed_dim % num_heads:
            raise ValueError(f"token width {embed_dim} is not divisible by num_heads={num_heads}")
        super().__init__(
            d_model=embed_dim,
            nhead=num_heads,
            dim_feedforward=mlp_dim,
            dropout=dropout,
            activation=activation,
            layer_norm_eps=layer_norm_eps,
            batch_first=True,
            norm_first=norm_first,
        )
        self.activation_name = activation

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward_with_attention(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's output and its attention weights ``[B, heads, N, N]``.

        Args:
            x: ``[B, N, embed_dim]`` tokens.
            key_padding_mask: ``[B, N]`` bool, ``True`` where a token is padding (PyTorch's convention).
        """

        def attend(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out, weights = self.self_attn(
                z, z, z, key_padding_mask=key_padding_mask, need_weights=True, average_attn_weights=False
            )
            return self.dropout1(out), weights

        if self.norm_first:
            attended, weights = attend(self.norm1(x))
            x = x + attended
            return x + self._feed_forward(self.norm2(x)), weights
        attended, weights = attend(x)
        x = self.norm1(x + attended)
        return self.norm2(x + self._feed_forward(x)), weights


def _legacy_renames(keys, prefix: str) -> list[tuple[str, str]]:
    old = prefix + "encoder."
    return [(k, prefix + k[len(old) :]) for k in keys if k.startswith((old + "layers.", old + "norm."))]


def rename_legacy_encoder_keys(state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Our earlier key layout, which held the layers in an ``nn.TransformerEncoder`` (``encoder.layers.i.*``,
    ``encoder.norm.*``), renamed to :class:`ClsTransformer`'s (``layers.i.*``, ``norm.*``); other keys unchanged.

    Args:
        state_dict: Weights that may use the earlier layout.
        prefix: Prefix of the aggregator inside ``state_dict`` (``"temporal."``, ``"aggregator."``).
    """
    renamed = dict(_legacy_renames(state_dict, prefix))
    return {renamed.get(k, k): v for k, v in state_dict.items()}


def _trunc_normal_(tensor: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)


class ClsTransformer(nn.Module):
    """CLS token + optional learned position embedding + transformer encoder; ``[B, N, D]`` in, ``[B, D]`` out.

    Args:
        embed_dim: Token width ``D``.
        depth: Encoder layers.
        num_heads: Attention heads per layer.
        mlp_dim: Feed-forward hidden width.
        dropout: Dropout inside the encoder layers.
        activation: ``"relu"`` or ``"gelu"``.
        norm_first: Pre-norm layers instead of post-norm.
        final_norm: LayerNorm on the encoder output (the originals: yes).
        layer_norm_eps: Epsilon of every LayerNorm.
        pos_embed: Add a learned position embedding (without it the output does not depend on the token order).
        num_tokens: Token positions of the position embedding (required with ``pos_embed``).
        pos_embed_mode: Sequences of another length: ``"interpolate"``, ``"crop"`` or ``"fixed"`` (module docstring).
        init: ``"trunc_normal"`` (STAM, PETA: CLS, positions and linear weights from a normal truncated at two
            standard deviations, std 0.02; zero biases) or ``"zero_tokens"`` (EAT: CLS and positions zero, the
            layers as PyTorch builds them).
        pos_embed_std: Standard deviation of the position embedding with ``init="trunc_normal"``.
        clone_layers: Start every layer as a copy of one initialised layer, as ``nn.TransformerEncoder`` and the
            originals do; ``False`` builds each layer on its own.
    """

    # Words for the mask messages; a subclass names its sequences (an album of images).
    mask_words: tuple[str, str] = ("sequence", "token")

    def __init__(
        self,
        embed_dim: int,
        *,
        depth: int = 6,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        final_norm: bool = True,
        layer_norm_eps: float = 1e-5,
        pos_embed: bool = True,
        num_tokens: int | None = None,
        pos_embed_mode: str = "interpolate",
        init: str = "trunc_normal",
        pos_embed_std: float = 0.02,
        clone_layers: bool = True,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if pos_embed_mode not in POS_EMBED_MODES:
            raise ValueError(f"pos_embed_mode must be one of {POS_EMBED_MODES}, got {pos_embed_mode!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if pos_embed and (num_tokens is None or num_tokens < 1):
            raise ValueError(f"a position embedding needs num_tokens >= 1, got {num_tokens}")
        self.embed_dim = embed_dim
        self.num_tokens = num_tokens
        self.pos_embed_mode = pos_embed_mode
        self.pos_embed_std = float(pos_embed_std)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if pos_embed:
            self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, embed_dim))
        else:
            self.register_parameter("pos_embed", None)

        def make_layer() -> ClsEncoderLayer:
            return ClsEncoderLayer(
                embed_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                dropout=dropout,
                activation=activation,
                norm_first=norm_first,
                layer_norm_eps=layer_norm_eps,
            )

        if clone_layers:
            first = make_layer()
            self.layers = nn.ModuleList([first, *(copy.deepcopy(first) for _ in range(depth - 1))])
        else:
            self.layers = nn.ModuleList(make_layer() for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=layer_norm_eps) if final_norm else None
        if init == "trunc_normal":
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """The STAM / PETA initialisation: truncated normal (at two std) CLS token, positions and linear weights,
        zero biases, unit LayerNorms; the attention's input projection keeps PyTorch's."""
        _trunc_normal_(self.cls_token.data, 0.02)
        if self.pos_embed is not None:
            _trunc_normal_(self.pos_embed.data, self.pos_embed_std)
        modules = [*self.layers.modules(), *([self.norm] if self.norm is not None else [])]
        for module in modules:
            if isinstance(module, nn.Linear):
                _trunc_normal_(module.weight.data, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def num_heads(self) -> int:
        return self.layers[0].self_attn.num_heads

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "pos_embed"} if self.pos_embed is not None else {"cls_token"}

    @torch.no_grad()
    def resize_pos_embed(self, num_tokens: int) -> None:
        """Resize the position embedding to ``num_tokens`` positions for good (fine-tuning at a new length).

        Args:
            num_tokens: The new number of token positions.
        """
        if self.pos_embed is None:
            raise ValueError("this aggregator has no position embedding to resize")
        self.pos_embed = nn.Parameter(resize_pos_embed(self.pos_embed.data, num_tokens))
        self.num_tokens = num_tokens

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected, errors):
        for old, new in _legacy_renames(list(state_dict), prefix):
            state_dict[new] = state_dict.pop(old)
        key = prefix + "pos_embed"
        if self.pos_embed_mode == "interpolate" and self.pos_embed is not None and key in state_dict:
            # A checkpoint made for another length (STAM-16 weights in a STAM-32 model) loads with its positions
            # interpolated; every other key stays strict.
            src = state_dict[key]
            if src.ndim == 3 and src.shape[1] != self.pos_embed.shape[1] and src.shape[2] == self.embed_dim:
                state_dict[key] = resize_pos_embed(src, self.pos_embed.shape[1] - 1)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected, errors)

    def _positions(self, n: int) -> torch.Tensor:
        pos = self.pos_embed
        built = pos.shape[1] - 1
        if built == n:
            return pos
        if self.pos_embed_mode == "interpolate":
            return resize_pos_embed(pos, n)
        if self.pos_embed_mode == "crop":
            if n > built:
                raise ValueError(
                    f"a sequence of {n} tokens is longer than the position embedding ({built}); feed at most {built}, "
                    "or build the module with pos_embed_mode='interpolate' or without a position embedding"
                )
            return pos[:, : n + 1]
        raise ValueError(
            f"got {n} tokens but the position embedding has {built}; build the module with "
            "pos_embed_mode='interpolate' or call resize_pos_embed"
        )

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor | None = None, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Aggregate a batch of sequences into their CLS outputs.

        Args:
            tokens: ``[B, N, embed_dim]``; padded positions may hold anything.
            mask: ``[B, N]`` bool, ``True`` for real tokens (default: all real); padded keys get no attention.
            return_attention: Also return every layer's attention, ``[B, depth, heads, N + 1, N + 1]`` (index 0 is
                the CLS token; padded keys get exactly zero weight).

        Returns:
            ``[B, embed_dim]``, or ``(output, attention)``.
        """
        if tokens.ndim != 3 or tokens.shape[-1] != self.embed_dim:
            raise ValueError(f"expected tokens [B, N, {self.embed_dim}], got {tuple(tokens.shape)}")
        b, n, _ = tokens.shape
        padding = None
        if mask is not None:
            sequence, item = self.mask_words
            mask = check_token_mask(mask, b, n, tokens.device, sequence=sequence, item=item)
            if not bool(mask.all()):  # all real: PyTorch's unmasked (fast) path
                padding = torch.cat([mask.new_zeros(b, 1), ~mask], dim=1)
        x = torch.cat([self.cls_token.expand(b, -1, -1).to(tokens.dtype), tokens], dim=1)
        if self.pos_embed is not None:
            x = x + self._positions(n).to(x.dtype)
        attention = []
        for layer in self.layers:
            if return_attention:
                x, weights = layer.forward_with_attention(x, padding)
                attention.append(weights)
            else:
                x = layer(x, src_key_padding_mask=padding)
        if self.norm is not None:
            x = self.norm(x)
        out = x[:, 0]
        return (out, torch.stack(attention, dim=1)) if return_attention else out

    def extra_repr(self) -> str:
        pos = self.pos_embed_mode if self.pos_embed is not None else None
        return f"embed_dim={self.embed_dim}, num_tokens={self.num_tokens}, pos_embed={pos}"


def original_aggregator_rules(source: str = "", target: str = "") -> list[tuple[str, str]]:
    """Key rules from the originals' ``TAggregate`` layout to :class:`ClsTransformer`'s.

    The originals store ``cls_token``, ``pos_embed``, ``transformer_enc.layers.<i>.<PyTorch layer keys>`` and
    ``transformer_enc.norm.*``; ours are the same without ``transformer_enc.``.

    Args:
        source: Prefix of the aggregator in the original checkpoint (``"aggregate."`` in STAM and PETA, ``"tf."`` in
            EAT, ``""`` for the aggregator alone).
        target: Prefix of the :class:`ClsTransformer` in our model (``"temporal."``, ``"aggregator."``).
    """
    s = re.escape(source)
    return [
        (rf"{s}(cls_token|pos_embed)", rf"{target}\1"),
        (rf"{s}transformer_enc\.(layers\.\d+\..+|norm\.(?:weight|bias))", rf"{target}\1"),
    ]


def convert_original_aggregator(
    state_dict: Mapping[str, torch.Tensor],
    module: ClsTransformer,
    *,
    source_prefix: str | None = None,
    drop_unused_pos_embed: bool = False,
) -> dict[str, torch.Tensor]:
    """Convert the weights of an original ``TAggregate`` alone into ``module``'s, strictly.

    Every key must be mapped and every key of ``module`` produced, with matching shapes. A position embedding made
    for another length is interpolated when ``module`` interpolates (``pos_embed_mode="interpolate"``).

    Args:
        state_dict: The aggregator's weights, bare or under ``aggregate.`` (as in the full STAM / PETA checkpoints),
            with or without DataParallel's ``module.`` prefix.
        module: The target; its keys and shapes are the expected ones.
        source_prefix: Prefix of the aggregator's keys (default: ``"aggregate."`` when present, else none).
        drop_unused_pos_embed: Discard the original's ``pos_embed`` when ``module`` has none (PETA stores it also
            when trained without one); otherwise that key is refused.

    Returns:
        A state dict that ``module.load_state_dict(..., strict=True)`` accepts.

    Raises:
        miil.core.io.KeyMappingError: Listing unmapped, missing or unexpected keys and shape mismatches.
    """
    sd = dict(state_dict)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    if source_prefix is None:
        source_prefix = "aggregate." if "aggregate.cls_token" in sd else ""
    key = source_prefix + "pos_embed"
    pos, own = sd.get(key), module.pos_embed
    resizable = pos is not None and own is not None and module.pos_embed_mode == "interpolate" and pos.ndim == 3
    if resizable and pos.shape[1] != own.shape[1] and pos.shape[2] == own.shape[2]:
        sd[key] = resize_pos_embed(pos, own.shape[1] - 1)
    drop = [re.escape(key)] if drop_unused_pos_embed and own is None else []
    return remap_state_dict(sd, original_aggregator_rules(source_prefix), expected=module, drop=drop)
