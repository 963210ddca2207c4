/**
 * The example end to end: three ranks on loopback (child processes, fabric links among them, no agent) run a
 * few all-reduces; every rank checks every element against the expected sum (it exits 1 otherwise), each
 * rank's sent figures equal its downstream neighbour's received ones, and while they run the statistics files
 * show their links under the application name they set.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { StatsReader } from '@rdmaq/rdma-core';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', 'dist', 'allreduce.js');
const dir = mkdtempSync(join(tmpdir(), 'rdmaq-allreduce-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Ev = { ev: string; rank: number; [k: string]: unknown };

describe('rdmaq-allreduce', () => {
  it('3 ranks on loopback: every sum checked, sent = received around the ring, links labelled in the files', async () => {
    const ranks = 3;
    const iterations = 3;
    const child = spawn(
      process.execPath,
      [
        CLI,
        '--local',
        String(ranks),
        '--iterations',
        String(iterations),
        '--size',
        '3MiB',
        '--compute-ms',
        '300',
        '--json',
      ],
      // --compute-ms keeps the ranks alive long enough to look at their statistics files.
      {
        env: { ...process.env, RDMAQ_STATS_DIR: dir, RDMAQ_APP_NAME: 'allreduce-test' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout.setEncoding('utf8');
    const events: Ev[] = [];
    const stderr: string[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => events.push(JSON.parse(l) as Ev));
    createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
    const exit = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));

    // While they run: the files name the app and hold the ring's links (one tx + one rx per rank).
    const reader = new StatsReader({ dir, sweep: false });
    let seen: string[] = [];
    const scan = () => {
      seen = reader
        .scan()
        .files.filter((f) => f.app === 'allreduce-test')
        .flatMap((f) => f.links.map((l) => `${l.linkId}:${l.direction}`))
        .sort();
      return seen.length >= 2 * ranks;
    };
    // On timeout the assertion below shows what the files held.
    await waitFor("every rank's links in the statistics files", scan, { everyMs: 50 }).catch(() => {});
    reader.close();
    expect(seen).toEqual(
      [
        'ring-r0->r1:rx',
        'ring-r0->r1:tx',
        'ring-r1->r2:rx',
        'ring-r1->r2:tx',
        'ring-r2->r0:rx',
        'ring-r2->r0:tx',
      ].sort(),
    );

    const code = await exit;
    expect(code, stderr.join('\n')).toBe(0);
    const ok = events.filter((e) => e.ev === 'iteration' && e.ok === true);
    expect(ok.length).toBe(ranks * iterations);
    expect(events.filter((e) => e.ev === 'mismatch')).toEqual([]);
    const done = events.filter((e) => e.ev === 'done').sort((a, b) => a.rank - b.rank);
    expect(done.length).toBe(ranks);
    for (const d of done) {
      expect(d.app).toBe('allreduce-test');
      const downstream = done[(d.rank + 1) % ranks]!;
      expect(d.sent).toEqual(downstream.received);
      expect((d.sent as { records: number }).records).toBeGreaterThan(0);
    }
  }, 40_000);
});
