"""bench/mutations.py stays applicable: every planted bug's code is found exactly once
(a rename would otherwise make a mutation silently test nothing)."""
import os

import pytest

from bench import mutations

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("mutation", mutations.MUTATIONS, ids=lambda m: m.name)
def test_mutation_code_is_found_once(mutation):
    with open(os.path.join(REPO, mutation.path)) as f:
        assert f.read().count(mutation.old) == 1
    for test in mutation.tests:  # a file, or one test of it ("file::name")
        path, _, name = test.partition("::")
        assert os.path.exists(os.path.join(REPO, path)), test
        if name:
            with open(os.path.join(REPO, path)) as f:
                assert f"\ndef {name}(" in f.read(), test
