# rdmaq — the two commands of the README, plus helpers. Every target is idempotent.
.PHONY: demo test test-faults soak setup bench lint typecheck format clean

demo:      ## install what is missing, build, run the dashboard + four local agents with real traffic
	@scripts/demo.sh

test:      ## install what is missing, build, run every check and test; ends with "N passed, N failed"
	@scripts/test.sh

test-faults: ## only the fault-injection tests (kill -9, veth cuts of 5 s and 3 min, tbf, stalled consumer, wedged path); namespaces need root
	@scripts/setup.sh
	@cd packages/rdma-core && pnpm exec vitest run test/fabric-faults.test.ts test/fabric-netns.test.ts test/fabric-stall.test.ts test/bad-input.test.ts

soak:      ## 16 min warm-up + an hour of the busy demo, then hostile bursts: memory growth, fd and /dev/shm leaks, latency drift, hub recovery (SOAK_MINUTES)
	@scripts/setup.sh
	@node scripts/soak.mjs --minutes $${SOAK_MINUTES:-60}

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
