# jobtrail: every operation is a target here. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
JOBTRAIL := $(BIN)/jobtrail
DEMO_JOBS ?= 5000
DEMO_RATE ?= 0

.DEFAULT_GOAL := help
.PHONY: help setup infra-install infra-up infra-down infra-status infra-logs topics demo up down catch-up pipeline-up pipeline-down status \
        test test-unit test-integration lint format typecheck bench-produce bench-projections bench-api \
        bench-processors soak-processors bench-embed bench-categories category-accuracy screenshots embed processors project-redis project-couchbase project-analytics rebuild-redis rebuild-couchbase rebuild-analytics stats fingerprint-accuracy dashboards clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,local,couchbase,processors,embed-openai,embed-torch]'
	@touch $@

setup: $(BIN)/.installed ## create .venv and install jobtrail with its dev tools

SERVICES := kafka redis couchbase prometheus
SUPERVISOR_CONF := infra/supervisor/supervisord.conf
SUPERVISORCTL := $(BIN)/supervisorctl -c $(SUPERVISOR_CONF)

infra-install: ## install Kafka and CouchbaseMock (Maven Central jars), Redis and Prometheus (Debian)
	@for s in $(SERVICES); do infra/$$s.sh install || exit 1; done

infra-up: infra-install ## start Kafka, Redis, the Couchbase mock and Prometheus on loopback (idempotent)
	@for s in $(SERVICES); do infra/$$s.sh start || exit 1; done

infra-down: ## stop the local services (data stays in .infra-data)
	-@for s in $(SERVICES); do infra/$$s.sh stop; done

infra-status: ## health of the local services
	-@for s in $(SERVICES); do infra/$$s.sh status; done

infra-logs: ## last lines of every service log
	-@for s in $(SERVICES); do echo "== $$s"; infra/$$s.sh logs 20; done

topics: setup ## create missing topics, report drift
	$(JOBTRAIL) topics apply

demo: setup ## produce the demo workload (DEMO_JOBS jobs at DEMO_RATE events/s, 0 = max)
	$(JOBTRAIL) demo --jobs $(DEMO_JOBS) --rate $(DEMO_RATE)

up: setup infra-up topics ## install what is missing, start the services, send a demo, run the pipeline over it and keep it running
	@if $(SUPERVISORCTL) pid >/dev/null 2>&1; then echo "the pipeline is already running"; \
	 else $(MAKE) --no-print-directory demo catch-up; fi
	@$(MAKE) --no-print-directory pipeline-up
	@echo "jobtrail is up and keeps running (make status; make down stops it all):"
	@echo "  Web UI     http://127.0.0.1:8080/"
	@echo "  HTTP API   http://127.0.0.1:8080/api/job-names  (docs: http://127.0.0.1:8080/docs)"
	@echo "  Prometheus http://127.0.0.1:9090   Kafka 127.0.0.1:9092   Redis 127.0.0.1:6379   Couchbase mock 127.0.0.1:11210"
	@echo "  a live demo sends new jobs at 5 events/s; logs in .infra-data/supervisor/"

catch-up: setup ## run each stage once over what the topics hold (each stops once caught up), then print stats
	$(JOBTRAIL) processors --idle-stop-s 10
	$(JOBTRAIL) embed --idle-stop-s 5
	$(JOBTRAIL) project redis --idle-stop-s 3
	$(JOBTRAIL) project couchbase --idle-stop-s 3
	$(JOBTRAIL) project analytics --idle-stop-s 3
	$(JOBTRAIL) stats

pipeline-up: setup ## start the pipeline's components under supervisor, which restarts any that exits
	@mkdir -p .infra-data/supervisor
	@if $(SUPERVISORCTL) pid >/dev/null 2>&1; then $(SUPERVISORCTL) start all || true; \
	 else $(BIN)/supervisord -c $(SUPERVISOR_CONF); fi
	@sleep 3; $(SUPERVISORCTL) status || true

pipeline-down: ## stop the supervised components and wait for them (services keep running)
	-@if $(SUPERVISORCTL) pid >/dev/null 2>&1; then $(SUPERVISORCTL) shutdown; \
	  for i in $$(seq 60); do $(SUPERVISORCTL) pid >/dev/null 2>&1 || break; sleep 1; done; fi

