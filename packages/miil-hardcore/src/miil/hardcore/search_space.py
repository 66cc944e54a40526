"""The HardCoRe-NAS search space as data, and architectures rendered as timm architecture definitions.

Paper: "HardCoRe-NAS: Hard Constrained diffeRentiable Neural Architecture Search", Nayman et al., ICML 2021
(arXiv 2102.11646), section 3.1 and figure 2. A fixed MobileNetV3 frame (3x3 stride-2 stem, one depthwise-separable
block, a 1x1 conv-bn-act block, pooling, a 1x1 conv head and a classifier) around searched stages of up to four
inverted-residual blocks. Every block picks one of 12 options (expansion 3/4/6 x kernel 3/5 x squeeze-excite on/off,
``alpha``) and every stage one depth (2/3/4 blocks, ``beta``).

An architecture is one option index per present block; the index of (expansion ``i_e``, kernel ``i_k``, SE ``i_se``)
is ``(i_e * n_kernels + i_k) * n_se + i_se`` (``4 i_e + 2 i_k + i_se`` in the paper's space). It renders as the
timm ``arch_def`` strings that timm's ``hardcorenas_a`` ... ``hardcorenas_f`` use, so any child is a timm
``MobileNetV3`` (see :mod:`miil.hardcore.builder`). A :class:`SearchSpace` may be reduced (fewer or narrower stages,
fewer options, a small input) for small data; it is stored with every latency table and supernet checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "HARDCORENAS_ARCH_DEFS",
    "SPACES",
    "Architecture",
    "BlockChoice",
    "SearchSpace",
    "StageSpec",
    "hardcorenas_space",
    "resolve_space",
]

ACTIVATIONS = ("relu", "hard_swish")
_IR_BLOCK = re.compile(r"^ir_r1_k(?P<k>\d+)_s(?P<s>\d+)_e(?P<e>\d+)_c(?P<c>\d+)(?P<nre>_nre)?(?P<se>_se0\.25)?$")


@dataclass(frozen=True)
class StageSpec:
    """One searched stage of the frame.

    Args:
        channels: Output channels of every block of the stage.
        stride: Stride of the stage's first block.
        act: Activation of the stage's blocks, "relu" or "hard_swish".
    """

    channels: int
    stride: int
    act: str

    def __post_init__(self):
        if self.channels <= 0 or self.stride not in (1, 2):
            raise ValueError(f"stage needs channels > 0 and stride 1 or 2, got {self}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"stage activation must be one of {ACTIVATIONS}, got {self.act!r}")


@dataclass(frozen=True)
class BlockChoice:
    """One of the block options: expansion ratio, depthwise kernel size and squeeze-excite on/off."""

    expansion: int
    kernel: int
    se: bool


_PAPER_STAGES = (
    StageSpec(24, 2, "relu"),
    StageSpec(40, 2, "relu"),
    StageSpec(80, 2, "hard_swish"),
    StageSpec(112, 1, "hard_swish"),
    StageSpec(192, 2, "hard_swish"),
)


@dataclass(frozen=True)
class SearchSpace:
    """A HardCoRe-NAS search space: the fixed frame, the searched stages, block options and depths.

    The defaults are the paper's space (5 stages, 12 options, depths 2/3/4, 224x224 input).

    Args:
        stages: The searched stages.
        expansions: Expansion ratios of the inverted-residual blocks.
        kernels: Depthwise kernel sizes.
        se_options: Squeeze-excite off/on options (a subset of ``(False, True)``).
        depths: Allowed numbers of blocks per stage (sorted, each between 1 and 4 in the paper).
        stem_channels: Output channels of the 3x3 stride-2 stem conv.
        first_block_channels: Output channels of the fixed depthwise-separable block after the stem.
        head_block_channels: Output channels of the fixed 1x1 conv-bn-act block after the last stage.
        num_features: Channels of the 1x1 conv head after global pooling.
        image_size: Input resolution the latency table is measured at.
        in_chans: Input image channels.
    """

    stages: tuple[StageSpec, ...] = _PAPER_STAGES
    expansions: tuple[int, ...] = (3, 4, 6)
    kernels: tuple[int, ...] = (3, 5)
    se_options: tuple[bool, ...] = (False, True)
    depths: tuple[int, ...] = (2, 3, 4)
    stem_channels: int = 32
    first_block_channels: int = 16
    head_block_channels: int = 960
    num_features: int = 1280
    image_size: int = 224
    in_chans: int = 3
    options: tuple[BlockChoice, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        stages = tuple(s if isinstance(s, StageSpec) else StageSpec(**s) for s in self.stages)
        object.__setattr__(self, "stages", stages)
        for name in ("expansions", "kernels", "se_options", "depths"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not stages:
            raise ValueError("a search space needs at least one stage")
        if not self.depths or list(self.depths) != sorted(set(self.depths)) or self.depths[0] < 1:
            raise ValueError(f"depths must be distinct, increasing and >= 1, got {self.depths}")
        if not self.expansions or not self.kernels or not self.se_options:
            raise ValueError("expansions, kernels and se_options must each hold at least one value")
        if any(k % 2 == 0 or k < 1 for k in self.kernels):
            raise ValueError(f"kernels must be odd and positive, got {self.kernels}")
        if any(e < 1 for e in self.expansions):
            raise ValueError(f"expansions must be >= 1, got {self.expansions}")
        if len(set(self.se_options)) != len(self.se_options) or not set(self.se_options) <= {False, True}:
            raise ValueError(f"se_options must be a subset of (False, True), got {self.se_options}")
        stride = 2 * int(np.prod([s.stride for s in stages]))
        if stride > 32:
            raise ValueError(f"the total stride {stride} exceeds 32 (timm turns it into dilation); use fewer strides")
        if self.image_size < stride:
            raise ValueError(f"image_size {self.image_size} is smaller than the total stride {stride}")
        options = tuple(
            BlockChoice(int(e), int(k), bool(se))
            for e in self.expansions
            for k in self.kernels
            for se in self.se_options
        )
        object.__setattr__(self, "options", options)

    # ------------------------------------------------------------------ sizes
    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def max_depth(self) -> int:
        return self.depths[-1]

    @property
    def min_depth(self) -> int:
        return self.depths[0]

    @property
    def num_options(self) -> int:
        return len(self.options)

    @property
    def alpha_shape(self) -> tuple[int, int, int]:
        """Shape of the block-option variables: (stages, max depth, options)."""
        return (self.num_stages, self.max_depth, self.num_options)

    @property
    def beta_shape(self) -> tuple[int, int]:
        """Shape of the depth variables: (stages, depth options)."""
        return (self.num_stages, len(self.depths))

    def size(self) -> int:
        """Number of distinct networks in the space."""
        per_stage = sum(self.num_options**d for d in self.depths)
        return int(per_stage**self.num_stages)

    def same_networks(self, other: SearchSpace) -> bool:
        """Whether ``other`` describes the same networks (the input resolution may differ)."""
        return replace(other, image_size=self.image_size) == self

    def option_index(self, choice: BlockChoice) -> int:
        try:
            return self.options.index(choice)
        except ValueError:
            raise ValueError(f"{choice} is not an option of this search space ({len(self.options)} options)") from None

    # ------------------------------------------------------------------ geometry
    def stage_input_channels(self, stage: int) -> int:
        return self.first_block_channels if stage == 0 else self.stages[stage - 1].channels

    def stage_input_resolution(self, stage: int) -> int:
        """Spatial size of the stage's input (timm's symmetric padding: ceil division by each stride)."""
        size = -(-self.image_size // 2)
        for s in self.stages[:stage]:
            size = -(-size // s.stride)
        return size

    def block_geometry(self, stage: int, index: int) -> dict[str, Any]:
        """In/out channels, stride, input resolution and activation of block ``index`` of ``stage``."""
        spec = self.stages[stage]
        first = index == 0
        res = self.stage_input_resolution(stage)
        return {
            "in_channels": self.stage_input_channels(stage) if first else spec.channels,
            "out_channels": spec.channels,
            "stride": spec.stride if first else 1,
            "resolution": res if first else -(-res // spec.stride),
            "act": spec.act,
        }

    # ------------------------------------------------------------------ architectures
    def heaviest(self) -> Architecture:
        """The heaviest path: the last (largest) option in every block and the maximal depth."""
        return Architecture(tuple((self.num_options - 1,) * self.max_depth for _ in self.stages))

    def validate(self, arch: Architecture) -> Architecture:
        if len(arch.blocks) != self.num_stages:
            raise ValueError(f"architecture has {len(arch.blocks)} stages, the search space {self.num_stages}")
        for s, blocks in enumerate(arch.blocks):
            if len(blocks) not in self.depths:
                raise ValueError(f"stage {s} has {len(blocks)} blocks; allowed depths are {self.depths}")
            bad = [c for c in blocks if not 0 <= c < self.num_options]
            if bad:
                raise ValueError(f"stage {s} has option indices {bad} outside 0..{self.num_options - 1}")
        return arch

    def random_architecture(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random architecture (depth, then options)."""
        return Architecture(
            tuple(
                tuple(int(c) for c in rng.integers(0, self.num_options, size=int(rng.choice(self.depths))))
                for _ in self.stages
            )
        )

    def block_string(self, stage: int, index: int, option: int) -> str:
        """The timm block string, e.g. ``ir_r1_k5_s2_e3_c24_nre_se0.25``."""
        geo = self.block_geometry(stage, index)
        choice = self.options[option]
        text = f"ir_r1_k{choice.kernel}_s{geo['stride']}_e{choice.expansion}_c{geo['out_channels']}"
        if geo["act"] == "relu":
            text += "_nre"
        if choice.se:
            text += "_se0.25"
        return text

    def fixed_first_block_string(self) -> str:
        return f"ds_r1_k3_s1_e1_c{self.first_block_channels}_nre"

    def fixed_head_block_string(self) -> str:
        return f"cn_r1_k1_s1_c{self.head_block_channels}"

    def arch_def(self, arch: Architecture) -> list[list[str]]:
        """The timm architecture definition (list of stages of block strings) of ``arch``."""
        self.validate(arch)
        body = [[self.block_string(s, j, c) for j, c in enumerate(blocks)] for s, blocks in enumerate(arch.blocks)]
        return [[self.fixed_first_block_string()], *body, [self.fixed_head_block_string()]]

    def parse_arch_def(self, arch_def: Sequence[Sequence[str]] | str) -> Architecture:
        """The architecture of a timm ``arch_def`` (a list, or its JSON / Python-literal text) in this space.

        Raises:
            ValueError: naming the block string that does not belong to the space.
        """
        if isinstance(arch_def, str):
            try:
                arch_def = json.loads(arch_def.replace("'", '"'))
            except json.JSONDecodeError as err:
                raise ValueError(f"architecture text is not a list of lists of block strings: {err}") from None
        stages = [list(s) for s in arch_def]
        if len(stages) != self.num_stages + 2:
            raise ValueError(
                f"arch_def has {len(stages)} stages; this space needs {self.num_stages + 2} "
                "(the fixed first block, the searched stages, the fixed head block)"
            )
        if stages[0] != [self.fixed_first_block_string()] or stages[-1] != [self.fixed_head_block_string()]:
            raise ValueError(
                f"arch_def must start with [{self.fixed_first_block_string()!r}] and end with "
                f"[{self.fixed_head_block_string()!r}], got {stages[0]} and {stages[-1]}"
            )
        blocks = []
        for s, strings in enumerate(stages[1:-1]):
            options = []
            for j, text in enumerate(strings):
                m = _IR_BLOCK.match(text)
                if m is None:
                    raise ValueError(f"block string {text!r} (stage {s}, block {j}) is not an inverted-residual block")
                choice = BlockChoice(int(m["e"]), int(m["k"]), m["se"] is not None)
                option = self.option_index(choice) if choice in self.options else -1
                if option < 0 or self.block_string(s, j, option) != text:
                    raise ValueError(
                        f"block string {text!r} (stage {s}, block {j}) is not in this search space; "
                        f"expected channels/stride/activation like {self.block_string(s, j, 0)!r}"
                    )
                options.append(option)
            blocks.append(tuple(options))
        return self.validate(Architecture(tuple(blocks)))

    # ------------------------------------------------------------------ relaxation
    def alpha_beta(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        """One-hot ``alpha`` [stages, max depth, options] and ``beta`` [stages, depths] of ``arch``.

        Blocks beyond a stage's depth do not change the network; they are set to the option of the stage's last
        block so that every simplex holds a vertex.
        """
        self.validate(arch)
        alpha = np.zeros(self.alpha_shape)
        beta = np.zeros(self.beta_shape)
        for s, blocks in enumerate(arch.blocks):
            beta[s, self.depths.index(len(blocks))] = 1.0
            for j in range(self.max_depth):
                alpha[s, j, blocks[min(j, len(blocks) - 1)]] = 1.0
        return alpha, beta

    def from_alpha_beta(self, alpha: np.ndarray, beta: np.ndarray) -> Architecture:
        """The architecture of the most probable depth and options (argmax of every simplex)."""
        alpha, beta = np.asarray(alpha), np.asarray(beta)
        if alpha.shape != self.alpha_shape or beta.shape != self.beta_shape:
            raise ValueError(
                f"alpha/beta shapes {alpha.shape}/{beta.shape} do not match the space's {self.alpha_shape}/"
                f"{self.beta_shape}"
            )
        blocks = []
        for s in range(self.num_stages):
            depth = self.depths[int(np.argmax(beta[s]))]
            blocks.append(tuple(int(np.argmax(alpha[s, j])) for j in range(depth)))
        return Architecture(tuple(blocks))

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("options", None)
        out["stages"] = [asdict(s) for s in self.stages]
        return json.loads(json.dumps(out))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        known = {f for f in cls.__dataclass_fields__ if f != "options"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown search-space fields {unknown}; known: {sorted(known)}")
        kw = dict(data)
        if "stages" in kw:
            kw["stages"] = tuple(StageSpec(**s) for s in kw["stages"])
        return cls(**kw)


@dataclass(frozen=True)
class Architecture:
    """A child network: for every stage, the option index of each of its blocks (the stage depth is the length)."""

    blocks: tuple[tuple[int, ...], ...]

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(tuple(int(c) for c in b) for b in self.blocks))

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(b) for b in self.blocks)


