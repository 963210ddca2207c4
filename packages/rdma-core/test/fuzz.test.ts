/**
 * The libFuzzer targets of native/fuzz/ (shm ring reader and writer, the fabric receiver's record parsing,
 * a writer → both readers round trip, the ring file header, the histogram), built with ASan + UBSan and run
 * briefly from their checked-in corpus, regression inputs included (`pnpm test:fuzz`; longer runs:
 * `scripts/fuzz.sh [seconds]`). Skipped, with the reason printed, only where clang is not installed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function hasClang(): boolean {
  try {
    execFileSync('clang++', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const clang = hasClang();
if (!clang) {
  console.warn(
    'fuzz targets SKIPPED: clang++ not found (apt-get install clang libclang-rt-14-dev; scripts/setup.sh installs both)',
  );
}

describe('native fuzz targets under ASan + UBSan (bounded run)', () => {
  it.skipIf(!clang)(
    'build, replay the corpus and fuzz briefly without a finding',
    async () => {
      const out = await new Promise<{ code: number; text: string }>((resolve) => {
        execFile(
          'pnpm',
          ['run', '--silent', 'test:fuzz'],
          { cwd: ROOT, timeout: 290_000, maxBuffer: 16 * 1024 * 1024 },
          (err, stdout, stderr) => {
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, text: `${stdout}${stderr}` });
          },
        );
      });
      if (out.code !== 0) console.error(out.text);
      expect(out.text).toContain('fuzz: all targets passed');
      expect(out.text).not.toContain('SKIPPED');
      expect(out.code).toBe(0);
    },
    300_000,
  );
});
