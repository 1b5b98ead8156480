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

DEMO_LOGDIR := runs/demo-$(shell date +%Y%m%d-%H%M%S)

demo: $(INSTALLED)
	$(BIN)/python -m tfpg.train --logdir=$(DEMO_LOGDIR)
	$(BIN)/python -m tfpg.evaluate --policy=$(DEMO_LOGDIR)/policy --env=CartPole-v1 --episodes=5

# Two pytest workers; the tests that start Ray clusters form one xdist group (marked in their modules), run by
# one worker one after another while the other takes the rest. (Three workers were slower on two cores.)
TEST_WORKERS ?= 2

test: $(INSTALLED)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=10

clean:
	rm -rf $(VENV) runs
