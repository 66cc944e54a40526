"""Write the key -> shape lists that the converter tests check against, by running the ORIGINAL model definitions.

Issue 17 item 3: each converter is proven against the layout the original code builds, not one rebuilt from miil's
own modules. This script imports each original repository's model code from a local checkout at the commit named in
``SPECS`` (nothing of it is copied here), builds the model in the configuration given, and writes
``packages/<pkg>/tests/original_keys/<name>.txt``: a header naming repository, commit, files, configuration and how
the original saves its checkpoints, then one ``key<TAB>[shape]`` line per tensor in ``state_dict()`` order.

Only imports are stood in for, never anything that registers a parameter or buffer:

- ``inplace_abn`` (a CUDA extension that does not build here) by a module with the same registration as the release
  the original asks for: ``weight``, ``bias``, ``running_mean``, ``running_var`` (v1.0.12, mapillary/inplace_abn
  ``inplace_abn/abn.py``), plus ``num_batches_tracked`` from v1.1.0 on;
- ``torch._six``, ``pandas``, ``fastai2`` and torchvision's ``Kinetics400`` (imported by data helpers only);
- ``torch.jit.script`` becomes the identity and ``.cuda()`` a no-op, so the TResNet anti-aliasing helper (a scripted
  class holding its filter as a plain attribute, i.e. outside the state dict) can be built on a CPU.

Usage (checkouts from ``git archive`` of each repository at the listed commit, in one folder named
``<owner>+<repo>``; uses torch and torchvision of the workspace)::

    uv run python tools/original_keys/list_original_keys.py --originals /tmp/orig [--only NAME ...]
"""

from __future__ import annotations

import argparse
import collections.abc
import subprocess
import sys
import textwrap
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_LISTED_BY = (
    "Listed by tools/original_keys/list_original_keys.py: the original model code of this commit, run on CPU "
    "(torch 2.x), state_dict() keys and shapes only."
)
_IABN_110 = (
    "InplaceABN: PyPI inplace-abn, unpinned (1.1.0, the last release): each ABN holds weight, bias, running_mean, "
    "running_var and num_batches_tracked. Checkpoints made with inplace_abn < 1.1 (v1.0.12) lack the "
    "num_batches_tracked lines."
)
_IABN_1012 = (
    "InplaceABN: mapillary/inplace_abn v1.0.12 (pinned in requirements.txt): each ABN holds weight, bias, "
    "running_mean, running_var; no num_batches_tracked (added in v1.1.0)."
)
_AA_JIT = (
    "Anti-aliasing: layers/anti_aliasing.py builds a torch.jit.script class whose filter is a plain attribute, "
    "and SpaceToDepth has no tensors: neither appears in the state dict."
)
_ASL_SAVES = (
    "Saved as: train.py writes model.state_dict() (no DDP / DataParallel); its ModelEma (an nn.Module holding the "
    "copy as .module, so ema.state_dict() would be 'module.'-prefixed) is never written. The released files hold "
    "{'model': state_dict, 'num_classes', 'idx_to_class'} (validate.py / infer.py read state['model'])."
)

