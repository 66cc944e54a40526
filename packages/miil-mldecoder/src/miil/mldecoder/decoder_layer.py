"""The ML-Decoder layer: a transformer-decoder layer without self-attention, computed with SDPA.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), method
(the decoder without self-attention).
The paper removes the self-attention block of the transformer decoder (the queries are fixed, so self-attention
over them is a constant that a layer norm can absorb) and keeps cross-attention and the feed-forward block, each in
post-norm form. What is left of the self-attention block in the reference code is ``norm1(q + dropout(q))``; it is
kept so that trained weights (``norm1``) carry over.

Changed from the reference code:

* attention is ``torch.nn.functional.scaled_dot_product_attention`` on ``[B, heads, tokens, head_dim]`` tensors
  (batch-first); the weights keep ``nn.MultiheadAttention``'s packed ``in_proj_weight`` layout, so checkpoints map
  one to one;
* the layer is a plain module, not an ``nn.TransformerDecoderLayer`` stand-in, so it works on PyTorch >= 2.1, whose
  ``nn.TransformerDecoder`` looks for a ``self_attn`` attribute and passes ``*_is_causal`` arguments the reference
  layer does not accept;
* outside training the batch-independent part (``norm1`` and the query projection) is computed once per call
  instead of once per sample;
* ``norm1``'s affine transform is folded into the query projection (``W (g * n + b) + c = (W g) n + (W b + c)``
  for the normalised stub ``n``), so when the queries are frozen, training needs no gradient with respect to the
  ``B x K`` projection input: one ``[B K, D] x [D, D]`` matrix product less per backward pass, same outputs up to
  float rounding; the packed ``in_proj_weight`` is split once per call, not sliced twice;
* dropout on CPU draws its keep mask as ``uniform >= p`` (same Bernoulli(1 - p) distribution and 1 / (1 - p)
  scaling as ``nn.Dropout``, about twice as fast as ``bernoulli_`` there); CUDA keeps torch's fused kernel.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Dropout", "MLDecoderLayer", "QueryCrossAttention"]


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a faster CPU mask: keep where a float32 uniform draw is ``>= p``, scale by ``1 / (1 - p)``.

    The mask has the same distribution as ``nn.Dropout``'s (independent Bernoulli(1 - p) per element); only the
    random stream differs. On other devices it calls ``F.dropout`` (a fused kernel on CUDA).

    Args:
        p: Probability of zeroing an element.
    """

    def __init__(self, p: float = 0.5):
        super().__init__(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu" or self.p >= 1:
            return F.dropout(x, self.p, True)
        keep = torch.rand(x.shape, dtype=torch.float32, device=x.device).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * keep.to(x.dtype)


class QueryCrossAttention(nn.Module):
    """Multi-head cross-attention of queries over memory tokens, with ``nn.MultiheadAttention``'s parameters.

    Args:
        embed_dim: Model width ``D``.
        num_heads: Number of attention heads; must divide ``embed_dim``.
        attn_drop: Dropout on the attention weights during training.
    """

    def __init__(self, embed_dim: int, num_heads: int, attn_drop: float = 0.0):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.attn_drop = float(attn_drop)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.MultiheadAttention's initialisation.
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        memory: torch.Tensor,
        *,
        query_scale: torch.Tensor | None = None,
        query_shift: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from queries to memory.

        With ``query_scale`` / ``query_shift`` the queries are ``query * query_scale + query_shift`` (a layer norm's
        affine map), folded into the query projection: ``W (s * n + t) + c = (W * s) n + (W t + c)``. Same numbers up
        to rounding, but when ``query`` needs no gradient (frozen queries) the backward pass skips the product for
        its gradient.

        Args:
            query: ``[B, K, D]`` or ``[1, K, D]`` (shared by the whole batch) queries.
            memory: ``[B, L, D]`` memory tokens.
            query_scale: Optional ``[D]`` per-channel scale of the queries.
            query_shift: Optional ``[D]`` per-channel shift of the queries.

        Returns:
            ``[B, K, D]``.
        """
        d = self.embed_dim
        batch = memory.shape[0]
        # One split (not two slices) of the packed weights: its backward writes one [3D, D] gradient, no zero fill.
        wq, wkv = self.in_proj_weight.split([d, 2 * d])
        bq, bkv = self.in_proj_bias.split([d, 2 * d])
        if query_shift is not None:
            bq = torch.addmv(bq, wq, query_shift)
        if query_scale is not None:
            wq = wq * query_scale
        q = self._heads(F.linear(query, wq, bq))
        # Keys and values in one product: [B, L, 2D] -> two [B, heads, L, head_dim] views.
        kv = F.linear(memory, wkv, bkv).view(batch, -1, 2, self.num_heads, self.head_dim)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        if q.shape[0] != batch:
            q = q.expand(batch, -1, -1, -1)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(batch, -1, d))


class MLDecoderLayer(nn.Module):
    """One ML-Decoder layer: the queries' residual stub, cross-attention and a ReLU feed-forward block, post-norm.

    Args:
        embed_dim: Model width ``D``.
        num_heads: Number of attention heads.
        ffn_dim: Hidden width of the feed-forward block.
        dropout: Dropout on the residual branches, inside the feed-forward block and on the attention weights.
        layer_norm_eps: Epsilon of the three layer norms.
    """

    def __init__(
        self,
        embed_dim: int = 768,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.attn = QueryCrossAttention(embed_dim, num_heads, attn_drop=dropout)
        self.norm2 = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.norm3 = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.drop_query = Dropout(dropout)
        self.drop_attn = Dropout(dropout)
        self.drop_ffn = Dropout(dropout)
        self.drop_out = Dropout(dropout)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Decode.

        Args:
            queries: ``[K, D]`` queries shared by every sample, or ``[B, K, D]``.
            memory: ``[B, L, D]`` projected backbone tokens.

        Returns:
            ``[B, K, D]`` decoded queries.
        """
        if queries.ndim == 2:
            queries = queries.unsqueeze(0)
        if self.training and self.drop_query.p > 0 and queries.shape[0] != memory.shape[0]:
            # Dropout draws an independent mask per sample, as with the reference's expanded queries.
            queries = queries.expand(memory.shape[0], -1, -1)
        # norm1(stub) as a plain normalisation whose affine map is folded into the query projection.
        norm = self.norm1
        stub = F.layer_norm(queries + self.drop_query(queries), norm.normalized_shape, eps=norm.eps)
        tgt = torch.addcmul(norm.bias, stub, norm.weight)
        attn = self.attn(stub, memory, query_scale=norm.weight, query_shift=norm.bias)
        tgt = self.norm2(tgt + self.drop_attn(attn))
        ffn = self.fc2(self.drop_ffn(F.relu(self.fc1(tgt))))
        return self.norm3(tgt + self.drop_out(ffn))
