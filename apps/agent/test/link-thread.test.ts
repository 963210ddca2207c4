/**
 * LinkThread (the main thread's side of `dataPath: worker`) against a scripted stand-in worker
 * (fixtures/fake-link-worker.mjs): a late sample reply is folded into the next sample, so no histogram count
 * is lost; a crash marks the links down, restarts the worker, and counters carry over the restart. Plus the
 * helpers that bound and merge what crosses the thread boundary, and the config key.
 */
import type { LinkSample } from '@rdmaq/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import type { AgentConfig } from '../src/config.js';
import { addSparse, boundBindings, LOG_BOUNDS } from '../src/data-path.js';
import { LinkThread } from '../src/link-thread.js';
import { captureLogger, configFrom, SECRET } from './helpers.js';

const FAKE = new URL('./fixtures/fake-link-worker.mjs', import.meta.url);

function fakeThread(delays: number[]) {
  const { logger, lines } = captureLogger('debug');
  const base = configFrom({
    nodeId: 'n',
    secret: SECRET,
    listen: { enabled: false },
    reconnect: { initialMs: 20, maxMs: 100 },
  });
  const config = { ...base, fake: { delays } } as AgentConfig;
  const t = new LinkThread({ config, logger, entry: FAKE, sampleTimeoutMs: 100 });
  return { t, lines };
}

const queueCount = (l: LinkSample | undefined) => (l?.latency.queue ?? []).reduce((a, [, n]) => a + n, 0);

const threads: LinkThread[] = [];
afterEach(async () => {
  for (const t of threads.splice(0)) await t.close();
});

describe('LinkThread', () => {
  it('answers a slow sample from the last figures and folds the late reply into the next sample', async () => {
    const { t, lines } = fakeThread([0, 300, 0]);
    threads.push(t);
    await t.start();
    expect(t.views().map((v) => [v.id, v.state])).toEqual([['x', 'up']]);
    expect(lines.some((l) => l.component === 'fake' && l.msg === 'fake worker up')).toBe(true);

    const s1 = await t.sample();
    expect(s1.links[0]!.counters.records).toBe(10);
    expect(queueCount(s1.links[0])).toBe(1);
    expect(s1.loop).toEqual({ lagMs: 1, maxMs: 2 });

    const s2 = await t.sample(); // the reply takes 300 ms: the last figures, no deltas
    expect(s2.links[0]!.counters.records).toBe(10);
    expect(queueCount(s2.links[0])).toBe(0);
    expect(s2.loop?.lagMs).toBe(100);
    expect(lines.some((l) => l.level === 40 && l.msg.includes('did not answer a sample within 100 ms'))).toBe(
      true,
    );

    await waitFor('the late reply to sample 2', () =>
      lines.some((l) => l.component === 'fake' && l.msg === 'fake worker replied to sample 2'),
    );
    const s3 = await t.sample(); // late reply 2 + reply 3
    expect(s3.links[0]!.counters.records).toBe(30);
    expect(queueCount(s3.links[0])).toBe(2);
    expect(queueCount(s1.links[0]) + queueCount(s2.links[0]) + queueCount(s3.links[0])).toBe(3);
  });

  it('a crashed worker: links reported down, a new worker started, counters carried over', async () => {
    const { t, lines } = fakeThread([]);
    threads.push(t);
    const events: string[] = [];
    t.on('state', (ev: { link: string; state: string; code?: string }) =>
      events.push(`${ev.link} ${ev.state} ${ev.code}`),
    );
    await t.start();
    await t.sample();
    const before = (await t.sample()).links[0]!.counters.records; // 20
    expect(before).toBe(20);
    await t.crashForTest('boom');
    const line = await waitFor('the crash line', () =>
      lines.find((l) => l.level === 50 && l.msg.includes('data-path worker crashed')),
    );
    expect(line.msg).toContain('boom');
    expect(events).toContain('x down ERR_RDMAQ_DATA_PATH_CRASHED');
    // While it is away: a sample from the last figures, the link down with the reason.
    const away = (await t.sample()).links[0]!;
    if (t.restarts === 0) {
      expect(away.state).toBe('down');
      expect(away.reason).toContain('crashed');
      expect(away.counters.records).toBe(20);
    }
    await waitFor('a new worker', () => t.restarts === 1);
    const again = (await t.sample()).links[0]!;
    expect(again.state).toBe('up');
    expect(again.counters.records).toBe(20 + 10); // the new worker's 10 on top of the 20 before
    expect(lines.some((l) => l.msg.startsWith('data-path worker restarted'))).toBe(true);
  });

  it('markAllDown: the worker says so before it answers, and close() ends it', async () => {
    const { t } = fakeThread([]);
    const events: string[] = [];
    t.on('state', (ev: { link: string; state: string }) => events.push(`${ev.link} ${ev.state}`));
    await t.start();
    await t.markAllDown('going away');
    expect(events).toEqual(['x down']);
    expect(t.views()[0]).toMatchObject({ state: 'down', reason: 'going away' });
    expect(t.threadId).toBeGreaterThan(0);
    await t.close();
    expect(t.threadId).toBeUndefined();
    expect(await t.drain(100)).toBe(true); // nothing left to drain
  });
});

describe('data-path helpers', () => {
  it('addSparse adds two sparse histograms by bucket', () => {
    expect(
      addSparse(
        [
          [1, 2],
          [5, 1],
        ],
        [
          [0, 1],
          [5, 3],
          [9, 1],
        ],
      ),
    ).toEqual([
      [0, 1],
      [1, 2],
      [5, 4],
      [9, 1],
    ]);
    expect(addSparse([], [[3, 1]])).toEqual([[3, 1]]);
  });

  it('boundBindings keeps log fields small and plain', () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i]));
    const b = boundBindings({
      ...many,
      s: 'x'.repeat(5000),
    });
    expect(Object.keys(b)).toHaveLength(LOG_BOUNDS.keys + 1);
    expect(b.truncatedKeys).toBe(41 - LOG_BOUNDS.keys);
    const c = boundBindings({
      s: 'x'.repeat(5000),
      o: { deep: 'y'.repeat(5000) },
      e: new Error('bad'),
      n: 1n,
    });
    expect((c.s as string).length).toBe(LOG_BOUNDS.valueChars);
    expect((c.o as string).length).toBe(LOG_BOUNDS.valueChars);
    expect(c.e).toEqual({ message: 'bad' });
    expect(c.n).toBe('1');
  });

  it('dataPath is validated: worker (default) or main', () => {
    expect(configFrom({ nodeId: 'n', secret: SECRET }).dataPath).toBe('worker');
    expect(configFrom({ nodeId: 'n', secret: SECRET, dataPath: 'main' }).dataPath).toBe('main');
    expect(() => configFrom({ nodeId: 'n', secret: SECRET, dataPath: 'thread' })).toThrow(
      /dataPath = "thread" .*dataPath must be "worker" or "main"\. Fix: use worker/,
    );
  });
});
