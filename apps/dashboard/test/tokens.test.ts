import { CloseCode } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, hello, sample, startHub, TestAgent, type TestHub } from './helpers.js';

const L = (records: number) => [{ id: 'l0', peer: 'p', records, bytes: records }];

describe('agent tokens are bound to node ids; run ids are no capability', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => {
    await hub?.close();
  });

  const token = async (name: string, nodes?: string[]) => {
    const r = await api<{ id: string; token: string; nodes: string[]; warning?: string }>(
      hub,
      'POST',
      '/api/agent-tokens',
      { name, ...(nodes ? { nodes } : {}) },
    );
    expect(r.status).toBe(201);
    return r.body;
  };

  it('a token bound to a node (or a pattern) cannot say hello as another: 4004 with a clear reason', async () => {
    const t = await token('node-1', ['node-1']);
    expect(t.nodes).toEqual(['node-1']);
    expect(t.warning).toBeUndefined();
    const a = await TestAgent.connect(hub.wsUrl, t.token);
    a.send(hello('node-2'));
    const c = await a.closed;
    expect(c.code).toBe(CloseCode.Forbidden);
    const err = a.frames.find((f) => f.type === 'error')!;
    expect(err.code).toBe('ERR_RDMAQ_NODE_NOT_ALLOWED');
    expect(err.message).toMatch(/agent token "node-1" may not speak for node node-2: it is bound to node-1/);
    expect(hub.app.fleet.nodes.has('node-2')).toBe(false);
    const ok = await TestAgent.connect(hub.wsUrl, t.token);
    expect(await ok.hello('node-1')).toBe(0);
    ok.close();

    const rack = await token('rack-1', ['rack1-*', 'spare']);
    const r1 = await TestAgent.connect(hub.wsUrl, rack.token);
    await r1.hello('rack1-h7');
    r1.close();
    const r2 = await TestAgent.connect(hub.wsUrl, rack.token);
    r2.send(hello('rack2-h1'));
    expect((await r2.closed).code).toBe(CloseCode.Forbidden);
  });

  it('tokens made without nodes may speak for any node, and say so; bad bindings are refused', async () => {
    const any = await token('legacy-style');
    expect(any.nodes).toEqual(['*']);
    expect(any.warning).toMatch(/ANY node id/);
    for (const nodes of [[], ['bad id'], 'node-1', Array.from({ length: 65 }, (_, i) => `n${i}`)]) {
      const r = await api<{ error: { message: string } }>(hub, 'POST', '/api/agent-tokens', {
        name: 'x',
        nodes,
      });
      expect(r.status, JSON.stringify(nodes)).toBe(400);
      expect(r.body.error.message).toMatch(/^nodes: /);
    }
    const list = await api<{ tokens: Array<{ name: string; nodes: string[] }> }>(
      hub,
      'GET',
      '/api/agent-tokens',
    );
    expect(list.body.tokens.find((t) => t.name === 'node-1')?.nodes).toEqual(['node-1']);
  });

  it('another token cannot push a live agent off its node; a quiet connection can be taken over', async () => {
    const mine = await token('victim', ['victim']);
    const other = await token('other'); // any node
    const a = await TestAgent.connect(hub.wsUrl, mine.token);
    await a.hello('victim', 'run-V');
    a.send(sample(1, hub.clock.t, L(10)));
    await a.acked(1);
    const b = await TestAgent.connect(hub.wsUrl, other.token);
    b.send(hello('victim', 'run-V'));
    const cb = await b.closed;
    expect(cb.code).toBe(CloseCode.Duplicate);
    expect(b.frames.find((f) => f.type === 'error')).toMatchObject({ code: 'ERR_RDMAQ_NODE_IN_USE' });
    // The real agent is still connected and stored.
    a.send(sample(2, hub.clock.t, L(20)));
    await a.acked(2);
    expect(hub.app.fleet.nodes.get('victim')!.connected).toBe(true);
    // Silent for longer than max(15 s, 3 intervals): another token may take the node over (rotation).
    hub.clock.t += 16_000;
    const c = await TestAgent.connect(hub.wsUrl, other.token);
    await c.hello('victim', 'run-C');
    expect((await a.closed).code).toBe(CloseCode.Duplicate);
    c.close();
    await c.closed;
  });

  it("a run id known to another token does not let it make the real agent's samples count as stored", async () => {
    const mine = await token('real', ['real-node']);
    const other = await token('attacker'); // any node: the worst case
    const a = await TestAgent.connect(hub.wsUrl, mine.token);
    expect(await a.hello('real-node', 'run-R')).toBe(0);
    for (let s = 1; s <= 3; s++) a.send(sample(s, hub.clock.t, L(s * 10)));
    await a.acked(3);
    a.close();
    await a.closed;
    // The attacker names the same run id (viewers see it) while the agent is away.
    const b = await TestAgent.connect(hub.wsUrl, other.token);
    expect(await b.hello('real-node', 'run-R')).toBe(0);
    b.send(sample(1_000_000_000, hub.clock.t, L(1)));
    await b.acked(1_000_000_000);
    b.close();
    await b.closed;
    hub.app.fleet.flush(true);
    // The real agent comes back: its own position, and its next samples are stored, not dropped.
    const a2 = await TestAgent.connect(hub.wsUrl, mine.token);
    expect(await a2.hello('real-node', 'run-R')).toBe(3);
    a2.send(sample(4, hub.clock.t, L(40)));
    await a2.acked(4);
    const node = hub.app.fleet.nodes.get('real-node')!;
    expect(node.lastSeq).toBe(4);
    expect(node.links.get('l0')!.counters.records).toBe(40);
    a2.close();
  });

  it('re-binding a token disconnects its agents on nodes it no longer covers', async () => {
    const t = await token('moving');
    const a = await TestAgent.connect(hub.wsUrl, t.token);
    await a.hello('old-home');
    const r = await api<{ nodes: string[]; disconnected: number }>(
      hub,
      'PATCH',
      `/api/agent-tokens/${t.id}`,
      { nodes: ['new-home'] },
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ nodes: ['new-home'], disconnected: 1 });
    expect((await a.closed).code).toBe(CloseCode.Forbidden);
    const b = await TestAgent.connect(hub.wsUrl, t.token);
    await b.hello('new-home');
    b.close();
    expect((await api(hub, 'PATCH', '/api/agent-tokens/nope', { nodes: ['x'] })).status).toBe(404);
  });
});