SPECS: dict[str, dict] = {
    # ------------------------------------------------------------------ ML-Decoder
    "ml_decoder_tresnet_l_coco": dict(
        package="miil-mldecoder",
        repo="Alibaba-MIIL/ML_Decoder",
        commit="8a9e984",
        abn="1.1.0",
        header=[
            "Built by: src_files/models/utils/factory.py create_model -> src_files/models/tresnet/tresnet.py "
            "TResnetL (layers [3, 4, 23, 3], Bottleneck in every stage, width 1.0: TResNet-L v2) and "
            "src_files/ml_decoder/ml_decoder.py add_ml_decoder_head (replaces model.head; global_pool -> Identity).",
            "Configuration: train.py defaults: --model-name tresnet_l --num-classes 80 --use-ml-decoder 1 "
            "--num-of-groups -1 --decoder-embedding 768 --zsl 0 (80 queries: min(100, num_classes)).",
            _IABN_110,
            "Anti-aliasing: layers/anti_aliasing.py registers its filter with persistent=False: not in the state dict.",
            _ASL_SAVES,
        ],
    ),
    "ml_decoder_tresnet_m_openimages": dict(
        package="miil-mldecoder",
        repo="Alibaba-MIIL/ML_Decoder",
        commit="8a9e984",
        abn="1.1.0",
        header=[
            "Built by: src_files/models/utils/factory.py create_model -> tresnet.py TResnetM (layers [3, 4, 11, 3], "
            "BasicBlock in stages 1-2) and ml_decoder.py add_ml_decoder_head.",
            "Configuration: MODEL_ZOO.md OpenImages model: --model-name tresnet_m --num-classes 9605 "
            "--num-of-groups 200 --decoder-embedding 768 (group size ceil(9605 / 200) = 49).",
            _IABN_110,
            "Anti-aliasing: filter registered with persistent=False: not in the state dict.",
            _ASL_SAVES,
        ],
    ),
    "ml_decoder_tresnet_l_nus_zsl": dict(
        package="miil-mldecoder",
        repo="Alibaba-MIIL/ML_Decoder",
        commit="8a9e984",
        abn="1.1.0",
        header=[
            "Built by: train_zsl_nus.py -> factory.py create_model -> tresnet.py TResnetL (v2) and ml_decoder.py "
            "add_ml_decoder_head with zsl=1 (word-vector queries: query_embed is a plain attribute set per phase, "
            "not in the state dict; wordvec_proj Linear(300 -> 768); duplicate_pooling [768, 1]).",
            "Configuration: train_zsl_nus.py: --model-name tresnet_l, zsl=1, num_of_groups=925, num_classes=925, "
            "--decoder-embedding 768.",
            _IABN_110,
            "Anti-aliasing: filter registered with persistent=False: not in the state dict.",
            _ASL_SAVES,
        ],
    ),
    # ------------------------------------------------------------------ CSL / ASL
    "csl_tresnet_m_coco": dict(
        package="miil-csl",
        repo="Alibaba-MIIL/PartialLabelingCSL",
        commit="534f3ce",
        abn="1.0.12",
        header=[
            "Built by: src/models/utils/factory.py create_model -> src/models/tresnet/tresnet.py TResnetM "
            "(layers [3, 4, 11, 3], width 1.0) with a linear head.fc.",
            "Configuration: train.py defaults: --model-name tresnet_m --num-classes 80, do_bottleneck_head=False.",
            "InplaceABN: the repository has no requirements file; its TResNet code is ASL's, which pins "
            "mapillary/inplace_abn v1.0.12: each ABN holds weight, bias, running_mean, running_var (no "
            "num_batches_tracked; inplace_abn >= 1.1.0 adds it).",
            _AA_JIT,
            _ASL_SAVES,
        ],
    ),
    "csl_tresnet_m_openimages": dict(
        package="miil-csl",
        repo="Alibaba-MIIL/PartialLabelingCSL",
        commit="534f3ce",
        abn="1.0.12",
        header=[
            "Built by: src/models/utils/factory.py create_model -> tresnet.py TResnetM with bottleneck_head "
            "(head.fc.embedding_generator.0 = Linear(2048 -> 512), head.fc.FC = Linear(512 -> 9605)).",
            "Configuration: the OpenImages models of README.md: --model_name tresnet_m, num_classes 9605, "
            "do_bottleneck_head=True (helper_functions.parse_args sets it for dataset_type 'OpenImages'), "
            "bottleneck_features 512 (TResNet default).",
            "InplaceABN: as ASL, mapillary/inplace_abn v1.0.12: weight, bias, running_mean, running_var per ABN.",
            _AA_JIT,
            _ASL_SAVES,
        ],
    ),
    "asl_tresnet_l_openimages": dict(
        package="miil-csl",
        repo="Alibaba-MIIL/ASL",
        commit="8c9e0bd",
        abn="1.0.12",
        header=[
            "Built by: src/models/utils/factory.py create_model -> src/models/tresnet/tresnet.py TResnetL "
            "(layers [4, 5, 18, 3], BasicBlock in stages 1-2, width 1.2: TResNet-L v1, 2432 features) with "
            "bottleneck_head (Linear(2432 -> 512), Linear(512 -> 9605)).",
            "Configuration: the released Open_ImagesV6_TRresNet_L_448.pth: --model_name tresnet_l, num_classes 9605, "
            "--dataset_type OpenImages (do_bottleneck_head=True).",
            _IABN_1012,
            _AA_JIT,
            _ASL_SAVES,
        ],
    ),
    # ------------------------------------------------------------------ USI
    "usi_tresnet_l_v2": dict(
        package="miil-usi",
        repo="Alibaba-MIIL/Solving_ImageNet",
        commit="31af67a",
        header=[
            "Built by: models/factory.py create_model('tresnet_l_v2') -> models/tresnet_v2.py (the repository's "
            "copy of timm 0.5.4: layers [3, 4, 23, 3], Bottleneck everywhere, conv + models/layers/inplace_abn.py "
            "InplaceAbn pairs, ClassifierHead head.fc).",
            "Configuration: the KD teacher of README.md (--kd_model_name tresnet_l_v2, tresnet_l_v2_83_9.pth), "
            "1000 classes.",
            "InplaceABN: timm's InplaceAbn wrapper registers weight, bias, running_mean, running_var (no "
            "num_batches_tracked); BlurPool2d's filter is a non-persistent buffer: not in the state dict.",
            "Saved as: utils/checkpoint_saver.py CheckpointSaverUSI writes {'epoch', 'arch', 'state_dict', 'version', "
            "'args' (an argparse.Namespace), 'metric'}; state_dict comes through timm's unwrap_model (no 'module.'), "
            "and is the EMA's (same keys) when the EMA scores higher; no separate EMA entry.",
        ],
    ),
    "usi_tresnet_m": dict(
        package="miil-usi",
        repo="Alibaba-MIIL/Solving_ImageNet",
        commit="31af67a",
        header=[
            "Built by: models/factory.py create_model('tresnet_m') -> models/tresnet.py (timm 0.5.4 copy: layers "
            "[3, 4, 11, 3], BasicBlock in stages 1-2, conv + InplaceAbn pairs, ClassifierHead head.fc).",
            "Configuration: a TResNet-M student of MODEL_ZOO.md, 1000 classes.",
            "InplaceABN: timm's InplaceAbn wrapper: weight, bias, running_mean, running_var (no "
            "num_batches_tracked); BlurPool2d's filter is non-persistent.",
            "Saved as: CheckpointSaverUSI: {'state_dict': ..., 'args', ...}, no 'module.' prefix; the EMA's weights "
            "replace state_dict when the EMA scores higher.",
        ],
    ),
    # ------------------------------------------------------------------ ImageNet-21K
    "in21k_tresnet_m": dict(
        package="miil-in21k",
        repo="Alibaba-MIIL/ImageNet21K",
        commit="6e4c6a4",
        abn="1.0.12",
        header=[
            "Built by: src_files/models/utils/factory.py create_model('tresnet_m') -> "
            "src_files/models/tresnet/tresnet.py TResnetM (layers [3, 4, 11, 3], linear head.fc).",
            "Configuration: train_semantic_softmax.py defaults: --model_name tresnet_m --num_classes 11221 "
            "(fall11 ImageNet-21K-P); the released tresnet_m_miil_21k.pth.",
            _IABN_1012,
            _AA_JIT,
            "Saved as: the released files hold {'state_dict': ...} (factory.load_model_weights reads "
            "state['state_dict']); the training scripts of this commit save nothing.",
        ],
    ),
    "in21k_tresnet_l_v2": dict(
        package="miil-in21k",
        repo="Alibaba-MIIL/ImageNet21K",
        commit="6e4c6a4",
        abn="1.0.12",
        header=[
            "Built by: src_files/models/utils/factory.py create_model('tresnet_l') -> tresnet.py TResnetL (layers "
            "[3, 4, 23, 3], first_two_layers=Bottleneck: TResNet-L v2).",
            "Configuration: --model_name tresnet_l --num_classes 11221; the released tresnet_l_v2_miil_21k.pth.",
            _IABN_1012,
            _AA_JIT,
            "Saved as: {'state_dict': ...} (as read by factory.load_model_weights).",
        ],
    ),
    # ------------------------------------------------------------------ PETA
    "peta_mtresnet_aggregate_32": dict(
        package="miil-album",
        repo="Alibaba-MIIL/PETA",
        commit="a42bfed",
        abn="1.0.12",
        header=[
            "Built by: src/models/utils/factory.py create_model('mtresnetaggregate') -> src/models/models.py "
            "MTResnetAggregate: fTResNet (TResNet-M body, linear head.fc) + "
            "src/models/aggregate/layers/transformer_aggregate.py TAggregate as 'aggregate' (cls_token, pos_embed "
            "[1, 33, 2048], transformer_enc = 6 nn.TransformerEncoderLayer(d_model=2048, nhead=8, "
            "dim_feedforward=2048) + final LayerNorm).",
            "Configuration: infer.py defaults: --num_classes 23 --use_transformer 1 --album_clip_length 32 "
            "--transformers_pos 1 (factory.create_model forces do_bottleneck_head=False).",
            "The aggregator alone is the 'aggregate.' lines (cls_token, pos_embed, transformer_enc.*).",
            _IABN_1012,
            _AA_JIT,
            "Saved as: peta_32.pth holds {'model': state_dict, 'idx_to_class', ...} (infer.py); no training code is "
            "published, so no DDP or EMA layout is known.",
        ],
    ),
    # ------------------------------------------------------------------ STAM
    "stam_16": dict(
        package="miil-stam",
        repo="Alibaba-MIIL/STAM",
        commit="6749baf",
        header=[
            "Built by: stam/models/utils/factory.py create_model('stam_16') -> stam/models/transformer_model.py "
            "STAM_224: VisionTransformer (ViT-B/16, qkv_bias=True, head Linear(768 -> 400)) with "
            "stam/models/temporal_aggregation.py TAggregate(16, 768, 6 layers) as 'aggregate' (registered first: "
            "its keys follow cls_token / pos_embed).",
            "Configuration: infer.py defaults: --model_name stam_16 --num_classes 400 --input_size 224.",
            "The temporal aggregator alone is the 'aggregate.' lines (cls_token, pos_embed [1, 17, 768], "
            "transformer_enc = 6 nn.TransformerEncoderLayer(768, nhead 8, dim_feedforward 2048) + final LayerNorm).",
            "Saved as: the released files hold {'model': state_dict} (infer.py, loaded with strict=False); no "
            "training code is published.",
        ],
    ),
    # ------------------------------------------------------------------ EAT
    "eat_s_esc50": dict(
        package="miil-audio",
        repo="Alibaba-MIIL/AudioClassfication",
        commit="6277e5e",
        header=[
            "Built by: trainer.py create_model -> modules/soundnet.py SoundNetRaw (start, down, down2, project, "
            "tf = TAggregate with cls_token, pos_embed, transformer_enc, fc; AADownsample's triangular blur is a "
            "persistent buffer down.*.down.4.filt).",
            "Configuration: README ESC-50 run (EAT-S): --nf 16 --emb_dim 128 --dim_feedforward 512 --n_layers 4 "
            "--n_head 8 --ds_factors 4 4 4 4 --seq_len 114688 (112 tokens), 50 classes.",
            "Saved as: trainer.py save_model writes best_model.pt = net.state_dict() and chkpnt.pt = {'model_dict', "
            "'opt_dict', 'steps', 'lr_scheduler', 'scaler'}; with --use_dp the net is DataParallel, so keys carry "
            "'module.'. The EMA (modules/ema.py) is never saved.",
        ],
    ),
    "eat_m_audioset": dict(
        package="miil-audio",
        repo="Alibaba-MIIL/AudioClassfication",
        commit="6277e5e",
        header=[
            "Built by: trainer.py create_model -> modules/soundnet.py SoundNetRaw.",
            "Configuration: README AudioSet run (EAT-M): --nf 32 --emb_dim 256 --dim_feedforward 2048 --n_layers 6 "
            "--n_head 16 --ds_factors 4 4 4 4 --seq_len 221184 (216 tokens), 527 classes, --use_dp.",
            "Saved as: best_model.pt / chkpnt.pt['model_dict'] of a DataParallel net: every key below is written "
            "with a 'module.' prefix by this run. The EMA is never saved.",
        ],
    ),
    "eat_s_speechcommands": dict(
        package="miil-audio",
        repo="Alibaba-MIIL/AudioClassfication",
        commit="6277e5e",
        header=[
            "Built by: trainer.py create_model -> modules/soundnet.py SoundNetRaw.",
            "Configuration: README SpeechCommands run: --emb_dim 128 (nf 16, dim_feedforward 512, 4 layers, 8 heads "
            "by default) --ds_factors 4 4 4 --seq_len 16384 (64 tokens), 35 classes.",
            "Saved as: best_model.pt = net.state_dict(); chkpnt.pt = {'model_dict', ...}. The EMA is never saved.",
        ],
    ),
    # ------------------------------------------------------------------ HardCoRe-NAS
    "mobilenasnet_supernet": dict(
        package="miil-hardcore",
        repo="Alibaba-MIIL/HardCoReNAS",
        commit="a940eb7",
        header=[
            "Built by: timm/models/mobilenasnet.py _gen_mobilenasnet (MobileNasNet: timm MobileNetV3 whose "
            "InvertedResidual blocks are replaced by InvertedResidualElastic; _alpha per block, beta ParameterList).",
            "Configuration: train.py / external/nas_parser.py defaults of the one-shot stage (w_star_076b2ed3.pth): "
            "num_classes 1000, depth 4, kernel 5 (dw kernels [3, 5]), reduced_exp_ratio True (expansions [3, 4, 6]), "
            "se [0, 0.25], use_dedicated_pwl_se False, privatized BN, multipath_sampling True, search_mode False.",
            "Saved as: timm/utils.py CheckpointSaver: {'epoch', 'arch', 'state_dict', 'optimizer', 'args', "
            "'version', 'state_dict_ema', 'metric'}; both state dicts through unwrap_model (no 'module.'). In the "
            "multipath stage the model is IKD_mobilenasnet_model, which holds teacher and student with "
            "object.__setattr__ and re-registers the student's children: its state dict is exactly these keys "
            "(no 'module1.' / 'module2.').",
        ],
    ),
    "mobilenasnet_heaviest": dict(
        package="miil-hardcore",
        repo="Alibaba-MIIL/HardCoReNAS",
        commit="a940eb7",
        header=[
            "Built by: timm/models/mobilenasnet.py _gen_mobilenasnet(heaviest_network=True) -> "
            "timm/models/mobilenetv3.py MobileNetV3 of the heaviest path (ir_r4_k5_e6_se0.25 stages).",
            "Configuration: README first stage (--heaviest_network; w_heaviest_d89ee05d.pth), 1000 classes.",
            "Saved as: CheckpointSaver {'state_dict', 'state_dict_ema', ...} without 'module.'.",
        ],
    ),
    "hardcorenas_a_child": dict(
        package="miil-hardcore",
        repo="Alibaba-MIIL/HardCoReNAS",
        commit="a940eb7",
        header=[
            "Built by: timm/models/mobilenasnet.py _gen_mobilenasnet(mobilenet_string=...) -> MobileNetV3 of a "
            "generated architecture (validate.py / train.py --mobilenet_string).",
            "Configuration: the architecture string of the published 'A' child (as timm's hardcorenas_a arch_def), "
            "1000 classes.",
            "Saved as: CheckpointSaver {'state_dict', 'state_dict_ema', ...} without 'module.'.",
        ],
    ),
    # ------------------------------------------------------------------ DINO (diversity)
    "dino_vits16_pretrain": dict(
        package="miil-diversity",
        repo="facebookresearch/dino",
        commit="7c446df",
        header=[
            "Built by: hubconf.py dino_vits16 -> vision_transformer.py vit_small(patch_size=16, num_classes=0) "
            "(head = Identity).",
            "Configuration: dino_deitsmall16_pretrain.pth ('backbone only'), loaded there with strict=True.",
            "Saved as: a bare state dict.",
        ],
    ),
    "dino_resnet50_pretrain": dict(
        package="miil-diversity",
        repo="facebookresearch/dino",
        commit="7c446df",
        header=[
            "Built by: hubconf.py dino_resnet50 -> torchvision resnet50 with fc = Identity.",
            "Configuration: dino_resnet50_pretrain.pth ('backbone only').",
            "Saved as: a bare state dict.",
        ],
    ),
    "dino_vits16_full_teacher": dict(
        package="miil-diversity",
        repo="facebookresearch/dino",
        commit="7c446df",
        header=[
            "Built by: main_dino.py: utils.MultiCropWrapper(vit_small(patch_size=16), "
            "vision_transformer.DINOHead(384, out_dim)) (fc and head of the backbone set to Identity).",
            "Configuration: main_dino.py defaults: --arch vit_small --patch_size 16 --out_dim 65536 "
            "--use_bn_in_head False --norm_last_layer True.",
            "Saved as: checkpoint.pth = {'student', 'teacher', 'optimizer', 'epoch', 'args', 'dino_loss', ...}. "
            "This list is 'teacher' (not wrapped in DDP for a ViT, which has no batch norm); 'student' is wrapped "
            "in DDP: the same keys with a 'module.' prefix.",
        ],
    ),
    "dino_resnet50_full_teacher": dict(
        package="miil-diversity",
        repo="facebookresearch/dino",
        commit="7c446df",
        header=[
            "Built by: main_dino.py: utils.MultiCropWrapper(torchvision resnet50(), DINOHead(2048, out_dim)).",
            "Configuration: README ResNet-50 run (--arch resnet50; --out_dim 65536, --use_bn_in_head False by "
            "default).",
            "Saved as: checkpoint.pth {'student', 'teacher', ...}. A ResNet has batch norms, so main_dino.py wraps "
            "the teacher in DDP too: BOTH 'teacher' and 'student' carry these keys with a 'module.' prefix.",
        ],
    ),
}


