/**
 * Two processes over net and tcp;ofi_rxm: every record checked (size and CRC-32 derived from its sequence),
 * in order, complete, none duplicated: on each provider 1,000,000 records of 0–64 KiB (≈ 32 GB; ~20 s here).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, startPeer, startReceiver } from './fabric-helpers.js';

afterEach(killAll);

type Done = { first: number; next: number; delivered: number; bad: number; bytes: number };
type Stats = { counters: { records: number; backpressure: number; resends: number; reconnects: number } };

async function stream(provider: string, count: number, maxSize: number, extra: Record<string, unknown> = {}) {
  const common = { linkId: 'stream', provider, count, minSize: 0, maxSize, capacity: extra.capacity };
  const { peer: rx, port } = await startReceiver({ ...common, ...extra });
  const tx = startPeer('send', { ...common, port });
  const done = (await rx.waitFor((e) => e.ev === 'done', 450_000, 'receiver done')) as unknown as Done & {
    stats: Stats;
  };
  const sent = (await tx.waitFor((e) => e.ev === 'done', 60_000, 'sender done')) as unknown as {
    drained: boolean;
    stats: Stats;
  };
  return { done, sent };
}

describe('fabric link between two processes', () => {
  for (const provider of ['net', 'tcp;ofi_rxm']) {
    it(`${provider}: 1,000,000 records of random size 0–64 KiB arrive in order, complete, none duplicated`, async () => {
      const { done, sent } = await stream(provider, 1_000_000, 65_536);
      expect(done).toMatchObject({ first: 0, next: 1_000_000, delivered: 1_000_000, bad: 0 });
      expect(done.bytes).toBeGreaterThan(1_000_000 * 30_000); // really ~32 KiB on average: ~32 GB
      expect(done.stats.counters.records).toBe(1_000_000);
      expect(sent.drained).toBe(true);
      expect(sent.stats.counters).toMatchObject({ records: 1_000_000, resends: 0, reconnects: 0 });
    }, 600_000);
  }

  it('a slow consumer gives back-pressure to the sender, nothing is lost', async () => {
    // 1 ms of work every 200 records on a 256 KiB ring: the sender must wait for credit.
    const { done, sent } = await stream('net', 40_000, 4096, {
      slowEvery: 200,
      slowMs: 1,
      capacity: 1 << 18,
    });
    expect(done).toMatchObject({ first: 0, next: 40_000, delivered: 40_000, bad: 0 });
    expect(sent.stats.counters.backpressure).toBeGreaterThan(0);
  }, 200_000);
});
