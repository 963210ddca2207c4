/**
 * Sleeping on the completion queue, between two processes: the consumer (`event`: it sleeps as soon as its
 * ring is empty) must be woken by the CQ's wait fd for every write, whatever the moment it lands — during
 * the drain, between the drain and fi_trywait, after it, while another drain runs. The sender makes bursts of
 * random length separated by gaps of every size (one loop turn, 5/30/200 µs busy, 1/4 ms timers), so each of
 * those moments is hit thousands of times. A lost wake-up would leave a record for the 1 s safety poll, which
 * counts what it rescues: that count must be 0, and every record must arrive, checked byte by byte.
 * Providers without a wait fd (libfabric's shm) fall back to being woken by the sender, and say so.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, startPeer, startReceiver } from './fabric-helpers.js';

afterEach(killAll);

interface Wakeup {
  mode: string;
  note?: string;
  sleeps: number;
  wakeups: number;
  safetyRescues: number;
}
interface Done {
  next: number;
  delivered: number;
  bad: number;
  stats: { counters: { records: number }; wakeup: Wakeup };
}

async function stress(provider: string, count: number, burst: number) {
  const common = { linkId: 'wake', provider, count, minSize: 0, maxSize: 256, capacity: 1 << 20 };
  const { peer: rx, port } = await startReceiver({ ...common, idle: 'event' });
  const tx = startPeer('send', { ...common, port, gaps: true, burst });
  const sent = (await tx.waitFor((e) => e.ev === 'sent', 300_000, 'sender sent')) as unknown as {
    gapsMade: number[];
  };
  const done = (await rx.waitFor((e) => e.ev === 'done', 120_000, 'receiver done')) as unknown as Done;
  return { done, gaps: sent.gapsMade };
}

describe('a sleeping fabric consumer is woken through the completion queue', () => {
  for (const provider of ['net', 'tcp;ofi_rxm']) {
    it(`${provider}: 1,000,000 records with gaps of every size, none lost, none left for the safety poll`, async () => {
      const { done, gaps } = await stress(provider, 1_000_000, 100);
      expect(done).toMatchObject({ next: 1_000_000, delivered: 1_000_000, bad: 0 });
      expect(done.stats.counters.records).toBe(1_000_000);
      const w = done.stats.wakeup;
      expect(w.mode).toBe('cq');
      expect(w.safetyRescues).toBe(0);
      // Every gap class was exercised, and the consumer really slept and was woken with work, thousands of times.
      for (const n of gaps) expect(n).toBeGreaterThan(500);
      expect(w.sleeps).toBeGreaterThan(2000);
      expect(w.wakeups).toBeGreaterThan(2000);
    }, 400_000);
  }

  it('shm provider (no wait fd): falls back to the sender waking it, says why, still delivers all', async () => {
    const { done } = await stress('shm', 100_000, 50);
    expect(done).toMatchObject({ next: 100_000, delivered: 100_000, bad: 0 });
    const w = done.stats.wakeup;
    expect(w.mode).toBe('peer');
    expect(w.note).toMatch(/shm has no completion-queue wait fd.*woken by its sender/);
    expect(w.safetyRescues).toBe(0);
  }, 300_000);
});
