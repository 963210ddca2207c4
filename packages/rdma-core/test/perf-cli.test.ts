/**
 * rdmaq-perf's contract: the JSON line format other tools read (one object per case, the target's field
 * names), figures that are self-consistent, and a clear usage error. Figures themselves are not judged
 * here (benchmarks, not tests); baselines are skipped because they live outside the repository.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/perf/cli.js', import.meta.url));
const FIELDS = [
  'bench',
  'transport',
  'provider',
  'size',
  'idle',
  'engine',
  'p50_us',
  'p99_us',
  'p999_us',
  'max_us',
  'msgs_per_s',
  'gb_per_s',
] as const;

function perf(args: string[]): {
  status: number | null;
  lines: Array<Record<string, unknown>>;
  stderr: string;
} {
  const r = spawnSync(process.execPath, [cli, ...args, '--json', '--no-baselines'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, lines, stderr: r.stderr };
}

describe('rdmaq-perf --json', () => {
  const cases: Array<[string, string[]]> = [
    ['lat shm js', ['lat', '--transport', 'shm', '--size', '64', '--iters', '2000']],
    ['lat shm engine', ['lat', '--transport', 'shm', '--size', '64', '--iters', '2000', '--engine']],
    ['bw shm 64 KiB engine', ['bw', '--transport', 'shm', '--size', '65536', '--iters', '2000', '--engine']],
    [
      'lat fabric tcp;ofi_rxm',
      ['lat', '--transport', 'fabric', '--provider', 'tcp;ofi_rxm', '--iters', '1000'],
    ],
    [
      'lat fabric net engine',
      ['lat', '--transport', 'fabric', '--provider', 'net', '--iters', '5000', '--engine'],
    ],
    [
      'bw fabric net engine',
      ['bw', '--transport', 'fabric', '--provider', 'net', '--iters', '50000', '--engine'],
    ],
  ];
  for (const [name, args] of cases) {
    it(`${name}: one line with every field, ordered percentiles, consistent rates`, () => {
      const { status, lines, stderr } = perf(args);
      expect(status, stderr).toBe(0);
      const results = lines.filter((l) => 'bench' in l);
      expect(results).toHaveLength(1);
      const r = results[0]!;
      expect(Object.keys(r)).toEqual(expect.arrayContaining([...FIELDS]));
      expect(r.bench).toBe(args[0]);
      expect(r.transport).toBe(args[2]);
      expect(r.engine).toBe(args.includes('--engine'));
      const [p50, p99, p999, max] = [r.p50_us, r.p99_us, r.p999_us, r.max_us] as number[];
      expect(p50).toBeGreaterThan(0);
      expect(p50).toBeLessThanOrEqual(p99!);
      expect(p99).toBeLessThanOrEqual(p999!);
      expect(p999).toBeLessThanOrEqual(max!);
      const size = r.size as number;
      const msgs = r.msgs_per_s as number;
      expect(msgs).toBeGreaterThan(0);
      // GB/s is msgs/s × payload size (rounded in the output).
      expect(Math.abs((r.gb_per_s as number) - (msgs * size) / 1e9)).toBeLessThanOrEqual(
        0.01 + 0.01 * (r.gb_per_s as number),
      );
    });
  }

  it('fabric event mode, two processes: no round trip waits for the 1 s safety poll (no lost wake-up)', () => {
    // Each side parks after every record, so 3000 trips exercise the park/wake race 6000 times; a lost
    // wake-up shows as a trip of ~1 s (one-way ~500 ms), a healthy one takes well under 50 ms here.
    const { status, lines, stderr } = perf([
      'lat',
      '--transport',
      'fabric',
      '--provider',
      'net',
      '--idle',
      'event',
      '--iters',
      '3000',
    ]);
    expect(status, stderr).toBe(0);
    const r = lines.find((l) => 'bench' in l)!;
    expect(r.idle).toBe('event');
    expect(r.max_us as number).toBeLessThan(250_000);
  });

  it('--help prints the usage and every option on stdout and exits 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = spawnSync(process.execPath, [cli, flag], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/usage: rdmaq-perf lat\|bw\|idle\|all/);
      for (const opt of ['--transport', '--provider', '--size', '--iters', '--idle', '--engine', '--json']) {
        expect(r.stdout).toContain(opt);
      }
      expect(r.stdout).toContain('--no-baselines');
      expect(r.stdout).toContain('--repeat');
      expect(r.stderr).toBe('');
    }
  });

  it('refuses a bad option with a usage message and exit code 2', () => {
    const r = spawnSync(process.execPath, [cli, 'lat', '--transport', 'carrier-pigeon'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--transport is shm or fabric/);
    expect(r.stderr).toMatch(/usage: rdmaq-perf/);
    const unknown = spawnSync(process.execPath, [cli, 'lat', '--carrier-pigeon'], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/--carrier-pigeon/);
    expect(unknown.stderr).toMatch(/usage: rdmaq-perf/);
  });
});
