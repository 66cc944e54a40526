"""The WordNet reader and the tree built from it (small Princeton-format database written by the fixture)."""

import zipfile

import pytest

from miil.in21k import SemanticTree, WordNet

ANIMAL, DOMESTIC, DOG, SPITZ, SAMOYED = "n00015388", "n01317541", "n02084071", "n02111626", "n02111889"
VERTEBRATE, BIRD, AQUATIC, SWAN = "n01471682", "n01503061", "n01844917", "n01858441"
MAMMAL, PLACENTAL, CARNIVORE, CANINE = "n01861778", "n01886756", "n02075296", "n02083346"
PERSON, SCIENTIST, PHYSICIST, EINSTEIN = "n00007846", "n10560637", "n10428004", "n10954498"


def test_reader_parses_lemmas_hypernyms_and_gloss(wordnet_dir):
    wn = WordNet.load(wordnet_dir)
    assert len(wn) == 25
    dog = wn[DOG]
    assert dog.lemmas == ("dog", "domestic_dog", "Canis_familiaris")
    assert dog.name == "dog"
    assert dog.hypernyms == (CANINE, DOMESTIC)  # '@' pointers in file order; '~' hyponyms ignored
    assert wn[EINSTEIN].hypernyms == (PHYSICIST,)  # instance hypernym '@i'
    assert wn["n00002684"].hypernyms == ("n00001930",)  # the verb pointer is not a hypernym
    assert wn[SAMOYED].gloss.startswith("Siberian breed")
    with pytest.raises(KeyError, match="n99999999"):
        wn["n99999999"]


def test_hypernym_path_rules(wordnet_dir):
    wn = WordNet.load(wordnet_dir)
    root = ("n00001740", "n00001930", "n00002684", "n00003553", "n00004258", "n00004475", ANIMAL)
    assert wn.path_to_root(SAMOYED) == (*root, DOMESTIC, DOG, SPITZ, SAMOYED)  # shortest
    via_canine = (*root, "n01466257", VERTEBRATE, MAMMAL, PLACENTAL, CARNIVORE, CANINE, DOG, SPITZ, SAMOYED)
    assert wn.path_to_root(SAMOYED, "first") == via_canine
    assert wn.path_to_root(SAMOYED, "longest") == via_canine
    # person has two hypernyms: organism (6 deep) and causal_agent (3 deep); shortest takes causal_agent
    assert wn.path_to_root(EINSTEIN)[:3] == ("n00001740", "n00001930", "n00007347")
    assert wn.path_to_root(EINSTEIN, "first")[:6] == root[:6]
    with pytest.raises(ValueError, match="path rule"):
        wn.path_to_root(DOG, "random")


def test_tree_matches_the_hypernym_chains_restricted_to_the_classes(wordnet_dir):
    wnids = sorted([ANIMAL, DOMESTIC, DOG, SPITZ, SAMOYED, VERTEBRATE, BIRD, AQUATIC, SWAN, MAMMAL, CANINE, EINSTEIN])
    tree = SemanticTree.from_wordnet(wnids, wordnet_dir)
    assert tree.class_list == wnids
    chains = {w: [tree.class_list[a] for a in tree.ancestors(w)] for w in wnids}
    # the chains of the released tree (pics/dog_inference.png and Fig. 2 of the paper)
    assert chains[SAMOYED] == [SPITZ, DOG, DOMESTIC, ANIMAL]
    assert chains[SWAN] == [AQUATIC, BIRD, VERTEBRATE, ANIMAL]
    assert chains[CANINE] == [MAMMAL, VERTEBRATE, ANIMAL]  # placental, carnivore are not classes: skipped
    assert chains[EINSTEIN] == []  # its WordNet ancestors (physicist ... entity) are not classes
    assert tree.level(SAMOYED) == 4 and tree.level(ANIMAL) == 0
    assert tree.name(SAMOYED) == "Samoyed" and tree.lemmas[tree.index(DOG)][1] == "domestic_dog"
    assert sorted(tree.class_list[c] for c in tree.children(DOG)) == [SPITZ]
    # every chain is the class's shortest WordNet chain, filtered to the classes
    wn = WordNet.load(wordnet_dir)
    for w in wnids:
        expected = [a for a in reversed(wn.path_to_root(w)[:-1]) if a in set(wnids)]
        assert chains[w] == expected
    first = SemanticTree.from_wordnet(wnids, wn, path_rule="first")
    assert [first.class_list[a] for a in first.ancestors(SAMOYED)] == [SPITZ, DOG, CANINE, MAMMAL, VERTEBRATE, ANIMAL]


def test_nltk_zip_and_the_data_noun_file_itself(wordnet_dir, tmp_path):
    archive = tmp_path / "wordnet.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(wordnet_dir / "data.noun", "wordnet/data.noun")
    assert WordNet.load(archive)[SWAN].hypernyms == (AQUATIC,)
    assert WordNet.load(wordnet_dir / "data.noun")[SWAN].lemmas == ("swan",)


def test_bad_databases_fail_naming_the_file_and_line(tmp_path, wordnet_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "data.noun").write_text("01858441 05 n 01 swan 0 00x @ 01844917 n 0000 | oops\n")
    with pytest.raises(ValueError, match=r"data.noun:1"):
        WordNet.load(bad)
    (bad / "data.noun").write_text("01858441 05 n 01 swan 0 001 @ 01844917 n 0000 | a swan\n")
    with pytest.raises(ValueError, match="not noun synsets"):
        WordNet.load(bad).path_to_root("n01858441")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        WordNet.load(tmp_path / "empty_dir_missing")
    with pytest.raises(ValueError, match="n01234567"):
        SemanticTree.from_wordnet([SWAN, "n01234567"], wordnet_dir)
