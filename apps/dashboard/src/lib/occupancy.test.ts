import { describe, expect, it } from 'vitest';
import { endStuck, historyRows, linkRings, occupancyGrid, type RingEndLike, ringMatrix } from './occupancy';

const CAP = 1000;
const end = (
  node: string,
  peer: string,
  direction: 'tx' | 'rx',
  occ: number,
  o: Partial<RingEndLike> = {},
): RingEndLike => ({
  key: `${node}~l-${direction === 'tx' ? node : peer}-${direction === 'tx' ? peer : node}`,
  id: `l-${direction === 'tx' ? node : peer}-${direction === 'tx' ? peer : node}`,
  node,
  peer,
  direction,
  state: 'up',
  occupancyBytes: occ,
  capacityBytes: CAP,
  recordsPerS: 100,
  ...o,
});

describe('ring occupancy per link, both ends', () => {
  it('joins the sender’s and the receiver’s end and shows the worse of the two', () => {
    const rings = linkRings([end('n1', 'n2', 'tx', 1000, { recordsPerS: 0 }), end('n2', 'n1', 'rx', 100)]);
    expect(rings).toHaveLength(1);
    const r = rings[0]!;
    expect([r.sender, r.receiver, r.id, r.fraction]).toEqual(['n1', 'n2', 'l-n1-n2', 1]);
    expect(r.worst.direction).toBe('tx');
    // The sender's mirror full with nothing accepted: stuck, though the receiver's ring is nearly empty.
    expect(r.stuck).toBe(true);
  });

  it('a full ring that moves is full, not stuck; a frozen end does not hide a fresh one', () => {
    const moving = linkRings([end('n1', 'n2', 'tx', 990), end('n2', 'n1', 'rx', 990)])[0]!;
    expect(moving.stuck).toBe(false);
    expect(moving.fraction).toBeCloseTo(0.99);
    // The receiver's agent went silent with its ring frozen at 99 %: the fresh sender speaks (20 %).
    const r = linkRings([
      end('n1', 'n2', 'tx', 200),
      end('n2', 'n1', 'rx', 990, { freshness: 'offline', recordsPerS: 0 }),
    ])[0]!;
    expect(r.fraction).toBeCloseTo(0.2);
    expect(r.frozen).toBe(false);
    expect(r.stuck).toBe(false);
    expect(endStuck(end('n2', 'n1', 'rx', 990, { freshness: 'stale', recordsPerS: 0 }))).toBe(false);
    // Only frozen figures: shown, marked frozen.
    const f = linkRings([end('n2', 'n1', 'rx', 500, { freshness: 'offline' })])[0]!;
    expect([f.fraction, f.frozen]).toEqual([0.5, true]);
  });

  it('a sender × receiver matrix of a 3-host mesh: every host on both axes, one cell per direction', () => {
    const hosts = ['n1', 'n2', 'n3'];
    const ends: RingEndLike[] = [];
    for (const a of hosts)
      for (const b of hosts) {
        if (a === b) continue;
        ends.push(end(a, b, 'tx', a === 'n1' && b === 'n3' ? 970 : 10, { recordsPerS: 0 }));
        ends.push(end(b, a, 'rx', 10));
      }
    const m = ringMatrix(linkRings(ends));
    expect(m.senders).toEqual(hosts);
    expect(m.receivers).toEqual(hosts);
    expect(m.cells.size).toBe(6);
    expect(m.cells.get('n1\u0000n3')![0]!.stuck).toBe(true);
    expect(m.cells.get('n3\u0000n1')![0]!.stuck).toBe(false);
    expect(m.cells.has('n1\u0000n1')).toBe(false);
    // History rows: the stuck link first.
    expect(historyRows(linkRings(ends), 2).map((r) => r.key)[0]).toBe('n1→n3:l-n1-n3');
  });

  it('history grid: per column the worse of both ends, NaN where no end reported', () => {
    const grid = occupancyGrid(
      [
        {
          ends: [
            {
              capacityBytes: 100,
              points: [
                { ts: 0, occupancyBytes: 10 },
                { ts: 2000, occupancyBytes: 100 },
              ],
            },
            {
              capacityBytes: 200,
              points: [
                { ts: 0, occupancyBytes: 100 },
                { ts: 1000, occupancyBytes: null },
              ],
            },
          ],
        },
      ],
      0,
      1000,
      3,
    );
    expect([...grid[0]!]).toEqual([0.5, Number.NaN, 1]);
  });
});
