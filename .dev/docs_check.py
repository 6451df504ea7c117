"""Check the commands in README.md and docs/*.md against the code (``make docs-check``).

- Fenced blocks whose info string is ``bash runnable`` are run, file by file and in order, with
  ``bash -euo pipefail`` from the repository root, ``python`` being the project's
  ``.venv/bin/python``: they work offline on the toy data. Their work dirs,
  ``work_dirs/docs_*``, are removed first (a training run does not start on an earlier run's
  checkpoints).
- In every other ``bash`` block each command is checked without running it: the tool or
  script exists, every ``--flag`` is one its argument parser accepts, every ``configs/*.py``
  named exists, every ``make`` target is in the Makefile. ``python`` blocks must compile.

    python .dev/docs_check.py [--no-run] [FILE.md ...]

Exit status 1 if anything failed, with one line per problem (``file:line: problem``).
"""
import argparse
import glob
import importlib.util
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Iterator, List, NamedTuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FENCE = re.compile(r'^```(\S*)\s*(.*)$')


class Block(NamedTuple):
    path: str
    line: int  # of the first line of code
    language: str
    runnable: bool
    code: str


def blocks(path: str) -> Iterator[Block]:
    """The fenced code blocks of a Markdown file."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match or not match.group(1):
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith('```'):
            body.append(lines[i])
            i += 1
        yield Block(path, start + 1, match.group(1),
                    match.group(2).strip() == 'runnable', '\n'.join(body))
        i += 1


def commands(code: str) -> Iterator[List[str]]:
    """Each shell command of a block as tokens (continuations joined, comments dropped)."""
    for line in code.replace('\\\n', ' ').splitlines():
        line = line.split(' #')[0].strip()
        if not line or line.startswith('#'):
            continue
        for part in re.split(r'\s(?:&&|\|\||;)\s', line):
            try:
                tokens = shlex.split(part)
            except ValueError:  # an unbalanced quote in a usage line
                tokens = part.split()
            while tokens and re.fullmatch(r'[A-Z_]+=\S*', tokens[0]):  # VAR=value prefixes
                tokens.pop(0)
            if tokens:
                yield tokens


class _Parser(Exception):
    pass


def tool_flags(script: str) -> set:
    """The option strings of ``tools/<script>``'s argument parser (its parse_args(argv))."""
    name = '_docs_check_' + re.sub(r'\W', '_', script)
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    original = argparse.ArgumentParser.parse_args

    def capture(parser, *args, **kwargs):
        raise _Parser(parser)

    argparse.ArgumentParser.parse_args = capture
    try:
        module.parse_args([])
    except _Parser as found:
        return set(found.args[0]._option_string_actions)
    finally:
        argparse.ArgumentParser.parse_args = original
    raise ValueError(f'{script}: parse_args() did not build an argument parser')


def check_command(tokens: List[str], flags_of, created: set) -> List[str]:
    """What is wrong with one documented command (nothing: []); ``created`` holds the files
    that earlier ``cp`` commands of the same page write (a user's copy of a config)."""
    problems = []
    words = [t.strip('[]') for t in tokens]
    if words[0] == 'cp' and len(words) >= 3:
        created.add(osp.normpath(words[-1]))
    for word in words:
        if re.fullmatch(r'(\./)?configs/[\w./-]+\.py', word) and not osp.isfile(
                osp.join(ROOT, word)) and osp.normpath(word) not in created:
            problems.append(f'{word} does not exist')
    if words[0] in ('python', 'python3') and len(words) > 1 and words[1].startswith('tools/'):
        script = words[1]
        if not osp.isfile(osp.join(ROOT, script)):
            return problems + [f'{script} does not exist']
        known = flags_of(script)
        for word in words[2:]:
            flag = word.split('=')[0]
            if flag.startswith('--') and flag not in known:
                problems.append(f'{script} has no option {flag}')
    elif words[0] == 'bash' and len(words) > 1 and words[1].startswith('tools/'):
        if not osp.isfile(osp.join(ROOT, words[1])):
            problems.append(f'{words[1]} does not exist')
    elif words[0] == 'make' and len(words) > 1:
        with open(osp.join(ROOT, 'Makefile')) as f:
            targets = set(re.findall(r'^([\w-]+):', f.read(), re.M))
        problems += [f'make has no target {t}' for t in words[1:] if t not in targets]
    return problems


def check(files: List[str], run: bool) -> int:
    cache = {}

    def flags_of(script):
        if script not in cache:
            cache[script] = tool_flags(script)
        return cache[script]

    env = dict(
        os.environ, PATH=osp.join(ROOT, '.venv', 'bin') + os.pathsep + os.environ.get('PATH', ''))
    if run:
        for stale in glob.glob(osp.join(ROOT, 'work_dirs', 'docs_*')):
            shutil.rmtree(stale)
    failed = checked = ran = 0
    for path in files:
        created = set()
        for block in blocks(path):
            where = f'{osp.relpath(block.path, ROOT)}:{block.line}'
            if block.language == 'python':
                try:
                    compile(block.code, where, 'exec')
                except SyntaxError as error:
                    print(f'{where}: python block does not compile: {error}')
                    failed += 1
                continue
            if block.language not in ('bash', 'shell', 'sh'):
                continue
            for tokens in commands(block.code):
                checked += 1
                for problem in check_command(tokens, flags_of, created):
                    print(f'{where}: {problem}: {" ".join(tokens)[:120]}')
                    failed += 1
            if run and block.runnable:
                start = time.monotonic()
                result = subprocess.run(['bash', '-euo', 'pipefail', '-c', block.code],
                                        cwd=ROOT,
                                        env=env,
                                        capture_output=True,
                                        text=True)
                ran += 1
                took = time.monotonic() - start
                if result.returncode:
                    print(f'{where}: runnable block failed (exit {result.returncode}, '
                          f'{took:.0f} s):\n{result.stdout[-2000:]}{result.stderr[-3000:]}')
                    failed += 1
                else:
                    print(f'{where}: ran in {took:.0f} s', flush=True)
    print(f'docs-check: {checked} commands checked, {ran} runnable blocks run, '
          f'{failed} problem(s)')
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('files', nargs='*', help='Markdown files (default: README.md, docs/)')
    parser.add_argument('--no-run', action='store_true', help='check, run nothing')
    args = parser.parse_args(argv)
    files = args.files or [osp.join(ROOT, 'README.md')] + sorted(
        glob.glob(osp.join(ROOT, 'docs', '*.md')))
    return check([osp.abspath(f) for f in files], run=not args.no_run)


if __name__ == '__main__':
    sys.exit(main())
