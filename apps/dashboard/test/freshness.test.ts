/**
 * Freshness and blame: a host that goes silent (cut off — its TCP connection to the hub still looks open)
 * is stale after a few sample periods and offline after `freshness.offlineAfterS`, everywhere: node
 * health, link ends, KPIs, /api/health, alerts. Its peers, whose links to it went down, stay green apart
 * from those links, and one alert (AgentOffline) names the silent host. The hub's clock is driven by the
 * test; samples are acked before the clock moves, so nothing here depends on how fast the machine is.
 */
import type { Alert } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  type LinkSpec,
  sample,
  startHub,
  TestAgent as TA,
  type TestAgent,
  type TestHub,
} from './helpers.js';

const NODES = ['f1', 'f2', 'f3', 'f4'];
/** Full mesh: each node has a tx end to and an rx end from every other node (6 link ends). */
function linksOf(me: string, down: Set<string>): LinkSpec[] {
  const out: LinkSpec[] = [];
  for (const peer of NODES) {
    if (peer === me) continue;
    const state = down.has(me) || down.has(peer) ? 'down' : 'up';
    out.push({ id: `${me}>${peer}`, peer, direction: 'tx', state, records: 100 });
    out.push({ id: `${peer}>${me}`, peer, direction: 'rx', state, records: 100, latency: [[20_000, 100]] });
  }
  return out;
}

