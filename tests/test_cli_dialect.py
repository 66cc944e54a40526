"""Every installed package speaks the one ``miil`` dialect (miil-core README): each registered parser, all verbs, is
built without running anything and checked for role synonyms, role flags with another meaning, switches that are not
``--flag [BOOL]``, recipe names that are not kebab-case and missing standard verbs."""

import pytest

from miil.core.cli_dialect import dialect_problems, iter_package_parsers

# Packages whose papers' authors published checkpoints: they must offer `convert`.
ORIGINAL_CHECKPOINTS = {"album", "audio", "csl", "diversity", "hardcore", "in21k", "mldecoder", "stam", "usi"}
# Packages without the standard verbs: the core's own `miil core` tools.
NO_STANDARD_VERBS = {"core"}

PARSERS = dict(iter_package_parsers())


def test_every_workspace_package_is_registered():
    assert {
        "core",
        "album",
        "audio",
        "csl",
        "diversity",
        "hardcore",
        "in21k",
        "iqnas",
        "mldecoder",
        "stam",
        "usi",
    } <= set(PARSERS)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_package_speaks_the_dialect(name):
    problems = dialect_problems(
        PARSERS[name],
        package=name,
        convert=name in ORIGINAL_CHECKPOINTS,
        verbs=() if name in NO_STANDARD_VERBS else None,
    )
    assert not problems, f"{len(problems)} dialect problems:\n" + "\n".join(problems)
