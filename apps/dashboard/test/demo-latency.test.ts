import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bucketOf, Histogram, type SparseBuckets } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type LinkSpec, sample, startHub, TestAgent, type TestHub } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = `${ROOT}scripts/demo-latency.mjs`;

interface Report {
  pass: boolean;
  why: string;
  ends: Array<{ key: string; count: number; p50: number; p99: number; over: string[]; alerts: string[] }>;
  total: { count: number; p50: number | null; p99: number | null };
}
/** scripts/lib/latency-report.mjs (plain ESM, no types: the surface used here). */
interface ReportLib {
  parseDuration(text: string): number;
  formatNs(ns: number | null, digits?: number): string;
  mergeSlots(slots: Array<{ buckets: SparseBuckets }>): {
    count: number;
    p50: number | null;
    p99: number | null;
  };
  buildReport(latency: unknown, alerts: unknown, targets: { p50: number; p99: number }): Report;
  formatReport(r: Report): string[];
}
const lib = (await import(pathToFileURL(`${ROOT}scripts/lib/latency-report.mjs`).href)) as ReportLib;

const buckets = (values: Array<[number, number]>): SparseBuckets => {
  const m = new Map<number, number>();
  for (const [v, n] of values) m.set(bucketOf(v), (m.get(bucketOf(v)) ?? 0) + n);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
};

