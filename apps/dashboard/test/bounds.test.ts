import { CloseCode } from '@rdmaq/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { HUB_LIMITS } from '../src/server/decode.js';
import { EVENT_BURST } from '../src/server/ingest.js';
import { LIVE_FRAME_BURST, LIVE_RATE_LIMITED } from '../src/server/live.js';
import { MAX_RUNS_PER_NODE } from '../src/server/model/fleet.js';
import { api, hello, LiveClient, sample, startHub, TestAgent, type TestHub } from './helpers.js';

const hubs: TestHub[] = [];
afterEach(async () => {
  for (const h of hubs.splice(0)) await h.close();
});
const hubWith = async (over: Parameters<typeof startHub>[0] = {}) => {
  const h = await startHub(over);
  hubs.push(h);
  return h;
};
const L = [{ id: 'l0', peer: 'p', records: 1, bytes: 1 }];

describe('every agent-controlled value is bounded (SECURITY.md)', () => {
  it('figures, error kinds and bucket counts beyond the hub limits close the connection naming the field', async () => {
    const hub = await hubWith();
    const bad: Array<[string, (s: ReturnType<typeof sample>) => void, RegExp]> = [
      [
        'cpu',
        (s) => {
          s.host.cpuPercent = 1e300;
        },
        /host\.cpuPercent: at most 100000/,
      ],
      [
        'lag',
        (s) => {
          s.host.eventLoopLagMs = 1e12;
        },
        /host\.eventLoopLagMs/,
      ],
      [
        'error kinds',
        (s) => {
          for (let i = 0; i <= HUB_LIMITS.errorKinds; i++) s.links[0]!.counters.errors[`k${i}`] = 1;
        },
        /links\.0\.counters\.errors: at most 64 error kinds/,
      ],
      [
        'bucket count',
        (s) => {
          s.links[0]!.latency.queue = [[10, 2 ** 41]];
        },
        /links\.0\.latency\.queue: bucket count/,
      ],
    ];
    for (const [name, mutate, msg] of bad) {
      const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      await a.hello(`bounds-${name.replace(/ /g, '-')}`);
      const s = sample(1, hub.clock.t, L);
      mutate(s);
      a.send(s);
      const c = await a.closed;
      expect(c.code, name).toBe(CloseCode.BadFrame);
      expect(String(a.frames.find((f) => f.type === 'error')?.message), name).toMatch(msg);
    }
    expect(hub.app.fleet.links.size).toBe(0);
  });

  it('the number of nodes and of link ends the hub keeps is bounded', async () => {
    const hub = await hubWith({ ingest: { maxNodes: 2, maxLinkEnds: 3 } });
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('n1');
    a.send(
      sample(1, hub.clock.t, [
        { id: 'x', peer: 'p' },
        { id: 'y', peer: 'p' },
      ]),
    );
    await a.acked(1);
    const b = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await b.hello('n2');
    b.send(
      sample(1, hub.clock.t, [
        { id: 'x', peer: 'p' },
        { id: 'y', peer: 'p' },
      ]),
    );
    const e = await b.waitFor((f) => f.type === 'error');
    expect(e).toMatchObject({ code: 'ERR_RDMAQ_LIMIT' });
    expect(e.message).toMatch(/at most 3 link ends .* would make 4/);
    await b.acked(1);
    expect(hub.app.fleet.links.size).toBe(2);
    b.send(sample(2, hub.clock.t, [{ id: 'x', peer: 'p' }]));
    await b.acked(2);
    expect(hub.app.fleet.links.size).toBe(3);
    const c = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    c.send(hello('n3'));
    const closed = await c.closed;
    expect(closed.code).toBe(1013);
    expect(String(c.frames[0]?.message)).toMatch(/at most 2 nodes/);
    a.close();
    b.close();
  });

  it('events beyond a burst of 50 (then 10/s) are dropped and counted', async () => {
    const hub = await hubWith();
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('chatty');
    for (let i = 0; i < EVENT_BURST + 10; i++) {
      a.send({ type: 'event', v: 1, ts: hub.clock.t, kind: 'agent', severity: 'info', message: `e${i}` });
    }
    a.send(sample(1, hub.clock.t, L));
    await a.acked(1);
    expect(hub.app.ingest.rejected.get('event_rate')).toBe(10);
    expect(a.frames.some((f) => f.type === 'error' && f.code === 'ERR_RDMAQ_EVENT_RATE')).toBe(true);
    hub.clock.t += 1000;
    a.send({ type: 'event', v: 1, ts: hub.clock.t, kind: 'agent', severity: 'info', message: 'later' });
    a.send(sample(2, hub.clock.t, L));
    await a.acked(2);
    expect(hub.app.fleet.nodes.get('chatty')!.events.at(-1)!.message).toBe('later');
    a.close();
  });

  it('a node keeps the replay positions of its newest runs only', async () => {
    const hub = await hubWith();
    for (let r = 0; r < MAX_RUNS_PER_NODE + 8; r++) {
      const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      await a.hello('runner', `run-${r}`);
      a.send(sample(1, hub.clock.t, L));
      await a.acked(1);
      a.close();
      await a.closed;
      hub.clock.t += 1000;
    }
    hub.app.fleet.flush(true);
    const n = (
      hub.app.store.db.prepare("SELECT count(*) AS n FROM agent_runs WHERE node_id = 'runner'").get() as {
        n: number;
      }
    ).n;
    expect(n).toBeLessThanOrEqual(MAX_RUNS_PER_NODE + 1);
  });
});

describe('every browser-controlled value is bounded (SECURITY.md)', () => {
  it('a live client sending more than a burst of frames is closed (4008); one user holds a bounded number of sockets', async () => {
    const hub = await hubWith({ live: { maxClientsPerUser: 2 } });
    const c = await LiveClient.connect(hub);
    const closed = new Promise<{ code: number; reason: string }>((r) =>
      c.ws.on('close', (code, reason) => r({ code, reason: String(reason) })),
    );
    for (let i = 0; i <= LIVE_FRAME_BURST; i++) c.send({ type: 'ping', id: i });
    const x = await closed;
    expect(x.code).toBe(LIVE_RATE_LIMITED);
    expect(x.reason).toMatch(/more than 40 frames at once/);
    const c1 = await LiveClient.connect(hub);
    const c2 = await LiveClient.connect(hub);
    const c3 = await LiveClient.connect(hub);
    const third = await new Promise<number>((r) => c3.ws.on('close', (code) => r(code)));
    expect(third).toBe(1013);
    c1.close();
    c2.close();
  });

  it('REST: malformed percent-encoding and non-numeric cursors are 400s, rules carry bounded label maps', async () => {
    const hub = await hubWith();
    const bad = await api<{ error: { code: string } }>(hub, 'GET', '/api/nodes/%E0%A4%A');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('ERR_RDMAQ_BAD_REQUEST');
    expect((await api(hub, 'GET', '/api/alerts/history?before=abc')).status).toBe(400);
    const labels = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
    const rule = await api<{ error: { message: string } }>(hub, 'POST', '/api/rules', {
      id: 'many-labels',
      name: 'Many',
      metric: 'errors_rate',
      comparison: '>',
      threshold: 1,
      clear: 0,
      forS: 0,
      keepFiringForS: 0,
      severity: 'info',
      labels,
    });
    expect(rule.status).toBe(400);
    expect(rule.body.error.message).toMatch(/labels: at most 32 entries/);
  });
});
