// Prints the one summary line of `make test`: `N passed, N failed` over all suites.
// Counts every vitest test case (from each package's .reports/vitest.json) plus each lint and typecheck
// task (from turbo's run summaries). A test task that failed without a report (a crash before vitest
// could write one) counts as one failure, so a broken suite can never read as green.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const runsDir = join(root, '.turbo', 'runs');
const runs = existsSync(runsDir)
  ? readdirSync(runsDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(runsDir, f), 'utf8')))
  : [];

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

for (const run of runs) {
  for (const task of run.tasks ?? []) {
    const exit = task.execution?.exitCode;
    if (exit === undefined) continue; // not run (no such script in that package)
    const dir = join(root, task.directory ?? '');
    if (task.task === 'test' || task.task === 'test:e2e') {
      const report = join(dir, '.reports', task.task === 'test' ? 'vitest.json' : 'e2e.json');
      if (existsSync(report)) {
        const r = JSON.parse(readFileSync(report, 'utf8'));
        passed += r.numPassedTests ?? 0;
        failed += r.numFailedTests ?? 0;
        skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
        for (const file of r.testResults ?? []) {
          for (const t of file.assertionResults ?? []) {
            if (t.status !== 'failed') continue;
            // The first lines of the first failure message: CI shows only the tail of the log.
            const why = String(t.failureMessages?.[0] ?? '')
              .split('\n')
              .slice(0, 3)
              .map((l) => l.slice(0, 300))
              .join('\n      ');
            failures.push(`${task.package}: ${t.fullName}${why ? `\n      ${why}` : ''}`);
          }
        }
        if (exit !== 0 && (r.numFailedTests ?? 0) === 0) {
          failed += 1;
          failures.push(`${task.package}#${task.task}: exited ${exit} (a suite failed to load or run)`);
        }
      } else if (exit !== 0) {
        failed += 1;
        failures.push(`${task.package}#${task.task}: exited ${exit} without a report`);
      }
    } else {
      if (exit === 0) passed += 1;
      else {
        failed += 1;
        failures.push(`${task.taskId}: exited ${exit}`);
      }
    }
  }
}

if (runs.length === 0) {
  failed += 1;
  failures.push('no turbo run summaries found: did the test command run?');
}
for (const f of failures) console.log(`  failed: ${f}`);
// Skipped tests (e.g. namespace tests without root, benchmarks without RDMAQ_BENCH) are named, not hidden.
if (skipped > 0) console.log(`  (${skipped} skipped: see the suites' output above for why)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
