/**
 * "Up, but records wait and none move" — the link state `stalled`, on both ends: the rule itself (clock
 * driven), a consumer that stops (both ends say so, nothing reconnects, it moves again when the consumer
 * resumes), and a wedged fabric path (records never reach the receiver while the control connection lives:
 * both ends say so, then the sender reconnects on a fresh endpoint and resends; nothing lost or duplicated).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { connectFabric, type FabricReceiver, type FabricSender, listenFabric } from '../src/fabric/index.js';
import { readBeat, StallWatch } from '../src/fabric/stall.js';
import type { StateChange } from '../src/types.js';
import { SECRET } from './fabric-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('StallWatch (the rule, on a driven clock)', () => {
  it('stalled only after afterMs of waiting without progress; moving again at the first progress', () => {
    const w = new StallWatch(5000);
    w.reset(0);
    expect(w.update(0, true, 10)).toBeUndefined();
    expect(w.update(4999, true, 10)).toBeUndefined();
    expect(w.update(5000, true, 10)).toBe('stalled');
    expect(w.stalled).toBe(true);
    expect(w.stalledFor(8000)).toBe(3000);
    expect(w.update(6000, true, 10)).toBeUndefined(); // said once
    expect(w.update(6500, true, 11)).toBe('moving');
    expect(w.stalled).toBe(false);
    expect(w.stalledFor(9000)).toBe(0);
  });

  it('progress restarts the wait; nothing waiting is never stalled; reset forgets', () => {
    const w = new StallWatch(1000);
    w.reset(0);
    w.update(0, true, 1);
    w.update(900, true, 2); // moved at 900
    expect(w.update(1800, true, 2)).toBeUndefined();
    expect(w.update(1900, true, 2)).toBe('stalled');
    w.reset(2000);
    expect(w.stalled).toBe(false);
    expect(w.update(10_000, false, 2)).toBeUndefined(); // idle link: nothing waits
    expect(w.update(20_000, false, 2)).toBeUndefined();
    expect(w.update(20_500, true, 2)).toBeUndefined(); // waiting starts now
    expect(w.update(21_500, true, 2)).toBe('stalled');
  });

  it("a peer's heartbeat fields are read only when sane", () => {
    expect(readBeat({ t: 'hb', next: 5, queued: 0 })).toEqual({ next: 5, queued: 0 });
    expect(readBeat({ t: 'hb', next: -1, queued: 1.5 })).toEqual({});
    expect(readBeat({ t: 'hb', next: '7', queued: 2 ** 60 })).toEqual({});
    expect(readBeat({ t: 'hb' })).toEqual({});
  });
});

function states(e: FabricSender | FabricReceiver): StateChange[] {
  const out: StateChange[] = [];
  e.on('state', (s: StateChange) => out.push(s));
  return out;
}

describe.each(['net', 'tcp;ofi_rxm'])('a stalled link over %s', (provider) => {
  async function pair(): Promise<{ rx: FabricReceiver; tx: FabricSender }> {
    const l = await listenFabric({ port: 0, host: '127.0.0.1', secret: SECRET, heartbeatMs: 50 });
    l.on('error', () => {});
    cleanups.push(() => l.close());
    const rx = l.accept('stall', { capacity: 1 << 16, idle: 'event', stallAfterMs: 400 });
    const tx = await connectFabric({
      linkId: 'stall',
      host: '127.0.0.1',
      port: l.port,
      secret: SECRET,
      provider,
      capacity: 1 << 16,
      heartbeatMs: 50,
      stallAfterMs: 400,
      recoverAfterMs: 600,
    });
    cleanups.push(() => tx.close());
    return { rx, tx };
  }

  it('a consumer that stops: both ends say stalled (records in the ring), nothing reconnects; it moves again', async () => {
    const { rx, tx } = await pair();
    const got: number[] = [];
    rx.start((_b, _o, _l, seq) => {
      got.push(seq);
    });
    const txStates = states(tx);
    const rxStates = states(rx);
    tx.send(Buffer.alloc(100));
    await waitFor('the first record', () => got.length === 1);
    rx.stop();
    let sent = 1;
    while (tx.send(Buffer.alloc(1000))) sent++; // until the ring is full
    const txStall = await waitFor('sender stalled', () => txStates.find((s) => s.state === 'stalled'));
    const rxStall = await waitFor('receiver stalled', () => rxStates.find((s) => s.state === 'stalled'));
    expect(txStall.code).toBe('ERR_RDMAQ_STALLED');
    expect(txStall.reason).toMatch(/holds \d+ bytes it does not consume/);
    expect(rxStall.reason).toMatch(/not consumed .*the consumer is stopped/);
    expect(tx.state).toBe('stalled');
    rx.start((_b, _o, _l, seq) => {
      got.push(seq);
    });
    await waitFor('all records', () => got.length === sent);
    await waitFor('sender up again', () => tx.state === 'up');
    await waitFor('receiver up again', () => rx.state === 'up');
    expect(got).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(tx.stats().counters.reconnects).toBe(0); // a slow consumer is not a broken path
  }, 30_000);

  it('a wedged fabric path: both ends say stalled, the sender moves to a fresh endpoint and resends', async () => {
    const { rx, tx } = await pair();
    const got: number[] = [];
    rx.start((_b, _o, _l, seq) => {
      got.push(seq);
    });
    const txStates = states(tx);
    const rxStates = states(rx);
    for (let i = 0; i < 10; i++) tx.send(Buffer.alloc(64));
    await waitFor('the first records', () => got.length === 10);
    const before = tx.info?.address.toString('hex');
    tx.nativeHandle.forgeWedge(); // this connection posts nothing more; heartbeats go on
    for (let i = 0; i < 50; i++) tx.send(Buffer.alloc(64));
    const txStall = await waitFor('sender stalled', () => txStates.find((s) => s.state === 'stalled'));
    const rxStall = await waitFor('receiver stalled', () => rxStates.find((s) => s.state === 'stalled'));
    expect(txStall.reason).toMatch(/none reached the receiver .*fabric path blocked/);
    expect(rxStall.reason).toMatch(/wait at the sender: none arrived/);
    await waitFor('every record', () => got.length === 60, 20_000);
    expect(got).toEqual(Array.from({ length: 60 }, (_, i) => i));
    const c = tx.stats().counters;
    expect(c.reconnects).toBe(1);
    expect(c.errors.stalled).toBe(1);
    expect(tx.info?.address.toString('hex')).not.toBe(before); // a new endpoint, so a new provider connection
    await waitFor('sender up', () => tx.state === 'up');
    await waitFor('receiver up', () => rx.state === 'up');
  }, 30_000);
});
