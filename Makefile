# Two commands for a fresh machine: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

# XGBoost's OpenMP threads spin while waiting; on a shared 2-core machine that costs ~10x.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test test-fast lint bench clean airflow-up

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(UV) pip install -q --python $(PY) -r requirements.txt
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## The main job, end to end, on the embedded PostgreSQL (or DATABASE_URL when set).
demo: install
	$(VENV)/bin/campaignopt demo

## The whole test suite against real PostgreSQL, dbt, Great Expectations, MLflow and Airflow.
## Test files run on TEST_WORKERS processes (pytest-xdist), each with its own database, home and
## servers; the suite's many waits on subprocesses (Airflow, dbt, uvicorn) overlap. 3 workers ran it
## in 26 min where 2 took 38, but ran the shared PostgreSQL out of connections (BENCHMARKS.md, "Test
## suite"): 2 until the suite's connections are budgeted.
TEST_WORKERS ?= 2
test: install
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: install
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

## A real Airflow (API server, scheduler, DAG processor, triggerer, two Celery workers) until Ctrl-C.
airflow-up: install
	$(PY) -m pipelines.deploy.airflow_cluster up

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy bandits
	$(VENV)/bin/sqlfluff lint dbt/models

## The runtime-only lock the Docker image installs: pyproject.toml's dependencies at the pins of
## requirements.txt (the full dev + runtime lock of `make install`). Re-run after changing either.
.PHONY: lock-runtime
lock-runtime: install
	$(UV) pip compile pyproject.toml --constraint requirements.txt --python-version 3.11 --quiet \
		--custom-compile-command "make lock-runtime" -o requirements-runtime.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
