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
    for test in mutation.tests:
        assert os.path.exists(os.path.join(REPO, test)), test