def hardcorenas_space(*, image_size: int = 224) -> SearchSpace:
    """The paper's search space (the default :class:`SearchSpace`) at ``image_size``."""
    return SearchSpace(image_size=image_size)


# A reduced space for small images (the demo and tests): two narrow stages of up to three blocks, eight options
# (expansion 3/6 x kernel 3/5 x SE off/on), so that a short multipath training reaches every option.
_DIGITS_SPACE = SearchSpace(
    stages=(StageSpec(16, 2, "relu"), StageSpec(32, 2, "hard_swish")),
    expansions=(3, 6),
    depths=(1, 2, 3),
    stem_channels=8,
    first_block_channels=8,
    head_block_channels=64,
    num_features=128,
    image_size=16,
)

SPACES: dict[str, SearchSpace] = {"hardcorenas": SearchSpace(), "digits": _DIGITS_SPACE}


def resolve_space(spec: str | SearchSpace, *, image_size: int | None = None) -> SearchSpace:
    """A space by name (``"hardcorenas"``, ``"digits"``), from a JSON file, or as given; optionally resized.

    Args:
        spec: A name from :data:`SPACES`, a path to a JSON file of :meth:`SearchSpace.to_dict`, or a space.
        image_size: Replace the space's input resolution.
    """
    if isinstance(spec, SearchSpace):
        space = spec
    elif spec in SPACES:
        space = SPACES[spec]
    else:
        from miil.core.errors import UserError
        from miil.core.io import load_file

        path = Path(spec)
        if not path.is_file():
            raise UserError(f"search space {spec!r} is neither a known name ({', '.join(sorted(SPACES))}) nor a file")
        data = load_file(path, what="search space")
        try:
            space = SearchSpace.from_dict(data)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"search space file {path} is invalid: {err}") from None
    return replace(space, image_size=image_size) if image_size is not None else space


