import { describe, expect, it } from 'vitest';
import {
  applyLayoutDelta,
  END_STATE_BYTES,
  END_STATES,
  fromBase64,
  fromLogByte,
  layoutFromSnapshot,
  logByte,
  OverviewEncoder,
  type OverviewEndInput,
  type OverviewLayout,
  OverviewLayoutDeltaSchema,
  OverviewLayoutSnapshotSchema,
  type OverviewNodeInput,
  occupancyByte,
  parseTableView,
  tableView,
  toBase64,
} from '../src/overview.js';

/** Deterministic PRNG so a failure can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Fleet {
  nodes: Map<string, OverviewNodeInput>;
  ends: Map<string, OverviewEndInput>;
}

function randomFleet(rnd: () => number, hosts: number, endsPerHost: number): Fleet {
  const f: Fleet = { nodes: new Map(), ends: new Map() };
  for (let h = 0; h < hosts; h++) addNode(f, rnd, `n${h}`);
  for (let h = 0; h < hosts; h++)
    for (let e = 0; e < endsPerHost; e++) addEnd(f, rnd, `n${h}`, `l${e}`, hosts);
  return f;
}

function addNode(f: Fleet, rnd: () => number, id: string): void {
  f.nodes.set(id, {
    id,
    hostname: `${id}.example`,
    labels: rnd() < 0.3 ? { rack: `r${Math.floor(rnd() * 4)}` } : undefined,
    health: 'ok',
    connected: true,
    linkCount: 0,
    linksUp: 0,
    linksDownByPeer: 0,
    fresh: true,
    lastDataAt: 1000,
  });
}

function addEnd(f: Fleet, rnd: () => number, node: string, id: string, hosts: number): void {
  f.ends.set(`${node}~${id}`, {
    key: `${node}~${id}`,
    id,
    node,
    peer: rnd() < 0.1 ? `10.0.0.${Math.floor(rnd() * 9)}:7600` : `n${Math.floor(rnd() * hosts)}`,
    peerAddress: undefined,
    direction: rnd() < 0.5 ? 'tx' : 'rx',
    transport: 'fabric',
    provider: 'tcp;ofi_rxm',
    capacityBytes: rnd() < 0.05 ? 0 : 1 << 20,
    app: rnd() < 0.1 ? 'allreduce' : undefined,
    state: 'up',
    freshness: 'fresh',
    stuck: false,
    occupancyBytes: Math.floor(rnd() * (1 << 20)),
    bytesPerS: rnd() * 1e9,
    p99Ns: rnd() < 0.1 ? null : rnd() * 1e6,
    blame: undefined,
  });
}

/** One tick of fleet life: figures move, states flip, entries come and (rarely) go. */
function mutate(f: Fleet, rnd: () => number, tick: number): void {
  for (const e of f.ends.values()) {
    if (rnd() < 0.3) e.occupancyBytes = Math.floor(rnd() * (1 << 20));
    if (rnd() < 0.2) e.bytesPerS = rnd() < 0.1 ? 0 : rnd() * 1e9;
    if (rnd() < 0.05) e.state = END_STATES[Math.floor(rnd() * END_STATES.length)]!;
    if (rnd() < 0.03) e.blame = rnd() < 0.5 ? undefined : e.peer;
    if (rnd() < 0.02) e.stuck = !e.stuck;
    if (rnd() < 0.01) e.peerAddress = rnd() < 0.5 ? undefined : '10.9.9.9:1';
  }
  for (const n of f.nodes.values()) {
    if (rnd() < 0.05) {
      n.fresh = !n.fresh;
      n.health = n.fresh ? 'ok' : 'stale';
      for (const e of f.ends.values()) if (e.node === n.id) e.freshness = n.fresh ? 'fresh' : 'stale';
    }
    n.lastDataAt = 1000 + tick; // moves every tick, sent only while the node is not fresh
    if (rnd() < 0.02) n.labels = { rack: `r${tick}` };
  }
  if (rnd() < 0.2) {
    const id = `x${tick}`;
    addNode(f, rnd, id);
    addEnd(f, rnd, id, 'l0', f.nodes.size);
  }
  if (rnd() < 0.15) addEnd(f, rnd, `n0`, `t${tick}`, f.nodes.size);
  if (rnd() < 0.05) {
    const keys = [...f.ends.keys()];
    f.ends.delete(keys[Math.floor(rnd() * keys.length)]!);
  }
  if (rnd() < 0.02) {
    // A node leaves with its ends.
    const ids = [...f.nodes.keys()];
    const gone = ids[Math.floor(rnd() * ids.length)]!;
    f.nodes.delete(gone);
    for (const [k, e] of f.ends) if (e.node === gone) f.ends.delete(k);
  }
}

