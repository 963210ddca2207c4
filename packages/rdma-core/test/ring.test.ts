/**
 * The ring protocol in one process (both ends in this process, a real shm ring): arithmetic, wrap and padding,
 * full ring, zero-copy claims, header validation, probes and batched polling.
 */
import { join } from 'node:path';
import { LinkCountersSchema, SparseBucketsSchema } from '@rdmaq/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Listener, listen, type Receiver, type Sender } from '../src/index.js';
import { removeDir, shmFiles, tempDir, uniqueLinkId } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function pair(capacity = 65_536): Promise<{ l: Listener; rx: Receiver; tx: Sender; linkId: string }> {
  const dir = tempDir('rdmaq-ring-');
  cleanups.push(() => removeDir(dir));
  const l = await listen({ socketPath: join(dir, 's.sock'), capacity });
  cleanups.push(() => l.close());
  const linkId = uniqueLinkId('ring');
  const rx = l.accept(linkId);
  const tx = await connect({ linkId, socketPath: l.socketPath });
  cleanups.push(() => tx.close());
  return { l, rx, tx, linkId };
}

function drain(rx: Receiver): Array<{ seq: number; data: Buffer }> {
  const out: Array<{ seq: number; data: Buffer }> = [];
  while (
    rx.poll(
      (buf, off, len, seq) => out.push({ seq, data: Buffer.from(buf.subarray(off, off + len)) }),
      1000,
    ) > 0
  ) {}
  return out;
}

