"""EAT's transformer aggregator: a CLS token and learned positions over the waveform tokens, post-norm encoder.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.2. The encoder's ``[B, C, T]`` output, projected to the
embedding width, becomes ``T`` tokens; a learned CLS token is prepended, a learned position embedding of length
``T + 1`` is added, and PyTorch's post-norm ``TransformerEncoderLayer`` (GELU, dropout 0.1) stack runs, followed by
a final LayerNorm. The classifier reads the CLS output. CLS and positions start at zero, as in the original. It is
the aggregator STAM and PETA use too: here miil-core's :class:`~miil.core.layers.ClsTransformer` with EAT's settings.

Changed from the original: clips of another length work without retraining. The position embedding's token part is
linearly interpolated to the actual token count on the fly (the CLS position is kept), and
:meth:`TransformerAggregator.resize_pos_embed` makes the change permanent for fine-tuning at a new length (the
original trainer nearest-interpolated CLS and tokens together).
"""

from __future__ import annotations

from typing import Any

from miil.core.layers import ClsTransformer
from miil.core.layers import resize_pos_embed as interpolate_pos_embed

__all__ = ["TransformerAggregator", "interpolate_pos_embed"]


class TransformerAggregator(ClsTransformer):
    """CLS token + learned positions + post-norm GELU transformer encoder + final LayerNorm; returns the CLS output.

    Args:
        embed_dim: Token width.
        num_tokens: Number of tokens the position embedding is built for (``seq_len // 1024`` in the paper).
        dynamic_length: Interpolate the position embedding when the token count differs from ``num_tokens``;
            when False such inputs raise an error.
        kwargs: The size of the encoder, :class:`~miil.core.layers.ClsTransformer` options: ``depth``,
            ``num_heads``, ``mlp_dim`` (feed-forward width), ``dropout`` (the original's 0.1).
    """

    def __init__(self, *, embed_dim: int, num_tokens: int, dynamic_length: bool = True, **kwargs: Any):
        # As in the original, the stack is made of copies of one freshly initialised layer (the default); EAT's own
        # initialisation (zero biases) runs over the whole model afterwards.
        super().__init__(
            embed_dim,
            num_tokens=num_tokens,
            activation="gelu",
            pos_embed_mode="interpolate" if dynamic_length else "fixed",
            init="zero_tokens",
            **kwargs,
        )

    @property
    def dynamic_length(self) -> bool:
        """Whether other token counts are accepted (positions interpolated)."""
        return self.pos_embed_mode == "interpolate"