# --------------------------------------------------------------------------------------------- stand-ins
def _install_stand_ins(abn: str | None) -> None:
    import importlib.machinery

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision.datasets
    import torchvision.models  # noqa: F401  (before the stand-ins: torch._dynamo inspects every module's spec)

    six = types.ModuleType("torch._six")
    six.__spec__ = importlib.machinery.ModuleSpec("torch._six", None)
    six.container_abcs = collections.abc
    six.string_classes = (str, bytes)
    six.int_classes = int
    six.inf = float("inf")
    sys.modules["torch._six"] = six
    for name in ("pandas", "fastai2", "fastai2.torch_core", "fastai2.metrics"):
        stand_in = types.ModuleType(name)
        stand_in.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules.setdefault(name, stand_in)
    core = sys.modules["fastai2.torch_core"]
    for name in ("to_detach", "flatten_check", "store_attr", "num_distrib", "rank_distrib"):
        setattr(core, name, None)
    sys.modules["fastai2.metrics"].Metric = type("Metric", (), {})
    if not hasattr(torchvision.datasets, "Kinetics400"):
        torchvision.datasets.Kinetics400 = object
    torch.jit.script = lambda obj, *a, **k: obj
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    if abn is None:
        return
    counter = abn != "1.0.12"

    class ABN(nn.Module):
        def __init__(
            self,
            num_features,
            eps=1e-5,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
            activation="leaky_relu",
            activation_param=0.01,
        ):
            super().__init__()
            self.num_features, self.eps, self.activation = num_features, eps, activation
            self.activation_param = activation_param
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            if counter:
                self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

        def forward(self, x):
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    module = types.ModuleType("inplace_abn")
    module.__spec__ = importlib.machinery.ModuleSpec("inplace_abn", None)
    module.ABN, module.InPlaceABN, module.InPlaceABNSync = ABN, type("InPlaceABN", (ABN,), {}), ABN
    sys.modules["inplace_abn"] = module