describe('ring protocol', () => {
  it('delivers records in order with sequences from 1 and exact payloads', async () => {
    const { rx, tx } = await pair();
    for (let i = 0; i < 100; i++) expect(tx.send(Buffer.from(`record ${i}`))).toBe(true);
    const got = drain(rx);
    expect(got.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(got.map((r) => r.data.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `record ${i}`));
    expect(rx.nextSeq).toBe(101);
    const s = rx.stats();
    expect(s.counters.records).toBe(100);
    expect(s.counters.bytes).toBe(got.reduce((a, r) => a + r.data.length, 0));
    expect(s.gauges.occupancyBytes).toBe(0);
    expect(s.gauges.capacityBytes).toBe(65_536);
    expect(s.latency.queue.reduce((a, [, n]) => a + n, 0)).toBe(100);
    // The shape the agent forwards to the hub unchanged.
    expect(() => LinkCountersSchema.parse(s.counters)).not.toThrow();
    expect(() => SparseBucketsSchema.parse(s.latency.queue)).not.toThrow();
    expect(s).toMatchObject({
      linkId: expect.any(String),
      role: 'receiver',
      transport: 'shm',
      provider: 'shm',
      state: 'up',
      epoch: 1,
    });
  });

  it('pads at the wrap (PADDING record) and never splits a record across the end', async () => {
    const { rx, tx } = await pair();
    // 10,000-byte payloads = 10,024-byte records: 6 fit a lap, the 5,392 bytes left become PADDING.
    const payload = (i: number) => Buffer.alloc(10_000, i & 0xff);
    const seen: number[] = [];
    for (let i = 0; i < 40; i++) {
      expect(tx.send(payload(i))).toBe(true);
      rx.poll((buf, off, len, seq) => {
        expect(len).toBe(10_000);
        expect(off + len).toBeLessThanOrEqual(65_536);
        expect(buf[off]).toBe((seq - 1) & 0xff);
        expect(buf[off + len - 1]).toBe((seq - 1) & 0xff);
        seen.push(seq);
      });
    }
    expect(seen).toHaveLength(40);
    expect(rx.stats().counters.wraps).toBe(6); // records 7, 13, 19, 25, 31, 37 start a lap
    expect(tx.stats().counters.wraps).toBe(6);
  });

  it('skips fewer than 24 bytes at the end implicitly, on both sides', async () => {
    const { rx, tx } = await pair();
    // 16-byte payloads = 40-byte records: 1,638 per lap, leaving 16 bytes — too few for a PADDING header.
    const seqs: number[] = [];
    for (let i = 0; i < 5000; i++) {
      expect(tx.send(Buffer.alloc(16, i & 0xff))).toBe(true);
      if (i % 100 === 99) rx.poll((buf, off, _len, seq) => seqs.push(seq + 0 * buf[off]!), 1000);
    }
    rx.poll((_b, _o, _l, seq) => seqs.push(seq), 1000);
    expect(seqs).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
    expect(rx.stats().counters.wraps).toBe(3);
  });

  it('a full ring is back-pressure: send returns false, nothing is overwritten, whenWritable resolves', async () => {
    const { rx, tx } = await pair();
    const rec = Buffer.alloc(1000, 1); // 1,024-byte records: exactly 64 per 64 KiB ring
    let n = 0;
    while (tx.send(rec)) n++;
    expect(n).toBe(64);
    expect(tx.send(rec)).toBe(false);
    const s = tx.stats();
    expect(s.counters.backpressure).toBe(1); // one episode, however many refused attempts
    expect(s.gauges.occupancyBytes).toBe(65_536);
    expect(rx.stats().gauges.peakOccupancyBytes).toBe(65_536);
    let resolved = false;
    const w = tx.whenWritable(1000).then(() => {
      resolved = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(resolved).toBe(false);
    expect(rx.poll(() => {}, 1)).toBe(1); // frees one record: the FIFO wakes the waiting writer
    await w;
    expect(resolved).toBe(true);
    expect(tx.send(rec)).toBe(true);
    expect(drain(rx).map((r) => r.seq)).toEqual(Array.from({ length: 64 }, (_, i) => i + 2));
  });

  it('zero-copy claim/commit, shrinking commit and batched claims', async () => {
    const { rx, tx } = await pair();
    const off = tx.claim(100);
    expect(off).toBeGreaterThanOrEqual(24);
    tx.buffer.write('hello', off);
    tx.commit(5);
    const n = tx.claimBatch(10, 8);
    expect(n).toBe(10);
    for (let i = 0; i < n; i++) tx.buffer.writeDoubleLE(i, tx.batchOffsets[i]!);
    tx.commit();
    const got = drain(rx);
    expect(got[0]!.data.toString()).toBe('hello');
    expect(got.slice(1).map((r) => r.data.readDoubleLE(0))).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(tx.stats().counters.records).toBe(11);
    expect(tx.stats().counters.bytes).toBe(5 + 80);
  });

  it('claim larger than the ring allows is ERR_RDMAQ_TOO_LARGE; a full ring claims -1', async () => {
    const { tx } = await pair();
    expect(tx.maxPayload).toBe(32_768 - 24);
    expect(() => tx.claim(65_536)).toThrow(expect.objectContaining({ code: 'ERR_RDMAQ_TOO_LARGE' }));
    expect(() => tx.send(Buffer.alloc(40_000))).toThrow(/does not fit a ring of 65536 bytes/);
    expect(tx.claim(tx.maxPayload)).toBeGreaterThan(0);
    tx.commit();
    expect(tx.claim(tx.maxPayload)).toBeGreaterThan(0);
    tx.commit();
    expect(tx.claim(1)).toBe(-1);
  });

  it('pollBatch hands out [offset, length, seq] views released by the next call', async () => {
    const { rx, tx } = await pair();
    for (let i = 0; i < 20; i++) tx.send(Buffer.from([i, i, i]));
    const out = new Float64Array(3 * 8);
    expect(rx.pollBatch(out)).toBe(8);
    expect(rx.buffer[out[0]!]).toBe(0);
    expect([out[1], out[2], out[23]]).toEqual([3, 1, 8]);
    expect(rx.stats().gauges.occupancyBytes).toBe(20 * 32); // not yet released
    expect(rx.pollBatch(out)).toBe(8);
    expect(rx.stats().gauges.occupancyBytes).toBe(12 * 32);
    expect(rx.pollBatch(out)).toBe(4);
    rx.release();
    expect(rx.stats().gauges.occupancyBytes).toBe(0);
  });

  it('probe: a PROBE record crosses the ring and the reply comes back over the control connection', async () => {
    const { rx, tx } = await pair();
    rx.start(() => {});
    const rtt = await tx.probe();
    expect(rtt).toBeGreaterThan(0);
    const s = tx.stats();
    expect(s.latency.rtt.reduce((a, [, n]) => a + n, 0)).toBe(1);
    expect(s.role).toBe('sender');
    expect(s.state).toBe('up');
    expect(s.epoch).toBe(1);
    rx.stop();
  });

  it('a handler that throws leaves its record for the next poll', async () => {
    const { rx, tx } = await pair();
    tx.send(Buffer.from('a'));
    tx.send(Buffer.from('b'));
    const seen: number[] = [];
    expect(() =>
      rx.poll((_b, _o, _l, seq) => {
        if (seq === 2 && seen.length === 1) throw new Error('boom');
        seen.push(seq);
      }),
    ).toThrow('boom');
    rx.poll((_b, _o, _l, seq) => seen.push(seq));
    expect(seen).toEqual([1, 2]);
  });

  it('a sender that reconnects onto a fresh ring resends what the old one had not released', async () => {
    const { l, rx, tx, linkId } = await pair();
    for (let i = 0; i < 10; i++) tx.send(Buffer.from(`r${i}`));
    expect(rx.poll(() => {}, 4)).toBe(4); // 1..4 delivered and released
    const up = new Promise<void>((resolve) =>
      tx.on('state', (s) => {
        if (s.state === 'up') resolve();
      }),
    );
    await rx.close(); // removes the ring: records 5..10 only exist in the sender's old mapping now
    const rx2 = l.accept(linkId, { resumeFrom: 5 }); // a fresh ring that starts at sequence 5
    await up;
    const got: string[] = [];
    const seqs: number[] = [];
    rx2.poll((buf, off, len, seq) => {
      got.push(buf.toString('utf8', off, off + len));
      seqs.push(seq);
    });
    expect(seqs).toEqual([5, 6, 7, 8, 9, 10]);
    expect(got).toEqual(['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
    expect(tx.stats().counters.resends).toBe(6);
    expect(tx.stats().counters.reconnects).toBe(1);
    tx.send(Buffer.from('next'));
    rx2.poll((_b, _o, _l, seq) => seqs.push(seq));
    expect(seqs.at(-1)).toBe(11);
  });

  it('start() with each idle strategy consumes records sent later', async () => {
    for (const idle of ['busy-spin', 'backoff', 'event'] as const) {
      const dir = tempDir('rdmaq-idle-');
      const l = await listen({ socketPath: join(dir, 's.sock'), capacity: 65_536 });
      const linkId = uniqueLinkId(idle);
      const rx = l.accept(linkId, { idle });
      const tx = await connect({ linkId, socketPath: l.socketPath });
      const seqs: number[] = [];
      const all = new Promise<void>((resolve) =>
        rx.start((_b, _o, _l, seq) => {
          seqs.push(seq);
          if (seq === 2000) resolve();
        }),
      );
      for (let i = 0; i < 2000; i++) {
        while (!tx.send(Buffer.alloc(100))) await tx.whenWritable(100);
        if (i % 300 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      await all;
      expect(seqs).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
      await tx.close();
      await l.close();
      removeDir(dir);
      expect(shmFiles(linkId)).toEqual([]);
    }
  });
});
