/**
 * The whole path, with real parts only: two rdmaq-agent processes linked both ways (a→b over shared memory,
 * b→a over libfabric tcp;ofi_rxm) with traffic generators, streaming to a real rdmaq-dashboard hub.
 * What the hub reports must agree with what the agents count, and a dead agent must show as such.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../tooling/test-support/wait.js';
import {
  agentBin,
  dashboardBin,
  freePort,
  POLL,
  type Proc,
  startProc,
  stopAll,
  stopProc,
  tempDir,
} from './support/procs.js';

interface LinkSummary {
  node: string;
  id: string;
  state: string;
  key?: string;
  [k: string]: unknown;
}

const dir = tempDir('cluster');
const password = 'cluster-test-password';
let hubUrl = '';
let cookie = '';
let token = '';
const ports: Record<string, { http: number; listen: number }> = {};
const agents: Record<string, Proc> = {};

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const r = await fetch(`${hubUrl}${path}`, { ...init, headers: { cookie, ...(init.headers ?? {}) } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

function startAgent(node: 'a' | 'b'): Proc {
  const other = node === 'a' ? 'b' : 'a';
  const link =
    node === 'a'
      ? {
          id: 'a->b',
          peer: 'b',
          address: join(dir.path, 'b.sock'),
          transport: 'shm',
          ringBytes: '1MiB',
          idle: 'event',
          traffic: { rate: 2000, size: { dist: 'uniform', min: 64, max: 2048 } },
        }
      : {
          id: 'b->a',
          peer: 'a',
          address: `127.0.0.1:${ports.a!.listen}`,
          transport: 'fabric',
          provider: 'tcp;ofi_rxm',
          ringBytes: '1MiB',
          idle: 'event',
          traffic: { rate: 1000, size: 256 },
        };
  const config = {
    nodeId: node,
    hub: { url: `${hubUrl.replace('http', 'ws')}/ws/agent` },
    http: { host: '127.0.0.1', port: ports[node]!.http },
    listen: {
      socket: join(dir.path, `${node}.sock`),
      fabric: true,
      host: '127.0.0.1',
      port: ports[node]!.listen,
      provider: 'tcp;ofi_rxm',
      ringBytes: '1MiB',
      idle: 'event',
      expect: [{ id: `${other}->${node}`, peer: other, transport: node === 'a' ? 'fabric' : 'shm' }],
    },
    sampling: { intervalMs: 500 },
    reconnect: { initialMs: 100, maxMs: 1000 },
    journalDir: join(dir.path, node, 'journal'),
    log: { level: 'info', pretty: 'auto' },
    links: [link],
  };
  const file = join(dir.path, `${node}.yaml`);
  writeFileSync(file, JSON.stringify(config, null, 2)); // JSON is YAML
  const proc = startProc(`agent-${node}`, [agentBin, 'run', '--config', file], {
    RDMAQ_HUB_TOKEN: token,
    RDMAQ_SECRET_FILE: join(dir.path, 'secret'),
  });
  agents[node] = proc;
  return proc;
}

async function agentCounter(node: string, metric: string, link: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ports[node]!.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes(`link="${link}"`));
  if (!line) throw new Error(`${metric}{link="${link}"} not in agent ${node}'s /metrics`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('agents → hub, real links and real traffic', () => {
  let hub: Proc;
  let hubArgs: string[] = [];
  const hubEnv = { RDMAQ_ADMIN_USER: 'admin', RDMAQ_ADMIN_PASSWORD: password };
  const login = async (): Promise<void> => {
    const r = await fetch(`${hubUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'admin', password }),
    });
    expect(r.status).toBe(200);
    cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  };

  beforeAll(async () => {
    writeFileSync(join(dir.path, 'secret'), 'a-cluster-secret-of-enough-length');
    const port = await freePort();
    for (const n of ['a', 'b']) ports[n] = { http: await freePort(), listen: await freePort() };
    hubUrl = `http://127.0.0.1:${port}`;
    hubArgs = [
      dashboardBin,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--data',
      join(dir.path, 'hub'),
    ];
    hub = startProc('hub', hubArgs, hubEnv);
    await waitFor(
      'the hub to answer /api/health',
      async () => ((await fetch(`${hubUrl}/api/health`)).ok ? true : undefined),
      { ...POLL, timeoutMs: 60_000 },
    );
    const login = await fetch(`${hubUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'admin', password }),
    });
    expect(login.status).toBe(200);
    cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    token = (
      await api<{ token: string }>('/api/agent-tokens', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'cluster-test' }),
      })
    ).token;
    startAgent('a');
    startAgent('b');
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    dir.remove();
  });

  it('shows both agents connected and every link up', async () => {
    const health = await waitFor(
      'all links up in /api/health',
      async () => {
        const h = (await (await fetch(`${hubUrl}/api/health`)).json()) as {
          agents: { connected: number };
          links: { up: number; total: number };
        };
        return h.agents.connected === 2 && h.links.total >= 2 && h.links.up === h.links.total ? h : undefined;
      },
      { ...POLL, timeoutMs: 60_000 },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}\n--- agent a ---\n${agents.a?.output().slice(-3000)}\n--- agent b ---\n${agents.b?.output().slice(-3000)}\n--- hub ---\n${hub.output().slice(-3000)}`,
      );
    });
    expect(health.links.up).toBe(health.links.total);
  });

  it('reports record counts that agree with the agents’ own counters, growing with the traffic', async () => {
    const find = async (node: string, id: string) => {
      const { links } = await api<{ links: LinkSummary[] }>(`/api/links?node=${node}`);
      return links.find((l) => l.id === id);
    };
    const first = await waitFor('link a->b in the hub', () => find('a', 'a->b'), POLL);
    expect(first.state).toBe('up');
    const key = encodeURIComponent(first.key ?? `a~a->b`);
    const before = (await api<{ counters: { records: number } }>(`/api/links/${key}`)).counters.records;
    const grown = await waitFor(
      'a->b record count to grow',
      async () => {
        const r = (await api<{ counters: { records: number } }>(`/api/links/${key}`)).counters.records;
        return r > before + 1000 ? r : undefined;
      },
      POLL,
    );
    // The hub's figure is the last sample; the agent's counter only moves forward after it.
    const agentNow = await agentCounter('a', 'rdmaq_link_records_total', 'a->b');
    expect(agentNow).toBeGreaterThanOrEqual(grown);
    // The fabric link the other way carries traffic too.
    const back = await waitFor(
      'link b->a to carry records',
      async () => {
        const l = await find('b', 'b->a');
        return l && l.state === 'up' ? l : undefined;
      },
      POLL,
    );
    const backKey = encodeURIComponent(back.key ?? 'b~b->a');
    await waitFor(
      'b->a records > 0',
      async () => {
        const r = (await api<{ counters: { records: number } }>(`/api/links/${backKey}`)).counters.records;
        return r > 0 ? r : undefined;
      },
      POLL,
    );
  });

  it('serves history with throughput and latency percentiles from the real traffic', async () => {
    const { links } = await api<{ links: LinkSummary[] }>('/api/links?node=a');
    const link = links.find((l) => l.id === 'a->b')!;
    const key = encodeURIComponent(link.key ?? 'a~a->b');
    const hist = await waitFor(
      'history points with traffic',
      async () => {
        const h = await api<{ points: Array<{ recordsPerS: number; p99Ns: number | null }> }>(
          `/api/history?link=${key}&points=60`,
        );
        return h.points.some((p) => p.recordsPerS > 0) ? h : undefined;
      },
      POLL,
    );
    expect(hist.points.length).toBeLessThanOrEqual(60);
    const busy = hist.points.filter((p) => p.recordsPerS > 0);
    // Generator runs at 2000/s: the observed rate is of that order, not zero and not absurd.
    expect(Math.max(...busy.map((p) => p.recordsPerS))).toBeGreaterThan(200);
    expect(Math.max(...busy.map((p) => p.recordsPerS))).toBeLessThan(20_000);
  });

  it('marks the links of a killed agent down, and up again when it returns', async () => {
    await stopProc(agents.b!, 'SIGKILL');
    await waitFor(
      'a link to leave the up state after agent b died',
      async () => {
        const h = (await (await fetch(`${hubUrl}/api/health`)).json()) as {
          links: { up: number; total: number };
        };
        return h.links.up < h.links.total ? h : undefined;
      },
      { ...POLL, timeoutMs: 30_000 },
    );
    startAgent('b');
    await waitFor(
      'every link up again',
      async () => {
        const h = (await (await fetch(`${hubUrl}/api/health`)).json()) as {
          agents: { connected: number };
          links: { up: number; total: number };
        };
        return h.agents.connected === 2 && h.links.up === h.links.total ? h : undefined;
      },
      { ...POLL, timeoutMs: 60_000 },
    );
  });

  it('kill -9 of the hub under traffic: agents come back by themselves and replay what they buffered', async () => {
    const health = async () =>
      (await (await fetch(`${hubUrl}/api/health`)).json()) as {
        agents: { connected: number };
        links: { up: number; total: number };
      };
    const key = encodeURIComponent('a~a->b');
    const hubRecords = async () =>
      (await api<{ counters: { records: number } }>(`/api/links/${key}`)).counters.records;
    await waitFor(
      'both agents connected',
      async () => ((await health()).agents.connected === 2 ? true : undefined),
      POLL,
    );
    const beforeKill = await hubRecords();
    await stopProc(hub, 'SIGKILL');
    // The links do not depend on the hub: traffic goes on and the agents count it while it is away.
    const grownWhileAway = await waitFor(
      'a->b to carry records with the hub gone',
      async () => {
        const n = await agentCounter('a', 'rdmaq_link_records_total', 'a->b');
        return n > beforeKill + 2000 ? n : undefined;
      },
      POLL,
    );
    const restartedAt = Date.now();
    hub = startProc('hub', hubArgs, hubEnv);
    await waitFor(
      'the hub to answer again',
      async () => {
        try {
          return (await fetch(`${hubUrl}/api/health`)).ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      POLL,
    );
    await login();
    const back = await waitFor(
      'both agents back with every link up',
      async () => {
        const h = await health();
        return h.agents.connected === 2 && h.links.total >= 2 && h.links.up === h.links.total ? h : undefined;
      },
      { ...POLL, timeoutMs: 30_000 },
    );
    expect(back.links.up).toBe(back.links.total);
    // What the agent counted while the hub was dead reaches the hub (buffered samples replayed, or the
    // next cumulative sample): the hub's figure catches up with the agent's figure of that time.
    const caughtUp = await waitFor(
      'the hub to catch up with what a->b counted while it was away',
      async () => {
        const n = await hubRecords();
        return n >= grownWhileAway ? n : undefined;
      },
      POLL,
    );
    expect(caughtUp).toBeGreaterThanOrEqual(grownWhileAway);
    console.log(
      `hub kill -9: agents back and caught up ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after restart`,
    );
  }, 120_000);

  it('after the kills of agent b and of the hub: the receiving ends saw no record lost or delivered twice', async () => {
    // Every generated record carries a stream id and a counter; each receiving agent checks them per link and
    // reports a jump as errors.seq_lost and a repeat as errors.seq_duplicated (apps/agent/src/traffic.ts).
    for (const key of ['b~a->b', 'a~b->a']) {
      const l = await waitFor(
        `${key} to carry records again`,
        async () => {
          const x = await api<{ counters: { records: number; errors: Record<string, number> } }>(
            `/api/links/${encodeURIComponent(key)}`,
          );
          return x.counters.records > 0 ? x : undefined;
        },
        POLL,
      );
      expect({
        key,
        lost: l.counters.errors.seq_lost ?? 0,
        duplicated: l.counters.errors.seq_duplicated ?? 0,
      }).toEqual({ key, lost: 0, duplicated: 0 });
    }
  });
});
