/**
 * A fabric link between two network namespaces (`rdmaq-…`, created and removed here) joined by a veth pair,
 * and the veth cut for 5 s mid-stream: the control connection's heartbeat declares the peer dead, the sender
 * reconnects once the path is back and resends from the receiver's next expected sequence — nothing lost,
 * nothing duplicated. Needs root (ip netns); skipped with a message otherwise.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isRoot, killAll, makeNetns, sh, startPeer, startReceiver } from './fabric-helpers.js';

const cleanups: Array<() => void> = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanups.splice(0)) c();
});

const root = isRoot();
if (!root) console.warn('fabric-netns: skipped — creating network namespaces (ip netns) needs root');

type Done = { first: number; next: number; delivered: number; bad: number };

/**
 * A throttled stream from namespace a to b (receiver in b), returned once `warm` records arrived, so the
 * stream is still running when a fault comes and after it ends.
 */
async function streamAcross(
  tag: string,
  opts: { linkId: string; provider: string; count: number; maxSize: number; capacity?: number },
  warm: number,
  throttleEvery = 100,
) {
  const ns = makeNetns(tag);
  cleanups.push(ns.remove);
  const rx = await startReceiver({ ...opts, host: ns.ipB }, ns.b);
  const tx = startPeer('send', { ...opts, host: ns.ipB, port: rx.port, throttleEvery, throttleMs: 2 }, ns.a);
  await rx.peer.waitFor(
    (e) => e.ev === 'progress' && (e.next as number) > warm,
    60_000,
    'progress before the fault',
  );
  return { ns, rx, tx };
}

/** The receiver's last reported next sequence. */
function lastNext(p: { events: Array<Record<string, unknown>> }): number {
  for (let i = p.events.length - 1; i >= 0; i--) {
    const e = p.events[i]!;
    if (e.ev === 'progress') return e.next as number;
  }
  return 0;
}

describe.skipIf(!root).each(['net', 'tcp;ofi_rxm'])(
  'fabric link across network namespaces (veth) over %s',
  (provider) => {
    it('veth cut for 5 s mid-stream: reconnects, nothing lost', async () => {
      const count = 150_000;
      const { ns, rx, tx } = await streamAcross(
        provider === 'net' ? 'c' : 'd',
        { linkId: 'veth', provider, count, maxSize: 4096 },
        10_000,
      );
      sh('ip', ['-n', ns.a, 'link', 'set', ns.vethA, 'down']);
      await new Promise((r) => setTimeout(r, 5000));
      sh('ip', ['-n', ns.a, 'link', 'set', ns.vethA, 'up']);
      const done = (await rx.peer.waitFor(
        (e) => e.ev === 'done',
        120_000,
        'receiver done',
      )) as unknown as Done;
      expect(done).toMatchObject({ first: 0, next: count, delivered: count, bad: 0 });
      const sent = await tx.waitFor((e) => e.ev === 'done', 60_000, 'sender done');
      const c = (sent.stats as { counters: { reconnects: number; records: number } }).counters;
      expect(c.records).toBe(count);
      expect(c.reconnects).toBeGreaterThanOrEqual(1); // the 5 s cut outlived the 2.5 s heartbeat timeout
      expect(tx.events.some((e) => e.ev === 'state' && e.state === 'degraded')).toBe(true);
    }, 200_000);

    it('1,000,000 records of random size 0–64 KiB between the namespaces: complete, in order, once', async () => {
      const ns = makeNetns(provider === 'net' ? 'r' : 's');
      cleanups.push(ns.remove);
      const count = 1_000_000;
      const common = { linkId: 'veth-stream', provider, count, minSize: 0, maxSize: 65_536 };
      const rx = await startReceiver({ ...common, host: ns.ipB }, ns.b);
      startPeer('send', { ...common, host: ns.ipB, port: rx.port }, ns.a);
      const done = (await rx.peer.waitFor(
        (e) => e.ev === 'done',
        450_000,
        'receiver done',
      )) as unknown as Done;
      expect(done).toMatchObject({ first: 0, next: count, delivered: count, bad: 0 });
    }, 600_000);
  },
);

/**
 * Faults that take minutes, on `net` only (the path under tcp;ofi_rxm is the same kernel TCP): a veth cut of
 * 3 minutes mid-stream (TCP retransmissions under the provider back off for minutes; the sender's ring is full
 * long before the path returns) and a link throttled by `tc tbf` (no netem in this kernel) mid-stream. The
 * receiver checks every record (sequence, size, CRC of the bytes): nothing lost, nothing duplicated.
 */
describe.skipIf(!root)('long faults across network namespaces (net)', () => {
  const provider = 'net';

  it('veth cut for 3 minutes mid-stream: recovers by itself within 30 s of the path returning, nothing lost', async () => {
    const count = 200_000;
    const { ns, rx, tx } = await streamAcross(
      'm',
      { linkId: 'cut3m', provider, count, maxSize: 4096, capacity: 1 << 20 },
      10_000,
    );
    sh('ip', ['-n', ns.a, 'link', 'set', ns.vethA, 'down']);
    await new Promise((r) => setTimeout(r, 180_000));
    const atCut = lastNext(rx.peer);
    sh('ip', ['-n', ns.a, 'link', 'set', ns.vethA, 'up']);
    const back = Date.now();
    await rx.peer.waitFor(
      (e) => e.ev === 'progress' && (e.next as number) > atCut,
      30_000,
      'records moving again within 30 s of the path returning',
    );
    console.log(
      `3 min cut: records moved again ${((Date.now() - back) / 1000).toFixed(1)} s after the path returned`,
    );
    const done = (await rx.peer.waitFor((e) => e.ev === 'done', 180_000, 'receiver done')) as unknown as Done;
    expect(done).toMatchObject({ first: 0, next: count, delivered: count, bad: 0 });
    const sent = await tx.waitFor((e) => e.ev === 'done', 60_000, 'sender done');
    expect((sent.stats as { counters: { records: number } }).counters.records).toBe(count);
  }, 420_000);

  it('a link throttled by tc tbf mid-stream: slower, never broken, nothing lost', async () => {
    const count = 60_000;
    const { ns, rx, tx } = await streamAcross(
      't',
      { linkId: 'tbf', provider, count, maxSize: 4096 },
      5_000,
      50,
    );
    // 4 Mbit/s with 200 ms of queue on the sender's side: well below the offered ~100 Mbit/s.
    sh('tc', [
      '-n',
      ns.a,
      'qdisc',
      'add',
      'dev',
      ns.vethA,
      'root',
      'tbf',
      'rate',
      '4mbit',
      'burst',
      '16kb',
      'latency',
      '200ms',
    ]);
    const before = lastNext(rx.peer);
    await new Promise((r) => setTimeout(r, 15_000));
    const during = lastNext(rx.peer) - before;
    sh('tc', ['-n', ns.a, 'qdisc', 'del', 'dev', ns.vethA, 'root']);
    expect(during).toBeGreaterThan(0); // slower, but moving
    const done = (await rx.peer.waitFor((e) => e.ev === 'done', 180_000, 'receiver done')) as unknown as Done;
    expect(done).toMatchObject({ first: 0, next: count, delivered: count, bad: 0 });
    expect(tx.events.some((e) => e.ev === 'state' && e.state === 'degraded')).toBe(false); // never lost
  }, 300_000);
});
