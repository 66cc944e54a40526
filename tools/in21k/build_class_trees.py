"""Regenerate the ImageNet-21K-P class trees that ship inside miil-in21k (fall11 and winter21).

The class lists are timm's (``timm/data/_info/imagenet21k_miil_synsets.txt``: 11,221 fall11 classes, and
``imagenet21k_miil_w21_synsets.txt``: 10,450 winter21 classes, both sorted as ``ImageFolder`` sorts them). Each
tree is built from WordNet 3.0 restricted to the variant's classes (``SemanticTree.from_wordnet``) and written as
deterministic gzip'd JSON into ``packages/miil-in21k/src/miil/in21k/resources/<variant>.json.gz``.

    apt-get install wordnet-base                      # or nltk.download('wordnet'), then pass --wordnet
    uv run python tools/in21k/build_class_trees.py    # rewrite the package data
    uv run python tools/in21k/build_class_trees.py --check   # exit 1 if the shipped files differ from a rebuild
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import timm

from miil.in21k.tree import VARIANTS, SemanticTree
from miil.in21k.wordnet import PATH_RULES, WordNet

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "packages" / "miil-in21k" / "src" / "miil" / "in21k" / "resources"
CLASS_LISTS = {"fall11": "imagenet21k_miil_synsets.txt", "winter21": "imagenet21k_miil_w21_synsets.txt"}
EXPECTED = {"fall11": 11221, "winter21": 10450}


def class_list(variant: str) -> list[str]:
    path = Path(timm.__file__).parent / "data" / "_info" / CLASS_LISTS[variant]
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(wnids) != EXPECTED[variant]:
        raise SystemExit(f"{path} lists {len(wnids)} classes, expected {EXPECTED[variant]} for {variant}")
    return wnids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", default=None, help="WordNet 3.0 folder with data.noun (default: search)")
    parser.add_argument("--path-rule", default="shortest", choices=PATH_RULES, help="hypernym chain to follow")
    parser.add_argument("--out-dir", default=str(OUT_DIR), help="where to write <variant>.json.gz")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out-dir, write nothing")
    args = parser.parse_args(argv)

    wordnet = WordNet.load(args.wordnet)
    print(f"WordNet: {len(wordnet)} noun synsets from {wordnet.source}")
    out_dir = Path(args.out_dir)
    stale = []
    for variant in VARIANTS:
        meta = {
            "variant": variant,
            "wordnet": "WordNet 3.0 (Princeton data.noun)",
            "classes_from": f"timm data/_info/{CLASS_LISTS[variant]}",
        }
        tree = SemanticTree.from_wordnet(class_list(variant), wordnet, path_rule=args.path_rule, meta=meta)
        hist = tree.level_histogram()
        print(f"{variant}: {len(tree)} classes, levels 0..{tree.max_depth}, classes per level {hist}")
        target = out_dir / f"{variant}.json.gz"
        if args.check:
            shipped = SemanticTree.load(target) if target.is_file() else None
            same = shipped is not None and shipped == tree and shipped.lemmas == tree.lemmas
            print(f"  {target}: {'up to date' if same else 'DIFFERS from a rebuild'}")
            if not same:
                stale.append(variant)
        else:
            tree.save(target)
            print(f"  wrote {target} ({target.stat().st_size / 1024:.0f} KiB)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