/** The meaning of a layout, independent of the order entries were laid out in. */
function canonical(l: OverviewLayout) {
  const nodes: Record<string, unknown> = {};
  l.nodes.forEach((n, i) => {
    nodes[n[0]] = [n, l.nodeStates[i]];
  });
  const ends: Record<string, unknown> = {};
  l.ends.forEach((e, i) => {
    const node = l.nodes[e[1]]![0];
    const peer = typeof e[2] === 'number' ? `node:${l.nodes[e[2]]![0]}` : e[2];
    const bytes = [...l.endStates.subarray(i * END_STATE_BYTES, (i + 1) * END_STATE_BYTES)];
    ends[`${node}~${e[0]}`] = [{ ...e, 1: node, 2: peer }, bytes, l.blame.get(i) ?? null];
  });
  return { nodes, ends };
}

function freshLayout(f: Fleet): OverviewLayout {
  const enc = new OverviewEncoder();
  enc.update(f.nodes.values(), f.ends.values());
  return layoutFromSnapshot(enc.snapshot());
}

describe('overview layout protocol', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`a subscriber applying every delta holds what a fresh snapshot holds (seed ${seed})`, () => {
      const rnd = mulberry32(seed);
      const f = randomFleet(rnd, 5 + Math.floor(rnd() * 30), 1 + Math.floor(rnd() * 6));
      const enc = new OverviewEncoder();
      expect(enc.update(f.nodes.values(), f.ends.values())).toBe('snapshot');
      let early = layoutFromSnapshot(OverviewLayoutSnapshotSchema.parse(enc.snapshot()));
      let late: OverviewLayout | undefined;
      let snapshots = 0;
      for (let tick = 1; tick <= 60; tick++) {
        mutate(f, rnd, tick);
        const d = enc.update(f.nodes.values(), f.ends.values());
        // Both as a browser would receive them: JSON, validated.
        const wire = JSON.parse(JSON.stringify(d === 'snapshot' ? enc.snapshot() : d)) as unknown;
        if (d === 'snapshot') {
          snapshots++;
          early = layoutFromSnapshot(OverviewLayoutSnapshotSchema.parse(wire));
          if (late) late = layoutFromSnapshot(OverviewLayoutSnapshotSchema.parse(wire));
        } else {
          const parsed = OverviewLayoutDeltaSchema.parse(wire);
          early = applyLayoutDelta(early, parsed).layout;
          if (late) late = applyLayoutDelta(late, parsed).layout;
        }
        // A subscriber joining between ticks gets the layout as last sent.
        if (tick === 20) late = layoutFromSnapshot(enc.snapshot());
        expect(canonical(early)).toEqual(canonical(freshLayout(f)));
        if (late) expect(canonical(late)).toEqual(canonical(early));
      }
      // Removals happened in these runs and were answered by snapshots, not by deltas.
      expect(snapshots).toBeGreaterThan(0);
    });
  }

  it('sends only the ends whose picture changed, and nothing for a steady fleet', () => {
    const rnd = mulberry32(42);
    const f = randomFleet(rnd, 100, 8);
    const enc = new OverviewEncoder();
    enc.update(f.nodes.values(), f.ends.values());
    const steady = enc.update(f.nodes.values(), f.ends.values());
    expect(steady).not.toBe('snapshot');
    if (steady === 'snapshot') return;
    expect(steady.endStates).toBe('');
    expect(steady.nodeStates).toEqual([]);
    // Three ends move visibly; one moves by less than a percent of its ring (not visible, not sent).
    const ends = [...f.ends.values()];
    ends[3]!.state = 'down';
    ends[10]!.capacityBytes = 1 << 20;
    ends[10]!.occupancyBytes = 1 << 20;
    ends[20]!.bytesPerS = 5;
    ends[30]!.occupancyBytes += 1;
    const d = enc.update(f.nodes.values(), f.ends.values());
    if (d === 'snapshot') throw new Error('unexpected snapshot');
    const patch = fromBase64(d.endStates);
    const changed = [];
    const view = new DataView(patch.buffer, patch.byteOffset);
    for (let o = 0; o < patch.length; o += 4 + END_STATE_BYTES) changed.push(view.getUint32(o, true));
    expect(changed.sort((a, b) => a - b)).toEqual([3, 10, 20]);
  });
});