class _Args(argparse.Namespace):
    def __contains__(self, key):
        return key in vars(self)


def _build(name: str, originals: Path):
    spec = SPECS[name]
    _install_stand_ins(spec.get("abn"))
    owner, repo = spec["repo"].split("/")
    sys.path.insert(0, str(originals / f"{owner}+{repo}"))
    import torch

    if name.startswith("ml_decoder_"):
        from src_files.models import create_model

        cfg = {
            "ml_decoder_tresnet_l_coco": dict(model_name="tresnet_l", num_classes=80, num_of_groups=-1, zsl=0),
            "ml_decoder_tresnet_m_openimages": dict(model_name="tresnet_m", num_classes=9605, num_of_groups=200, zsl=0),
            "ml_decoder_tresnet_l_nus_zsl": dict(model_name="tresnet_l", num_classes=925, num_of_groups=925, zsl=1),
        }[name]
        return create_model(_Args(use_ml_decoder=1, decoder_embedding=768, model_path="", **cfg))
    if name.startswith(("csl_", "asl_")):
        from src.models import create_model

        cfg = {
            "csl_tresnet_m_coco": dict(model_name="tresnet_m", num_classes=80, do_bottleneck_head=False),
            "csl_tresnet_m_openimages": dict(model_name="tresnet_m", num_classes=9605, do_bottleneck_head=True),
            "asl_tresnet_l_openimages": dict(model_name="tresnet_l", num_classes=9605, do_bottleneck_head=True),
        }[name]
        return create_model(_Args(**cfg))
    if name.startswith("in21k_"):
        import src_files.helper_functions.distributed as dist

        dist.print_at_master = lambda *a, **k: None
        from src_files.models import create_model

        arch = {"in21k_tresnet_m": "tresnet_m", "in21k_tresnet_l_v2": "tresnet_l"}[name]
        return create_model(_Args(model_name=arch, num_classes=11221, model_path=""))
    if name.startswith("usi_"):
        from models.factory import create_model

        return create_model(name[len("usi_") :], pretrained=False, num_classes=1000)
    if name.startswith("peta_"):
        from src.models import create_model

        return create_model(
            _Args(
                model_name="mtresnetaggregate",
                num_classes=23,
                use_transformer=1,
                album_clip_length=32,
                transformers_pos=1,
                remove_model_jit=None,
                global_pool=None,
            )
        )
    if name.startswith("stam_"):
        from stam.models import create_model

        return create_model(_Args(model_name=name, num_classes=400, input_size=224, frame_rate=1.6))
    if name.startswith("eat_"):
        from modules.soundnet import SoundNetRaw

        nf, emb, ff, layers, heads, ds, seq, classes = {
            "eat_s_esc50": (16, 128, 512, 4, 8, [4, 4, 4, 4], 114688, 50),
            "eat_m_audioset": (32, 256, 2048, 6, 16, [4, 4, 4, 4], 221184, 527),
            "eat_s_speechcommands": (16, 128, 512, 4, 8, [4, 4, 4], 16384, 35),
        }[name]
        total = 4  # trainer.py: prod(ds_factors) * 4 (the two dilated stages halve twice)
        for f in ds:
            total *= f
        return SoundNetRaw(
            nf=nf,
            dim_feedforward=ff,
            clip_length=seq // total,
            embed_dim=emb,
            n_layers=layers,
            nhead=heads,
            n_classes=classes,
            factors=ds,
        )
    if name in ("mobilenasnet_supernet", "mobilenasnet_heaviest", "hardcorenas_a_child"):
        from timm.models.mobilenasnet import _gen_mobilenasnet

        kw = dict(
            num_classes=1000,
            use_kernel_3=False,
            exp_r=6,
            depth=4,
            reduced_exp_ratio=True,
            use_dedicated_pwl_se=False,
            force_sync_gpu=False,
            multipath_sampling=True,
            no_swish=False,
            search_mode=False,
            use_swish=False,
        )
        if name == "mobilenasnet_supernet":
            return _gen_mobilenasnet(heaviest_network=False, **kw)
        if name == "mobilenasnet_heaviest":
            return _gen_mobilenasnet(heaviest_network=True, **kw)
        arch = [
            ["ds_r1_k3_s1_e1_c16_nre"],
            ["ir_r1_k5_s2_e3_c24_nre", "ir_r1_k5_s1_e3_c24_nre_se0.25"],
            ["ir_r1_k5_s2_e3_c40_nre", "ir_r1_k5_s1_e6_c40_nre_se0.25"],
            ["ir_r1_k5_s2_e6_c80_se0.25", "ir_r1_k5_s1_e6_c80_se0.25"],
            ["ir_r1_k5_s1_e6_c112_se0.25", "ir_r1_k5_s1_e6_c112_se0.25"],
            ["ir_r1_k5_s2_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25"],
            ["cn_r1_k1_s1_c960"],
        ]
        return _gen_mobilenasnet(heaviest_network=False, mobilenet_string=str(arch), **kw)
    if name.startswith("dino_"):
        import utils
        import vision_transformer as vits
        from torchvision.models import resnet50

        if name == "dino_vits16_pretrain":
            return vits.vit_small(patch_size=16, num_classes=0)
        if name == "dino_resnet50_pretrain":
            model = resnet50()
            model.fc = torch.nn.Identity()
            return model
        if name == "dino_vits16_full_teacher":
            return utils.MultiCropWrapper(vits.vit_small(patch_size=16), vits.DINOHead(384, 65536, False))
        return utils.MultiCropWrapper(resnet50(), vits.DINOHead(2048, 65536, False))
    raise KeyError(name)


def _write(name: str, originals: Path) -> Path:
    spec = SPECS[name]
    state = _build(name, originals).state_dict()
    out = ROOT / "packages" / spec["package"] / "tests" / "original_keys" / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    texts = [f"Original: github.com/{spec['repo']} @ {spec['commit']}", *spec["header"], _LISTED_BY]
    texts.append(f"{len(state)} keys, {sum(v.numel() for v in state.values())} values")
    lines = [
        line
        for text in texts
        for line in textwrap.wrap(text, 118, initial_indent="# ", subsequent_indent="#   ", break_on_hyphens=False)
    ]
    lines += [f"{key}\t{list(value.shape)}" for key, value in state.items()]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=Path, required=True, help="folder of <owner>+<repo> checkouts")
    parser.add_argument("--only", nargs="*", choices=sorted(SPECS), help="lists to write (default: all)")
    parser.add_argument("--one", choices=sorted(SPECS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(_write(args.one, args.originals))
        return
    # One process per list: the originals share top-level package names (src, timm, models).
    for name in args.only or sorted(SPECS):
        subprocess.run([sys.executable, __file__, "--originals", str(args.originals), "--one", name], check=True)


if __name__ == "__main__":
    main()
