"""The module layout: entry points are leaves, the library never imports them."""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = {"colorize_tf.train", "colorize_tf.export", "colorize_tf.colorize",
                "colorize_tf.evaluate", "colorize_tf.client", "colorize_tf.study",
                "colorize_tf.serve", "data_prep.build_records"}


def _modules():
    for package in ("colorize_tf", "data_prep"):
        for name in sorted(os.listdir(os.path.join(REPO, package))):
            if name.endswith(".py"):
                yield f"{package}.{name[:-3]}".removesuffix(".__init__"), \
                    os.path.join(REPO, package, name)


def _imports(path):
    """Every project module a file imports, at any depth (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda x: str(x))
def test_no_module_imports_an_entry_point(module, path):
    wrong = sorted((_imports(path) & ENTRY_POINTS) - {module})
    assert not wrong, f"{module} imports the entry point(s) {wrong}"


def test_the_entry_points_exist():
    assert ENTRY_POINTS <= {m for m, _ in _modules()}
