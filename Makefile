# rdmaq — the two commands of the README, plus helpers. Every target is idempotent.
.PHONY: demo test setup bench lint typecheck format clean

demo:      ## install what is missing, build, run the dashboard + four local agents with real traffic
	@scripts/demo.sh

test:      ## install what is missing, build, run every check and test; ends with "N passed, N failed"
	@scripts/test.sh

setup:     ## install what is missing and build, nothing else
	@scripts/setup.sh

bench: setup  ## benchmarks, each printed beside its baseline measured in the same run
	@pnpm turbo run bench --concurrency=1

lint:
	@pnpm turbo run lint //#lint:repo

typecheck:
	@pnpm turbo run typecheck

format:
	@pnpm biome format --write .

clean:
	@rm -rf node_modules */*/node_modules */*/dist */*/build apps/dashboard/.next .turbo
