# One way to test, the same everywhere: `make test` installs what is missing (Debian packages,
# the virtual environments, the instance image) and runs every stage in tools/stages/, ending
# with one line "N passed, N failed". `make STAGE` runs one stage (sanity, units, lint, docs, ...).
SHELL := /bin/bash
PYTHON := .venv/bin/python
STAGES := $(patsubst tools/stages/%.sh,%,$(wildcard tools/stages/[0-9][0-9]-*.sh))
STAGE_NAMES := $(foreach s,$(STAGES),$(word 2,$(subst -, ,$(s))))

.PHONY: test bootstrap clean demo docs-write bench bench-quick $(STAGE_NAMES)

test: bootstrap
	$(PYTHON) tools/run_tests.py

bootstrap:
	@bash tools/bootstrap.sh

$(STAGE_NAMES): bootstrap
	$(PYTHON) tools/run_tests.py $@

# Rewrites docs/reference/ from the plugins' and roles' own documentation (`make docs` checks it).
docs-write: bootstrap
	$(PYTHON) tools/docs_reference.py

# Benchmarks (not tests): every figure side by side in one run -> benchmarks/RESULTS.md and plots.
# bench-quick is a smoke run into tests/output/bench/. Pass runner options with BENCH_ARGS=...
bench: bootstrap
	bash benchmarks/bench.sh $(BENCH_ARGS)

bench-quick: bootstrap
	bash benchmarks/bench.sh --quick $(BENCH_ARGS)

clean:
	rm -rf .cache .test-results tests/output

# The whole life of SSH key pairs on ECS, offline, with a short summary per step (docs/demo.md).
demo:
	@bash tools/demo.sh