describe('demo-latency report (scripts/lib/latency-report.mjs)', () => {
  it('parses targets with units', () => {
    expect(lib.parseDuration('200us')).toBe(200_000);
    expect(lib.parseDuration('200µs')).toBe(200_000);
    expect(lib.parseDuration('5ms')).toBe(5_000_000);
    expect(lib.parseDuration('0.5 s')).toBe(500_000_000);
    expect(lib.parseDuration('1500ns')).toBe(1500);
    expect(() => lib.parseDuration('5')).toThrow(/not a duration/);
    expect(lib.formatNs(153_600)).toBe('154 µs');
    expect(lib.formatNs(4_210_000)).toBe('4.21 ms');
    expect(lib.formatNs(200_000)).toBe('200 µs');
    expect(lib.formatNs(5_000_000)).toBe('5 ms');
    expect(lib.formatNs(12_500_000)).toBe('12.5 ms');
    expect(lib.formatNs(1_050_000)).toBe('1.05 ms');
    expect(lib.formatNs(1_500_000)).toBe('1.5 ms');
    expect(lib.formatNs(10_000_000)).toBe('10 ms');
    expect(lib.formatNs(200_704, 1)).toBe('200.7 µs');
    expect(lib.formatNs(200_000, 1)).toBe('200 µs');
  });

  it('merges slots bucket-wise: the quantiles equal those of one histogram of every record', () => {
    const slots = [
      { buckets: buckets([[50_000, 700]]) },
      {
        buckets: buckets([
          [80_000, 250],
          [3_000_000, 40],
        ]),
      },
      {
        buckets: buckets([
          [50_000, 5],
          [12_000_000, 5],
        ]),
      },
    ];
    const h = new Histogram();
    for (const s of slots) h.addSparse(s.buckets);
    const m = lib.mergeSlots(slots);
    expect(m.count).toBe(1000);
    expect(m.p50).toBe(h.quantile(0.5));
    // 990th of 1000 records: among the 3 ms ones (the 12 ms ones are the last 5).
    expect(m.p99).toBe(h.quantile(0.99));
    expect(Math.abs(m.p99! - 3_000_000) / 3_000_000).toBeLessThan(0.005);
    expect(lib.mergeSlots([])).toEqual(expect.objectContaining({ count: 0, p50: null, p99: null }));
  });

  it('judges each link end; firing alerts are attached to theirs', () => {
    const latency = {
      windowS: 120,
      links: [
        {
          key: 'a~fast',
          direction: 'rx',
          providerClass: 'tcp',
          slots: [{ ts: 0, buckets: buckets([[90_000, 100]]) }],
        },
        {
          key: 'a~slow',
          direction: 'rx',
          providerClass: 'tcp',
          slots: [
            {
              ts: 0,
              buckets: buckets([
                [90_000, 90],
                [30_000_000, 10],
              ]),
            },
          ],
        },
        { key: 'a~tx', direction: 'tx', providerClass: 'tcp', slots: [] },
      ],
    };
    const alerts = {
      active: [
        { state: 'firing', ruleName: 'LinkLatencyP99High', labels: { link_key: 'a~slow' } },
        { state: 'pending', ruleName: 'LinkLatencyP99High', labels: { link_key: 'a~fast' } },
      ],
    };
    const targets = { p50: 200_000, p99: 5_000_000 };
    const r = lib.buildReport(latency, alerts, targets);
    expect(r.pass).toBe(false);
    expect(r.why).toBe('1 of 2 link ends over target');
    expect(r.ends.map((e) => [e.key, e.over.length, e.alerts])).toEqual([
      ['a~fast', 0, []],
      ['a~slow', 1, ['LinkLatencyP99High']],
    ]);
    const text = lib.formatReport(r).join('\n');
    expect(text).toMatch(/a~slow .* OVER \(p99 (29\.9\d?|30) ms > 5 ms\)\s+firing: LinkLatencyP99High/);
    expect(text).toMatch(/1 link ends without queue-latency records in the window \(1 tx ends/);
    expect(text).toMatch(/^FAIL: 1 of 2 link ends over target \(targets p50 ≤ 200 µs, p99 ≤ 5 ms\)$/m);
    expect(lib.buildReport({ windowS: 120, links: [latency.links[0]] }, { active: [] }, targets).pass).toBe(
      true,
    );
    expect(lib.buildReport({ windowS: 120, links: [] }, { active: [] }, targets)).toMatchObject({
      pass: false,
      why: 'no queue-latency records in the window',
    });
  });
});

/** Runs the script; resolves with its exit code and output. */
function runScript(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => {
      out += c;
    });
    p.stderr.on('data', (c) => {
      err += c;
    });
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

describe('scripts/demo-latency.mjs against a hub', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let seq = 0;
  beforeAll(async () => {
    hub = await startHub();
    agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('d1');
  });
  afterAll(async () => {
    agent?.close();
    await hub?.close();
  });
  const send = async (n: number, rx: Array<[number, number]>) => {
    for (let i = 0; i < n; i++) {
      hub.clock.t += 1000;
      seq++;
      const links: LinkSpec[] = [
        { id: 'd2->d1', peer: 'd2', direction: 'rx', records: seq * 100, latency: rx },
        { id: 'd1->d2', peer: 'd2', direction: 'tx', records: seq * 100 },
      ];
      agent.send(sample(seq, hub.clock.t, links));
      await agent.acked(seq);
      hub.app.tick();
    }
  };
  const args = () => ['--url', hub.url, '--password', ADMIN.password, '--minutes', '1'];

  it('PASS (exit 0) on a fast link, with p50/p99 from the merged histogram', async () => {
    await send(30, [
      [60_000, 90],
      [150_000, 9],
      [2_000_000, 1],
    ]);
    const r = await runScript(args());
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/queue latency over the last 60 s/);
    expect(r.out).toMatch(/d1~d2->d1\s+tcp\s+3000\s+60 µs\s+150 µs\s+ok/);
    expect(r.out).toMatch(/1 link ends without queue-latency records in the window \(1 tx ends/);
    expect(r.out).toMatch(/^PASS: all 1 link ends within target/m);
  });

  it('FAIL (exit 1) when p99 is over target, and the tighter flags are honoured', async () => {
    const tight = await runScript([...args(), '--p50', '50us']);
    expect(tight.code).toBe(1);
    expect(tight.out).toMatch(/OVER \(p50 60(\.\d+)? µs > 50 µs\)/);
    await send(30, [
      [60_000, 90],
      [12_000_000, 10],
    ]);
    const r = await runScript(args());
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/OVER \(p99 1[12]\.\d+ ms > 5 ms\)/);
    expect(r.out).toMatch(/^FAIL: 1 of 1 link ends over target/m);
  });

  it('exit 2 when the hub cannot be reached or refuses the login or the window', async () => {
    const down = await runScript(['--url', 'http://127.0.0.1:9', '--password', 'x']);
    expect(down.code).toBe(2);
    expect(down.err).toMatch(/cannot reach the hub at http:\/\/127\.0\.0\.1:9/);
    const wrong = await runScript(['--url', hub.url, '--password', 'wrong password']);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/HTTP 401: wrong user name or password/);
    const long = await runScript([...args().slice(0, 4), '--minutes', '5']);
    expect(long.code).toBe(2);
    expect(long.err).toMatch(/keeps 120 s of latency histograms/);
  });
});