status: ## each supervised component's state, then the services' health
	-@$(JOBTRAIL) status
	-@for s in $(SERVICES); do infra/$$s.sh status; done

down: pipeline-down infra-down ## stop everything

lint: setup ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## apply ruff formatting and autofixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup ## mypy --strict on the packages
	$(BIN)/mypy

test-unit: setup ## unit tests only (no services)
	$(BIN)/pytest tests/unit

test-integration: setup infra-up ## integration and end-to-end tests against real services
	$(BIN)/pytest tests/integration tests/e2e

test: setup lint typecheck infra-up ## everything CI runs: lint, types, unit, integration, e2e
	@if $(SUPERVISORCTL) pid >/dev/null 2>&1; then \
	  echo "stopping the running pipeline (make up): the tests use its metrics ports"; \
	  $(MAKE) --no-print-directory pipeline-down >/dev/null; fi
	$(BIN)/pytest tests

bench-produce: setup infra-up ## SDK producer vs bare confluent-kafka vs Kafka ProducerPerformance
	$(BIN)/python -m bench.produce

screenshots: setup infra-up ## run the web UI's browser test and keep its screenshots in docs/screenshots/ (the README's)
	@command -v chromium >/dev/null || (apt-get install -y -qq chromium chromium-driver >/dev/null || sudo apt-get install -y -qq chromium chromium-driver >/dev/null)
	JOBTRAIL_SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest tests/e2e/test_what_users_see.py

dashboards: setup ## regenerate infra/grafana/dashboards/*.json from infra/grafana/dashboards.py
	$(BIN)/python -m infra.grafana.dashboards

category-accuracy: setup ## the category classifier on tests/data/categories/labeled.tsv: accuracy, precision and recall
	$(BIN)/python -m bench.category_accuracy

bench-categories: setup ## categorizing 100,000 embedded errors against 50 categories, beside a numpy matrix product
	$(BIN)/python -m bench.categories

fingerprint-accuracy: setup ## group accuracy of `jobtrail fingerprint` on tests/data/fingerprint/*.tsv
	$(BIN)/python -m bench.fingerprint_accuracy

bench-projections: setup infra-up ## projections vs redis-benchmark and bare Couchbase upserts; 1M rebuild
	$(BIN)/python -m bench.projections

bench-api: setup infra-up ## every API route under 50 clients (wrk) over the read models of 1M demo events
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python -m bench.api $(BENCH_API_ARGS)

bench-processors: setup infra-up ## Faust processors (ingest, end to end) vs a bare confluent-kafka stage-1 loop; BENCH_ARGS="--guarantee exactly_once"
	$(BIN)/python -m bench.processors $(BENCH_ARGS)

soak-processors: setup infra-up ## 20 min: a hot job name at 100 ends/s, kill -9 every 5 min, a second worker in and out; SOAK_ARGS="--minutes 5"
	$(BIN)/python -m bench.soak_processors $(SOAK_ARGS)

bench-embed: setup infra-up ## embedder (torch) vs raw sentence-transformers encode, same texts and batch size
	$(BIN)/python -m bench.embed

embed: setup ## run an embedder (until Ctrl-C); JOBTRAIL_EMBED_* choose provider and model
	$(JOBTRAIL) embed

processors: setup ## run a stream-processor worker (until Ctrl-C); start more to scale out
	$(JOBTRAIL) processors

project-redis: setup ## run the Redis projection (until Ctrl-C)
	$(JOBTRAIL) project redis

project-couchbase: setup ## run the Couchbase projection (until Ctrl-C)
	$(JOBTRAIL) project couchbase

project-analytics: setup ## run the analytics projection (until Ctrl-C)
	$(JOBTRAIL) project analytics

rebuild-redis: setup ## rebuild the Redis read model from the log
	$(JOBTRAIL) rebuild redis

rebuild-couchbase: setup ## rebuild the Couchbase read model from the log
	$(JOBTRAIL) rebuild couchbase

rebuild-analytics: setup ## rebuild the analytics read model from the topics
	$(JOBTRAIL) rebuild analytics

stats: setup ## job statistics from the Redis read model
	$(JOBTRAIL) stats

clean: pipeline-down infra-down ## stop services and delete their data and the virtualenv
	rm -rf .infra-data $(VENV)
