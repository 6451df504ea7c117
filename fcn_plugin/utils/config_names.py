"""Top-level names a config sets that reach nothing: a typo, or a base config's variable.

mmengine keeps every top-level name of a config and passes on only those the runner (or a
tool) reads, so ``max_iter = 10`` and ``--cfg-options max_iter=10`` train the full schedule
without a word. And it evaluates each base file on its own: a child's ``img_suffix = '.png'``
or ``train_prefix = dict(...)`` replaces the top-level name, while the fields the base built
from it (``train_dataloader.dataset...``) keep the base's value. Two checks, on the names the
config file sets without reading them itself (and the ``--cfg-options`` keys):

- :func:`unreached_base_variable`: a base file reads the name where it defines it, and the
  child's value differs from the base's: the message names the base, its value and the keys
  built from it;
- :func:`misspelt_name`: no config file in the chain and no runner argument has the name, and
  one of those is close to it (``difflib``): the message names the closest match.

Names nothing uses and nothing resembles (a user's own note) are left alone. The files of the
chain are those ``Config.text`` lists (mmengine writes each file's path before its text).
"""
import ast
import difflib
import inspect
import os.path as osp
from typing import Dict, Iterable, List, Optional, Tuple

# keys mmseg's and mmengine's tools read besides the Runner's arguments (mmseg's inference API
# reads test_pipeline: a child's own test_pipeline reaches it)
TOOL_KEYS = ('custom_imports', 'test_pipeline', 'tta_model', 'tta_pipeline', 'model_wrapper_cfg',
             'compile', 'strategy', 'dist_params', 'gpu_ids', 'device', '_base_')


class _Literal(ast.NodeVisitor):
    """Evaluates the literals of a config line, ``dict(...)`` calls included."""

    def visit_Constant(self, node):
        return node.value

    def visit_Tuple(self, node):
        return tuple(self.visit(e) for e in node.elts)

    def visit_List(self, node):
        return [self.visit(e) for e in node.elts]

    def visit_Dict(self, node):
        return {self.visit(k): self.visit(v) for k, v in zip(node.keys, node.values)}

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id == 'dict' and not node.args:
            return {k.arg: self.visit(k.value) for k in node.keywords}
        raise ValueError('not a literal')

    def generic_visit(self, node):
        raise ValueError('not a literal')


class ConfigFile:
    """The top-level assignments of one config file: what it sets and what each line reads."""

    def __init__(self, path: str):
        self.path = path
        self.values: Dict[str, ast.AST] = {}  # name -> its (last) right-hand side
        self.readers: Dict[str, List[str]] = {}  # name -> the names assigned from it
        try:
            with open(path, encoding='utf-8') as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
            tree = ast.Module(body=[], type_ignores=[])
        # every name the file reads anywhere (data_root=data_root: its own variable)
        self.read = {
            n.id
            for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        }
        for node in tree.body:
            if not isinstance(node, ast.Assign):
                continue
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            for target in targets:
                self.values[target] = node.value
            for read in {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}:
                self.readers.setdefault(read, []).extend(targets)

    def unread(self) -> List[str]:
        """The names this file sets and never reads (values meant for somewhere else)."""
        return [name for name in self.values if name not in self.read]

    def value(self, name: str):
        """The literal value of ``name`` (``ValueError`` if it is not a literal)."""
        return _Literal().visit(self.values[name])


def chain_files(cfg) -> Tuple[Optional[ConfigFile], List[ConfigFile]]:
    """``(the config's own file, its base files)``, as ``cfg.text`` lists them."""
    own = getattr(cfg, 'filename', None)
    try:
        text = cfg.text
    except Exception:  # a config built from a dict has no files
        text = ''
    paths = [
        line for line in text.splitlines()
        if line.endswith('.py') and osp.isabs(line) and osp.isfile(line)
    ]
    own_path = osp.abspath(own) if own else None
    bases = [ConfigFile(p) for p in dict.fromkeys(paths) if p != own_path]
    return (ConfigFile(own_path) if own_path and osp.isfile(own_path) else None), bases


def runner_keys() -> set:
    from mmengine.runner import Runner
    return set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'} | set(TOOL_KEYS)


def plain(value):
    """``value`` with its dicts, lists and tuples as plain dicts and lists (comparable with a
    literal read from a file, and printed as one)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _paths(value, wanted, prefix: str) -> List[str]:
    """The keys below ``prefix`` whose value is ``wanted``."""
    if plain(value) == wanted:
        return [prefix]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths(v, wanted, f'{prefix}.{k}')]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _paths(v, wanted, f'{prefix}[{i}]')]
    return []


def unreached_base_variable(cfg, name: str, bases: Iterable[ConfigFile]) -> Optional[str]:
    """Why ``cfg[name]`` reaches nothing: the nearest base that reads its own ``name`` built
    keys from it (else None)."""
    for base in reversed(list(bases)):
        if name not in base.values or not base.readers.get(name):
            continue
        built = list(dict.fromkeys(base.readers[name]))
        new = plain(cfg[name])
        try:
            old = plain(base.value(name))
        except ValueError:  # not a literal: the keys holding it cannot be told
            keys, was, what = [], '', f'the keys of {", ".join(built)} built from it'
        else:
            if old == new:
                return None  # the base's own value again: nothing is lost
            keys = [p for key in built if key in cfg for p in _paths(cfg[key], old, key)]
            was = f' = {old!r}'
            what = (', '.join(keys[:4]) + (f' (and {len(keys) - 4} more)' if len(keys) > 4 else '')
                    if keys else f'the keys of {", ".join(built)} built from it')
        return (f'{name} = {new!r} reaches nothing: {base.path} set {what} from its own '
                f'{name}{was} when mmengine read it (each base file is evaluated on its own). '
                f'Set {what} to {new!r} in this config instead (or with --cfg-options).')
    return None


def misspelt_name(name: str, known: Iterable[str]) -> Optional[str]:
    """The known name closest to ``name``, if ``name`` looks like a typo of it (else None)."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.8)
    return close[0] if close else None
