PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED): pyproject.toml setup.cfg | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/python -m tfpg.train --logdir=runs/demo

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