# The six architectures published with the paper (README of the original code; timm's hardcorenas_a ... _f),
# written per stage as blocks "e<expansion>k<kernel>[se]" and rendered through the paper's space.
_PUBLISHED = {
    "hardcorenas_a": ["e3k5 e3k5se", "e3k5 e6k5se", "e6k5se e6k5se", "e6k5se e6k5se", "e6k5se e6k5se"],
    "hardcorenas_b": [
        "e3k5 e3k5se e3k3",
        "e3k5 e3k5 e3k5",
        "e3k5 e3k5 e3k3 e3k3",
        "e3k5 e3k3 e3k3 e3k3",
        "e6k5se e6k5se e3k3se",
    ],
    "hardcorenas_c": [
        "e3k5 e3k5se",
        "e3k5 e3k5 e3k5 e3k5",
        "e4k5 e6k5se e3k3 e3k3",
        "e6k5se e3k3 e3k3 e3k3",
        "e6k5se e6k5se e3k3se",
    ],
    "hardcorenas_d": [
        "e3k5se e3k5se",
        "e3k5se e4k5se e3k3se",
        "e4k5se e3k3se e3k3se e3k3se",
        "e4k3se e4k5se e3k3se e3k5se",
        "e6k5se e6k5se e6k5se e6k3se",
    ],
    "hardcorenas_e": [
        "e3k5se e3k5se",
        "e6k5se e4k5se e4k5se e3k3se",
        "e4k5se e6k3se",
        "e6k5se e6k5se e6k5se e3k5se",
        "e6k5se e6k5se e6k5se e6k3se",
    ],
    "hardcorenas_f": [
        "e3k5se e3k5se",
        "e6k5se e6k5se",
        "e6k5se e6k5se e3k3se e3k3se",
        "e6k3se e6k5se e6k5se e3k3se",
        "e6k5se e6k5se e6k3se e6k3se",
    ],
}
_COMPACT = re.compile(r"^e(?P<e>\d+)k(?P<k>\d+)(?P<se>se)?$")


def _published_arch_defs() -> dict[str, list[list[str]]]:
    space = SearchSpace()
    out = {}
    for name, stages in _PUBLISHED.items():
        blocks = []
        for text in stages:
            matches = [_COMPACT.match(b) for b in text.split()]
            blocks.append(
                tuple(space.option_index(BlockChoice(int(m["e"]), int(m["k"]), bool(m["se"]))) for m in matches)
            )
        out[name] = space.arch_def(Architecture(tuple(blocks)))
    return out


HARDCORENAS_ARCH_DEFS: dict[str, list[list[str]]] = _published_arch_defs()
