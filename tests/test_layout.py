"""The module layout: subpackages are rooms along the data flow (each imports only those
below it), the commands are leaves (the library never imports them), and the top level
holds the commands and a few shared contracts."""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = {"colorize_tf.train", "colorize_tf.export", "colorize_tf.colorize",
                "colorize_tf.evaluate", "colorize_tf.client", "colorize_tf.study",
                "colorize_tf.serve", "data_prep.build_records"}
# Down the data flow: a subpackage imports only those before it. training sits above
# serving because a run can start from an exported model (--warm_start).
LAYERS = ("chroma", "data", "modeling", "serving", "training", "evaluation", "testing")
# The top level's shared contracts (no TensorFlow at import): any room may use them.
CONTRACTS = {"colorize_tf.cli", "colorize_tf.errors", "colorize_tf.presets",
             "colorize_tf.safe_write", "colorize_tf.serving_api"}


def _modules():
    for package in ("colorize_tf", "data_prep"):
        for folder, dirs, files in os.walk(os.path.join(REPO, package)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    yield dotted.removesuffix(".__init__"), path


def _imports(path):
    """Every project module a file imports, at any depth (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def _room(module):
    """colorize_tf.<room>.x -> room; a top-level module -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "colorize_tf" and parts[1:2] and parts[1] in LAYERS else None


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda x: str(x))
def test_no_module_imports_an_entry_point(module, path):
    wrong = sorted((_imports(path) & ENTRY_POINTS) - {module})
    assert not wrong, f"{module} imports the entry point(s) {wrong}"


@pytest.mark.parametrize("module,path", [(m, p) for m, p in _modules() if _room(m)],
                         ids=lambda x: str(x))
def test_a_room_imports_only_rooms_below_it_and_the_contracts(module, path):
    room = LAYERS.index(_room(module))
    project = {m for m in _imports(path) if m.split(".")[0] in ("colorize_tf", "data_prep")}
    wrong = sorted(m for m in project
                   if m != "colorize_tf" and not any(m.startswith(c) for c in CONTRACTS)
                   and (_room(m) is None or LAYERS.index(_room(m)) > room))
    assert not wrong, f"{module} ({LAYERS[room]}) imports {wrong}"


@pytest.mark.parametrize("module,path", [(m, p) for m, p in _modules()
                                         if m.startswith("data_prep")], ids=lambda x: str(x))
def test_data_prep_imports_only_what_comes_before_records(module, path):
    # Data prep makes the records training reads: it may use the chroma and data rooms
    # and the contracts (presets resolves --bins_from's model), never a later stage.
    project = {m for m in _imports(path) if m.split(".")[0] in ("colorize_tf", "data_prep")}
    wrong = sorted(m for m in project
                   if m.split(".")[0] != "data_prep" and m != "colorize_tf"
                   and not any(m.startswith(c) for c in CONTRACTS)
                   and _room(m) not in ("chroma", "data"))
    assert not wrong, f"{module} imports {wrong}"


def test_the_top_level_holds_commands_and_contracts():
    top = {m for m, p in _modules() if m.count(".") == 1 and m.startswith("colorize_tf.")
           and not p.endswith("__init__.py")}
    assert top == {m for m in ENTRY_POINTS if m.startswith("colorize_tf.")} | CONTRACTS


def test_the_entry_points_exist():
    assert ENTRY_POINTS <= {m for m, _ in _modules()}


def test_the_tests_train_through_the_library():
    # conftest's fixtures train every test's model: through training.trainer, never the
    # command (whose flags are tested on their own).
    imported = _imports(os.path.join(REPO, "tests", "conftest.py"))
    assert not imported & ENTRY_POINTS, sorted(imported & ENTRY_POINTS)


def test_every_library_error_derives_from_the_one_base():
    # colorize_tf.Error (a ValueError) is the base of every error the library raises on
    # purpose: each exception class defined in colorize_tf or data_prep derives from it,
    # and no bare ValueError or Exception is raised.
    import importlib
    import inspect
    import colorize_tf
    assert issubclass(colorize_tf.Error, ValueError)
    checked, bare = [], []
    for module, path in _modules():
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                    isinstance(node.exc.func, ast.Name) and \
                    node.exc.func.id in ("ValueError", "Exception"):
                bare.append(f"{module}:{node.lineno}")
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as e:  # an extra not installed (apache_beam)
            assert e.name.split(".")[0] not in ("colorize_tf", "data_prep"), e
            continue
        for name, value in vars(loaded).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and \
                    value.__module__ == module:
                checked.append(name)
                assert issubclass(value, colorize_tf.Error), f"{module}.{name}"
    assert not bare, f"bare ValueError/Exception raised at {bare}"
    assert {"ModelError", "ConfigError", "UsageError", "ApiError", "SkipImage",
            "StudyError", "ExportError", "TrainingError", "StateError"} <= set(checked)
