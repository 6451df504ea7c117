# `make demo` and `make test` work from a fresh clone: both create (or reuse) .venv in the repo
# root with the verified pins. mmcv 2.1.0 has no CPU wheel on PyPI, so it is built from source
# once (~9 minutes on 2 cores); pip caches the wheel, later set-ups take seconds.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINTED := fcn_plugin tools tests configs .dev

.PHONY: setup test lint docs-check demo clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip<25' wheel
	$(BIN)/pip install -q -r requirements.txt -r requirements-test.txt
	# mmcv's setup.py imports pkg_resources (gone from setuptools >= 70) and needs torch at build
	$(BIN)/python -c 'import mmcv' 2>/dev/null || ( \
	  $(BIN)/pip install -q 'setuptools<70' && \
	  MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 \
	    $(BIN)/pip install --no-build-isolation 'mmcv==2.1.0' )
	# torch declares setuptools>=77; mmengine's mmseg:: config lookup needs pkg_resources, which
	# warns on every import from 80.9 on
	$(BIN)/pip install -q 'setuptools>=77,<80.9'
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	$(BIN)/python -c 'import fcn_plugin, mmcv, mmseg; print("fcn_plugin ready: mmcv", mmcv.__version__, "mmseg", mmseg.__version__)'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest tests -q

# flake8, isort and yapf as mmseg's pre-commit runs them (settings: setup.cfg)
lint: setup
	$(BIN)/python -m flake8 $(LINTED)
	$(BIN)/python -m isort --check-only --diff $(LINTED)
	$(BIN)/python -m yapf --diff --recursive $(LINTED)

# the commands of README.md and docs/: blocks marked `bash runnable` run on the toy data, the
# others are checked against the tools' parsers and the configs (.dev/docs_check.py)
docs-check: setup
	$(BIN)/python .dev/docs_check.py

demo: setup
	bash tools/demo.sh

clean-venv:
	rm -rf $(VENV)