describe('quantisation', () => {
  it('log bytes stay within ±9 % and are monotonic', () => {
    let prev = 0;
    for (let v = 1; v < 1e12; v *= 1.07) {
      const b = logByte(v);
      expect(b).toBeGreaterThanOrEqual(prev);
      prev = b;
      const back = fromLogByte(b)!;
      expect(Math.abs(back - v) / v).toBeLessThan(0.095);
    }
    expect(logByte(0)).toBe(0);
    expect(logByte(null)).toBe(0);
    expect(logByte(Number.NaN)).toBe(0);
    expect(fromLogByte(0)).toBeNull();
  });

  it('occupancy is whole percent, unknown without a capacity', () => {
    expect(occupancyByte(0, 100)).toBe(0);
    expect(occupancyByte(49.4, 100)).toBe(49);
    expect(occupancyByte(100, 100)).toBe(100);
    expect(occupancyByte(150, 100)).toBe(100);
    expect(occupancyByte(5, 0)).toBe(255);
  });

  it('base64 round-trips every length', () => {
    const rnd = mulberry32(9);
    for (let n = 0; n < 40; n++) {
      const b = new Uint8Array(n).map(() => Math.floor(rnd() * 256));
      const s = toBase64(b);
      expect(s).toBe(Buffer.from(b).toString('base64'));
      expect([...fromBase64(s)]).toEqual([...b]);
    }
    expect(() => fromBase64('abc')).toThrow(/multiple of 4/);
    expect(() => fromBase64('ab!=')).toThrow(/not base64/);
  });
});

describe('table views', () => {
  it('round-trips a query through its view name', () => {
    const q = { table: 'links' as const, sort: 'p99', q: 'node-1 ~x&y', offset: 40, limit: 60 };
    expect(parseTableView(tableView(q))).toEqual(q);
  });

  it('names what is wrong with a bad one', () => {
    expect(parseTableView('table:links?sort=cpu')).toMatch(/sort must be one of/);
    expect(parseTableView('table:links?limit=500')).toMatch(/limit is at most 200/);
    expect(parseTableView('table:links?limit=0')).toMatch(/at least 1/);
    expect(parseTableView('table:nodes?offset=-1')).toMatch(/whole number/);
    expect(parseTableView(`table:nodes?q=${'a'.repeat(65)}`)).toMatch(/at most 64/);
    expect(parseTableView('table:nodes?colour=red')).toMatch(/unknown table parameter colour/);
    expect(parseTableView('table:alerts')).toMatch(/table:links/);
  });

  it('a delta that does not fit the layout is refused, not applied', () => {
    const enc = new OverviewEncoder();
    enc.update([], []);
    const l = layoutFromSnapshot(enc.snapshot());
    const rec = new Uint8Array(4 + END_STATE_BYTES);
    new DataView(rec.buffer).setUint32(0, 7, true);
    expect(() =>
      applyLayoutDelta(l, { nodes: [], nodeStates: [], ends: [], endStates: toBase64(rec), blame: [] }),
    ).toThrow(/end state 7 of 0/);
  });
});
