"""The documentation's commands are true to the code: every tool and config it names exists and
every flag is one the tool accepts (``.dev/docs_check.py --no-run``; ``make docs-check`` also
runs the blocks marked runnable on the toy data)."""
import importlib.util
import os.path as osp


def test_every_documented_command_names_real_tools_configs_and_flags(repo_root, capsys):
    spec = importlib.util.spec_from_file_location('_docs_check',
                                                  osp.join(repo_root, '.dev', 'docs_check.py'))
    docs_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs_check)
    status = docs_check.main(['--no-run'])
    out = capsys.readouterr().out
    assert status == 0, out
    checked = int(out.split('docs-check: ')[1].split()[0])
    assert checked > 30, out  # the README alone documents more commands than that
