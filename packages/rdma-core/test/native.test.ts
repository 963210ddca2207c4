/**
 * The C++ unit tests of the ring protocol, shm transport and histogram (native/test/ring_test.cc) and of the
 * fabric engine's record parsing, tail-delta check and the histogram's edges (native/test/fabric_record_test.cc,
 * no libfabric or network needed) and of the statistics file's slot allocator, seqlock and delta snapshots
 * (native/test/stats_file_test.cc), built with AddressSanitizer + UndefinedBehaviorSanitizer and run as
 * separate binaries (`pnpm test:native`).
 */
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What is wrong with the compiler `test:native` calls (`g++` on PATH), or undefined when it runs. */
function compilerProblem(): string | undefined {
  const r = spawnSync('g++', ['--version'], { encoding: 'utf8' });
  if (r.error) return `g++ cannot be run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`;
  if (r.status !== 0) return `g++ --version exited with ${r.status}: ${r.stderr.trim()}`;
  return undefined;
}

describe('native ring and fabric record tests under ASan + UBSan', () => {
  it('build and pass', async () => {
    // No compiler is a failure, never a skip: these tests are the only check of the C++ core on its own.
    const problem = compilerProblem();
    if (problem)
      throw new Error(
        `${problem}: the native tests need g++ (Debian: apt-get install build-essential; scripts/setup.sh installs it)`,
      );
    const out = await new Promise<{ code: number; text: string }>((resolve) => {
      execFile(
        'pnpm',
        ['run', '--silent', 'test:native'],
        { cwd: ROOT, timeout: 110_000 },
        (err, stdout, stderr) => {
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, text: `${stdout}${stderr}` });
        },
      );
    });
    expect(out.text).toContain('native ring tests: all passed');
    expect(out.text).toContain('native fabric record tests: all passed');
    expect(out.text).not.toMatch(/AddressSanitizer|runtime error/);
    expect(out.code).toBe(0);
  }, 120_000);
});
