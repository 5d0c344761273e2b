# mgc: every target installs what it needs first, so a clean clone needs nothing by hand.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
ARGS   ?=

.PHONY: install train test test-fast lint format mutants extract tensorboard journal report sweep cv bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	# musicnn's trained weights (package data); --no-deps: its code wants TensorFlow 1 and numpy<1.17, mgc reads only the data
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps musicnn==0.1.0
	rm -f $(VENV)/.installed-* && touch $@

## Train the default model (GRU on 13-MFCC segments of the synthetic GTZAN); ARGS="model=cnn ..." to change it.
train: install
	$(PY) train.py $(ARGS)

## Lint and format check (ruff), then the test suite. pytest's exit code 5 (no tests collected) is a failure, not a pass.
test: install lint
	@$(PY) -m pytest $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): failing"; fi; exit $$rc

## The quick part of the suite for day-to-day work: units and exact checks, no end-to-end runs (-m "not slow").
test-fast: install lint
	@$(PY) -m pytest -m "not slow" $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-fast: pytest collected no tests (exit 5): failing"; fi; exit $$rc

## ruff: lint and format check (`make format` rewrites the files).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Extract (and cache) features without training: ARGS="features=chroma data=gtzan data.root=..."
extract: install
	$(PY) scripts/extract.py $(ARGS)

## Every journal entry (conf/experiment/ files named by their date, e.g. mar05_gru) in sequence on the default data,
## then the report. mgc's own experiments (recommended, scratch_cnn, musicnn_finetune) are not journal entries.
## CPU cap: JOURNAL_EPOCHS=3 epochs each; `make journal JOURNAL_EPOCHS=` runs the journal's own epoch counts.
JOURNAL_EPOCHS ?= 3
JOURNAL_DIR    := outputs/journal/$(shell date +%Y-%m-%d_%H-%M-%S)
EXPERIMENTS    := $(sort $(basename $(notdir $(wildcard conf/experiment/[a-z][a-z][a-z][0-9][0-9]_*.yaml))))
journal: install
	@set -e; for e in $(EXPERIMENTS); do \
	  echo "== $$e"; \
	  $(PY) train.py experiment=$$e hydra.run.dir=$(JOURNAL_DIR)/$$e \
	    $(if $(JOURNAL_EPOCHS),trainer.max_epochs=$(JOURNAL_EPOCHS)) $(ARGS); \
	done
	$(PY) -m mgc.report $(JOURNAL_DIR)

## A learning-rate sweep of the default model (5 epochs each); ends with a table of its jobs.
SWEEP_LRS ?= 1e-4,1e-3,1e-2
sweep: install
	$(PY) train.py -m optim.lr=$(SWEEP_LRS) trainer.max_epochs=5 $(ARGS)

## k-fold cross-validation of any configuration (ARGS="model=cnn optim=adam ..."; CV_FOLDS=10 for 10 folds): one job
## per fold, by track, stratified by genre; ends with the sweep report, mean ± std over the folds in
## <sweep dir>/report/results.md and summary.json. ARGS="seed=0,1,2" repeats it, each seed its own deal, pooled.
CV_FOLDS ?= 5
cv: install
	$(PY) train.py -m split=kfold split.folds=$(CV_FOLDS) 'split.fold=range($(CV_FOLDS))' $(ARGS)

## Mutation testing: small faults planted in a copy of the repository; fails when the suite lets one through.
mutants: install
	$(PY) scripts/mutants.py $(ARGS)

## Benchmarks, each a ratio against a baseline in the same process; part 5 alone: python -m mgc.bench.musicnn.
bench: install
	$(PY) -m mgc.bench $(ARGS)

## Results table and plots of every finished run under outputs/ (ARGS="outputs/journal/X" to narrow it).
report: install
	$(PY) -m mgc.report $(ARGS)

## Every run, single and multirun, side by side.
tensorboard: install
	$(VENV)/bin/tensorboard --logdir outputs

clean:
	rm -rf outputs .pytest_cache
