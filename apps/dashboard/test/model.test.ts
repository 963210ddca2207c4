/**
 * The live model (src/server/model): the change-set API the live fan-out consumes (`Fleet.takeChanges()`:
 * nothing reported twice, nothing lost between two takes), and the one history query over memory and
 * roll-ups.
 */
import { linkKey } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hello, type LinkSpec, sample, startHub, type TestHub } from './helpers.js';

const spec = (id: string, peer: string): LinkSpec => ({ id, peer, records: 10, bytes: 640 });

describe('Fleet.takeChanges', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => {
    await hub.close();
  });

  it('reports the nodes and link ends a sample touched, once, and link ends that went away', () => {
    const f = hub.app.fleet;
    const t = hub.clock.t;
    f.takeChanges();
    f.hello(hello('m1'), 'tok');
    f.applySample('m1', sample(1, t, [spec('a', 'm2'), spec('b', 'm2')]));
    const first = f.takeChanges();
    expect([...first.nodes]).toEqual(['m1']);
    expect([...first.links].sort()).toEqual([linkKey('m1', 'a'), linkKey('m1', 'b')]);
    expect(first.removedLinks.size).toBe(0);

    // Taken: the next record starts empty.
    const empty = f.takeChanges();
    expect(empty.nodes.size + empty.links.size + empty.removedLinks.size).toBe(0);

    // The agent stops reporting link b: removed, and not "changed".
    f.applySample('m1', sample(2, t + 1000, [spec('a', 'm2')]));
    const second = f.takeChanges();
    expect([...second.links]).toEqual([linkKey('m1', 'a')]);
    expect([...second.removedLinks]).toEqual([linkKey('m1', 'b')]);

    // It comes back before the next take: changed again, no longer removed.
    f.applySample('m1', sample(3, t + 2000, [spec('a', 'm2')]));
    f.applySample('m1', sample(4, t + 3000, [spec('a', 'm2'), spec('b', 'm2')]));
    const third = f.takeChanges();
    expect(third.links.has(linkKey('m1', 'b'))).toBe(true);
    expect(third.removedLinks.size).toBe(0);
  });

  it('a node going silent is a change of the node and of each of its link ends', () => {
    const f = hub.app.fleet;
    f.applySample('m1', sample(5, hub.clock.t, [spec('a', 'm2'), spec('b', 'm2')]));
    f.refreshFreshness(hub.clock.t);
    expect(f.nodes.get('m1')!.freshness).toBe('fresh');
    f.takeChanges();
    hub.clock.t += 60_000;
    f.refreshFreshness(hub.clock.t);
    const c = f.takeChanges();
    expect(c.nodes.has('m1')).toBe(true);
    expect(c.links.has(linkKey('m1', 'a'))).toBe(true);
    expect(f.nodes.get('m1')!.freshness).toBe('offline');
  });
});

describe('history: one query for link ends and hosts, memory and roll-ups agree', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => {
    await hub.close();
  });

  it('per-minute means from the 1 s rings equal those from the 1-minute roll-ups', () => {
    const f = hub.app.fleet;
    const start = Math.floor(hub.clock.t / 60_000) * 60_000 - 10 * 60_000;
    f.hello(hello('h1'), 'tok');
    for (let i = 0; i < 180; i++) {
      hub.clock.t = start + i * 1000 + 500;
      const s = sample(i + 1, start + i * 1000, [
        { id: 'l0', peer: 'h2', records: i * 100, bytes: i * 6400 },
      ]);
      s.host = { ...s.host, cpuPercent: (i * 7) % 50, eventLoopLagMs: i % 3 };
      f.applySample('h1', s);
    }
    const to = start + 180_000;
    const mem = { node: f.nodeHistory('h1', start, to, 3), link: f.linkHistory('h1~l0', start, to, 3) };
    expect(mem.node.resolutionS).toBe(1);
    expect(mem.node.points).toHaveLength(3);
    f.flush(true);
    // Far enough later that the range is older than the memory window: served from rollup_1m / host_1m.
    hub.clock.t = to + 3600_000;
    const rolled = { node: f.nodeHistory('h1', start, to, 3), link: f.linkHistory('h1~l0', start, to, 3) };
    expect(rolled.node.resolutionS).toBe(60);
    expect(rolled.link.resolutionS).toBe(60);
    expect(rolled.node.points.map((p) => p.ts)).toEqual(mem.node.points.map((p) => p.ts));
    for (let m = 0; m < 3; m++) {
      const a = mem.node.points[m]!;
      const b = rolled.node.points[m]!;
      expect(b.cpuPercent).toBeCloseTo(a.cpuPercent!, 4);
      expect(b.eventLoopLagMs).toBeCloseTo(a.eventLoopLagMs!, 4);
      // 100 records a second on the link, whichever source.
      expect(rolled.link.points[m]!.recordsPerS).toBeCloseTo(100, 1);
    }
    // The first minute's mean CPU, worked out by hand.
    const want = Array.from({ length: 60 }, (_, i) => (i * 7) % 50).reduce((x, y) => x + y, 0) / 60;
    expect(rolled.node.points[0]!.cpuPercent).toBeCloseTo(want, 6);
  });
});
