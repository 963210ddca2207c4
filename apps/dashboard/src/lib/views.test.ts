import {
  type Kpi,
  type LinkSummary,
  OverviewEncoder,
  type OverviewEndInput,
  type OverviewNodeInput,
} from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import {
  applyOverviewDelta,
  applyTableDelta,
  joinHistory,
  mergePoints,
  overviewFromSnapshot,
  tableFromSnapshot,
} from './views';

const rowBase: LinkSummary = {
  key: 'x~1',
  id: '1',
  node: 'x',
  peer: 'y',
  direction: 'rx',
  transport: 'shm',
  provider: 'shm',
  state: 'up',
  ts: 1,
  recordsPerS: 1,
  bytesPerS: 1,
  completionsPerS: 1,
  backpressurePerS: 0,
  errorsPerS: 0,
  occupancy: 0,
  occupancyBytes: 0,
  capacityBytes: 1,
  p50Ns: 1,
  p99Ns: 1,
  p999Ns: 1,
  rttP50Ns: null,
};

const kpi = (n: number): Kpi => ({
  nodesTotal: n,
  nodesConnected: n,
  linksTotal: 0,
  linksUp: 0,
  linksDegraded: 0,
  linksDown: 0,
  recordsPerS: 0,
  bytesPerS: 0,
  p99MaxNs: null,
  p99MedianNs: null,
  occupancyMax: 0,
  alertsFiring: 0,
  alertsPending: 0,
  samplesPerS: 0,
});

const node = (id: string): OverviewNodeInput => ({
  id,
  hostname: `${id}.lan`,
  labels: id === 'n1' ? { rack: 'r1' } : undefined,
  health: 'ok',
  connected: true,
  linkCount: 1,
  linksUp: 1,
  linksDownByPeer: 0,
  fresh: true,
  lastDataAt: 5,
});

const end = (key: string, peer: string): OverviewEndInput => {
  const [n, id] = key.split('~') as [string, string];
  return {
    key,
    id,
    node: n,
    peer,
    peerAddress: undefined,
    direction: 'rx',
    transport: 'fabric',
    provider: 'tcp;ofi_rxm',
    capacityBytes: 1000,
    app: undefined,
    state: 'up',
    freshness: 'fresh',
    stuck: false,
    occupancyBytes: 250,
    bytesPerS: 1e6,
    p99Ns: 20_000,
    blame: undefined,
  };
};

describe('live view reducers', () => {
  it('decodes the overview and applies a delta: only what changed is rebuilt, the rest keeps its identity', () => {
    const nodes = [node('n1'), node('n2'), node('n10')];
    const ends = [end('n1~a', 'n2'), end('n2~a', 'n1'), end('n10~a', '10.0.0.9:7600')];
    const enc = new OverviewEncoder();
    enc.update(nodes, ends);
    const s0 = overviewFromSnapshot({ layout: enc.snapshot(), kpi: kpi(3), alerts: [] });
    expect(s0.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n10']);
    expect(s0.nodes[0]).toMatchObject({ hostname: 'n1.lan', freshness: 'fresh', labels: { rack: 'r1' } });
    expect(s0.links[0]).toMatchObject({
      key: 'n1~a',
      peer: 'n2',
      direction: 'rx',
      occupancy: 0.25,
      stuck: false,
    });
    expect(s0.links[2]!.peer).toBe('10.0.0.9:7600');
    // Throughput and p99 come back within the quarter-octave step.
    expect(Math.abs(s0.links[0]!.bytesPerS - 1e6) / 1e6).toBeLessThan(0.1);
    expect(Math.abs(s0.links[0]!.p99Ns! - 20_000) / 20_000).toBeLessThan(0.1);

    ends[1]!.state = 'down';
    ends[1]!.blame = 'n1';
    nodes[2] = { ...nodes[2]!, health: 'stale', fresh: false };
    const d = enc.update(nodes, ends);
    if (d === 'snapshot') throw new Error('a change of state is a delta');
    const s1 = applyOverviewDelta(s0, { layout: d, kpi: kpi(3), alerts: [] });
    expect(s1.links[1]).toMatchObject({ state: 'down', blame: 'n1' });
    expect(s1.links[0]).toBe(s0.links[0]);
    expect(s1.nodes[2]).toMatchObject({ health: 'stale', freshness: 'stale', lastDataAt: 5 });
    expect(s1.nodes[0]).toBe(s0.nodes[0]);
    // a delta without entity changes keeps the arrays, so memoised views skip work
    const quiet = enc.update(nodes, ends);
    if (quiet === 'snapshot') throw new Error('nothing changed');
    const s2 = applyOverviewDelta(s1, { layout: quiet, kpi: kpi(3), alerts: [] });
    expect(s2.nodes).toBe(s1.nodes);
    expect(s2.links).toBe(s1.links);
  });

  it('applies a table delta: changed rows replaced, order from the hub, unchanged rows keep identity', () => {
    const row = (key: string, bytesPerS: number) => ({ ...rowBase, key, id: key.split('~')[1]!, bytesPerS });
    const t0 = tableFromSnapshot({
      table: 'links',
      total: 9,
      offset: 0,
      rows: [row('a~1', 1), row('b~1', 2)],
    });
    const t1 = applyTableDelta(t0, {
      table: 'links',
      total: 10,
      offset: 0,
      order: ['b~1', 'c~1'],
      rows: [row('c~1', 3)],
    });
    expect(t1.rows.map((r) => ('key' in r ? r.key : r.id))).toEqual(['b~1', 'c~1']);
    expect(t1.rows[0]).toBe(t0.rows[1]);
    expect(t1.total).toBe(10);
    expect(() =>
      applyTableDelta(t1, { table: 'links', total: 1, offset: 0, order: ['zz~1'], rows: [] }),
    ).toThrow(/zz~1/);
  });

  it('merges points by timestamp, newest wins, bounded', () => {
    const p = (ts: number, v: number) => ({ ts, v });
    const a = mergePoints([], [p(1, 1), p(2, 2)]);
    const b = mergePoints(a, [p(3, 3)]);
    expect(b.map((x) => x.ts)).toEqual([1, 2, 3]);
    const c = mergePoints(b, [p(2, 20), p(4, 4)]);
    expect(c).toEqual([p(1, 1), p(2, 20), p(3, 3), p(4, 4)]);
    const d = mergePoints(c, [p(5, 5), p(6, 6)], 3);
    expect(d.map((x) => x.ts)).toEqual([4, 5, 6]);
  });

  it('appends only the live points newer than the history', () => {
    const h = [{ ts: 10 }, { ts: 20 }];
    expect(joinHistory(h, [{ ts: 15 }, { ts: 20 }, { ts: 21 }]).map((x) => x.ts)).toEqual([10, 20, 21]);
    expect(joinHistory([], [{ ts: 1 }])).toEqual([{ ts: 1 }]);
  });
});
