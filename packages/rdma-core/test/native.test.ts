/**
 * The C++ unit tests of the ring protocol, shm transport and histogram (native/test/ring_test.cc) and of the
 * fabric engine's record parsing, tail-delta check and the histogram's edges (native/test/fabric_record_test.cc,
 * no libfabric or network needed) and of the statistics file's slot allocator, seqlock and delta snapshots
 * (native/test/stats_file_test.cc), built with AddressSanitizer + UndefinedBehaviorSanitizer and run as
 * separate binaries (`pnpm test:native`).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const hasCompiler = existsSync('/usr/bin/g++');

describe('native ring and fabric record tests under ASan + UBSan', () => {
  it.skipIf(!hasCompiler)(
    'build and pass',
    async () => {
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
    },
    120_000,
  );
});
