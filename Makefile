# One way to test, the same everywhere: `make test` installs what is missing (Debian packages,
# the virtual environments, the instance image) and runs every stage in tools/stages/, ending
# with one line "N passed, N failed". `make STAGE` runs one stage (sanity, units, lint, docs, ...).
SHELL := /bin/bash
PYTHON := .venv/bin/python
STAGES := $(patsubst tools/stages/%.sh,%,$(wildcard tools/stages/[0-9][0-9]-*.sh))
STAGE_NAMES := $(foreach s,$(STAGES),$(word 2,$(subst -, ,$(s))))

.PHONY: test check bootstrap clean demo docs-write reliability-report bench bench-quick ee $(STAGE_NAMES)

test: bootstrap
	$(PYTHON) tools/run_tests.py

bootstrap:
	@bash tools/bootstrap.sh

$(STAGE_NAMES): bootstrap
	$(PYTHON) tools/run_tests.py $@

# The inner loop (about 2 minutes): sanity and unit tests on ansible-core 2.19 only, and the
# emulator's own tests that need no podman. `make test` runs everything.
check: bootstrap
	TEST_QUICK=1 $(PYTHON) tools/run_tests.py sanity units emulator

# Rewrites docs/reference/ from the plugins' and roles' own documentation (`make docs` checks it).
docs-write: bootstrap
	$(PYTHON) tools/docs_reference.py

# Renders docs/reliability.md from the figures of the last run of the reliability stage (which
# renders its own copy into tests/output/reliability/ and leaves docs/ alone). Commit the page
# after a whole run of the stage, not after a run of one file.
reliability-report:
	@ls tests/output/reliability/*.json >/dev/null 2>&1 || \
	  { echo "no reliability figures in tests/output/reliability/: run make reliability first" >&2; exit 1; }
	$(PYTHON) tools/reliability_report.py

# Benchmarks (not tests): every figure side by side in one run -> benchmarks/RESULTS.md and plots.
# bench-quick is a smoke run into tests/output/bench/. Pass runner options with BENCH_ARGS=...
bench: bootstrap
	bash benchmarks/bench.sh $(BENCH_ARGS)

bench-quick: bootstrap
	bash benchmarks/bench.sh --quick $(BENCH_ARGS)

# The execution environment of execution-environment.yml, built on a base image made here from
# Debian packages (nothing pulled, nothing pushed), and a job run in it the way AWX runs one: key
# pairs on a fresh emulator, the authorized_keys role over SSH on an instance container. Builds
# only when what goes into the image changed; figures in tests/output/ee/ee.json. The artifact
# stage runs the same script where podman is present (docs/execution-environment.md).
ee: bootstrap
	bash tools/publish/ee.sh $(EE_ARGS)

clean:
	rm -rf .cache .test-results tests/output

# The whole life of SSH key pairs on ECS, offline, with a short summary per step (docs/demo.md).
demo:
	@bash tools/demo.sh