describe('freshness and blame', () => {
  let hub: TestHub;
  const agents = new Map<string, TestAgent>();
  const seq = new Map<string, number>();

  /** One second: every agent except `silent` sends a sample (links to `cut` hosts down), then a tick. */
  async function second(silent: Set<string>, cut: Set<string>): Promise<void> {
    hub.clock.t += 1000;
    for (const id of NODES) {
      if (silent.has(id)) continue;
      const a = agents.get(id)!;
      const s = (seq.get(id) ?? 0) + 1;
      seq.set(id, s);
      a.send(sample(s, hub.clock.t, linksOf(id, cut)));
      await a.acked(s);
    }
    hub.app.tick();
  }

  const node = (id: string) => hub.app.fleet.nodeSummary(hub.app.fleet.nodes.get(id)!);
  const firing = async () =>
    (await api<{ active: Alert[] }>(hub, 'GET', '/api/alerts')).body.active.filter(
      (a) => a.state === 'firing',
    );

  beforeAll(async () => {
    hub = await startHub();
    for (const id of NODES) {
      const a = await TA.connect(hub.wsUrl, hub.agentToken);
      await a.hello(id);
      agents.set(id, a);
    }
    for (let i = 0; i < 3; i++) await second(new Set(), new Set());
  });

  afterAll(async () => {
    for (const a of agents.values()) a.close();
    await hub?.close();
  });

  it('a healthy mesh: every node fresh and ok, /api/health counts them', async () => {
    for (const id of NODES) expect(node(id)).toMatchObject({ freshness: 'fresh', health: 'ok', linksUp: 6 });
    const h = (await (await fetch(`${hub.url}/api/health`)).json()) as {
      agents: Record<string, number>;
      links: { up: number };
    };
    expect(h.agents).toEqual({ connected: 4, stale: 0, offline: 0, total: 4 });
  });

  it('a cut-off host: stale after 3 sample periods, offline after 10 s, its connection closed; its peers stay ok', async () => {
    const silent = new Set(['f2']);
    const cut = new Set(['f2']);
    // The peers see their links to f2 go down at once; f2 itself sends nothing more.
    await second(silent, cut);
    await second(silent, cut);
    expect(node('f2').freshness).toBe('fresh');
    await second(silent, cut);
    await second(silent, cut);
    expect(node('f2')).toMatchObject({ freshness: 'stale', health: 'stale' });
    for (const id of ['f1', 'f3', 'f4']) {
      // Only their 2 ends to f2 are down, blamed on f2: the peers themselves are fine.
      expect(node(id)).toMatchObject({ freshness: 'fresh', health: 'ok', linksUp: 4, linksDownByPeer: 2 });
      const toF2 = [...hub.app.fleet.nodes.get(id)!.links.values()].filter((l) => l.peer === 'f2');
      expect(toF2.map((l) => hub.app.fleet.linkSummary(l).blame)).toEqual(['f2', 'f2']);
    }
    // Frozen figures say so: f2's link ends carry its freshness.
    const f2end = [...hub.app.fleet.nodes.get('f2')!.links.values()][0]!;
    expect(hub.app.fleet.linkSummary(f2end).freshness).toBe('stale');

    for (let i = 0; i < 7; i++) await second(silent, cut);
    expect(node('f2')).toMatchObject({ freshness: 'offline', health: 'offline' });
    // The hub closed the silent agent's connection (a cut host's TCP connection looks open for minutes).
    expect((await agents.get('f2')!.closed).code).toBe(1006);
    const h = (await (await fetch(`${hub.url}/api/health`)).json()) as {
      agents: Record<string, number>;
      links: { up: number };
    };
    expect(h.agents).toEqual({ connected: 3, stale: 0, offline: 1, total: 4 });
    expect(h.links.up).toBe(3 * 4);
    const kpi = hub.app.fleet.kpi(0, 0);
    // f2's 6 ends are frozen (unknown), the peers' 6 ends to f2 down, the other 12 up.
    expect(kpi).toMatchObject({ nodesConnected: 3, nodesStale: 0, nodesOffline: 1 });
    expect(kpi).toMatchObject({ linksUp: 12, linksDown: 6, linksDegraded: 0, linksFrozen: 6 });

    // Alerts: one names the host (AgentOffline on f2); the peers' ends to f2 are inhibited, not 6 LinkDowns.
    await second(silent, cut);
    const alerts = await firing();
    expect(alerts.map((a) => `${a.ruleName} ${a.labels.node}`)).toEqual(['AgentOffline f2']);
  });

  it('the host comes back: fresh and ok everywhere, the alert resolves', async () => {
    const a = await TA.connect(hub.wsUrl, hub.agentToken);
    await a.hello('f2');
    agents.set('f2', a);
    await second(new Set(), new Set());
    await second(new Set(), new Set());
    for (const id of NODES) expect(node(id)).toMatchObject({ freshness: 'fresh', health: 'ok', linksUp: 6 });
    expect(await firing()).toEqual([]);
  });

  it("an application's links resolve to their peer hosts (by address, by the matching send end) and the blame follows", async () => {
    // f1 and f3 announce their addresses; an application on f1 sends to f3 by IP, f3's receive end cannot name
    // its peer (rdma-core does not know it): the hub pairs it with f1's send end.
    const re = async (id: string, addr: string) => {
      agents.get(id)!.close();
      const a = await TA.connect(hub.wsUrl, hub.agentToken);
      await a.hello(id, `run-${addr}`, { addresses: [addr, 'fd00::1'] });
      agents.set(id, a);
      seq.set(id, 0);
    };
    await re('f1', '10.9.0.1');
    await re('f3', '10.9.0.3');
    const appLinks = new Map<string, LinkSpec[]>([
      ['f1', [{ id: 'train/ring-0->1:tx', peer: '10.9.0.3:7600', direction: 'tx', state: 'up', records: 5 }]],
      ['f3', [{ id: 'train/ring-0->1:rx', peer: 'remote', direction: 'rx', state: 'up', records: 5 }]],
    ]);
    const sendAll = async (silent: Set<string>, appState: 'up' | 'stalled') => {
      hub.clock.t += 1000;
      for (const id of NODES) {
        if (silent.has(id)) continue;
        const a = agents.get(id)!;
        const n = (seq.get(id) ?? 0) + 1;
        seq.set(id, n);
        const apps = (appLinks.get(id) ?? []).map((l) => ({ ...l, state: appState }));
        const s = sample(n, hub.clock.t, [...linksOf(id, silent), ...apps]);
        for (let i = 0; i < apps.length; i++)
          Object.assign(s.links[s.links.length - apps.length + i]!, { origin: 'app', app: 'train' });
        a.send(s);
        await a.acked(n);
      }
      hub.app.tick();
    };
    await sendAll(new Set(), 'up');
    const end = (key: string) => hub.app.fleet.linkSummary(hub.app.fleet.links.get(key)!);
    expect(end('f1~train/ring-0->1:tx')).toMatchObject({
      app: 'train',
      peer: 'f3',
      peerAddress: '10.9.0.3:7600',
    });
    expect(end('f3~train/ring-0->1:rx')).toMatchObject({ app: 'train', peer: 'f1', peerAddress: 'remote' });
    // f3 goes silent: f1's application end stalls; the blame is f3's, f1 stays ok, no alert on f1's end.
    for (let i = 0; i < 12; i++) await sendAll(new Set(['f3']), 'stalled');
    expect(end('f1~train/ring-0->1:tx').blame).toBe('f3');
    expect(node('f1')).toMatchObject({ health: 'ok' });
    const alerts = await firing();
    expect(alerts.filter((a) => a.labels.node === 'f1')).toEqual([]);
    // Back: the agents reconnect and report.
    const a = await TA.connect(hub.wsUrl, hub.agentToken);
    await a.hello('f3', 'run-back', { addresses: ['10.9.0.3'] });
    agents.set('f3', a);
    seq.set('f3', 0);
    await sendAll(new Set(), 'up');
    await sendAll(new Set(), 'up');
    expect(node('f3')).toMatchObject({ freshness: 'fresh', health: 'ok' });
  });

  it('a host cut off from its peers but still talking to the hub is the one blamed', async () => {
    // f3's data path is cut, its hub connection is not: every node stays fresh. f3 has all 6 ends down
    // (3 peers), each peer only its 2 ends to f3 (1 of 3 peers): the blame goes to f3.
    const cut = new Set(['f3']);
    await second(new Set(), cut);
    expect(node('f3')).toMatchObject({ freshness: 'fresh', health: 'down', linksUp: 0 });
    for (const id of ['f1', 'f2', 'f4']) expect(node(id)).toMatchObject({ health: 'ok', linksDownByPeer: 2 });
    await second(new Set(), new Set());
    for (const id of NODES) expect(node(id)).toMatchObject({ health: 'ok', linksDownByPeer: 0 });
  });
});
