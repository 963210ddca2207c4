/**
 * The browser's live client against the real hub (in process, no Next): snapshot, deltas carrying what an
 * agent reported, reconnect with resubscription after the socket drops, and the sign-in redirect hook when
 * the hub refuses the session.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type NodeSummary, PROTOCOL_VERSION, tableView } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type App, buildApp } from '../../src/server/app.js';
import { LiveClient, liveUrl } from './live-client';
import type { OverviewState } from './views';

const ADMIN = { user: 'admin', password: 'live-client-test-pw' };
let app: App;
let dir: string;
let base: string;
let cookie: string;

/** `ws` with the session cookie, shaped like the browser's WebSocket for LiveClient. */
function browserLike(cookieHeader: string | undefined): typeof globalThis.WebSocket {
  class WithCookie extends WebSocket {
    constructor(url: string) {
      super(url, { headers: { origin: base, ...(cookieHeader ? { cookie: cookieHeader } : {}) } });
    }
  }
  return WithCookie as unknown as typeof globalThis.WebSocket;
}

async function until<T>(get: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A real agent connection: token over REST, hello, welcome, one sample with the given CPU figure. */
async function startAgent(nodeId: string, cpuPercent: number): Promise<WebSocket> {
  const tok = await fetch(`${base}/api/agent-tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie, origin: base },
    body: JSON.stringify({ name: `ui-test-${nodeId}` }),
  });
  const { token } = (await tok.json()) as { token: string };
  const agent = new WebSocket(`${base.replace('http', 'ws')}/ws/agent`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await new Promise<void>((resolve, reject) => {
    agent.once('error', reject);
    agent.once('open', () => {
      agent.send(
        JSON.stringify({
          type: 'hello',
          v: PROTOCOL_VERSION,
          nodeId,
          runId: 'r1',
          hostname: `${nodeId}.test`,
          version: 't',
          providers: [],
          startedAt: Date.now(),
          intervalMs: 1000,
        }),
      );
    });
    agent.on('message', (raw) => {
      if (JSON.parse(raw.toString()).type === 'welcome') resolve();
    });
  });
  agent.send(
    JSON.stringify({
      type: 'sample',
      v: PROTOCOL_VERSION,
      seq: 1,
      ts: Date.now(),
      host: { cpuPercent, rssBytes: 1, eventLoopLagMs: 0, uptimeS: 1 },
      links: [],
    }),
  );
  return agent;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rdmaq-ui-live-'));
  app = await buildApp({
    config: { dataDir: dir, port: 0, host: '127.0.0.1', logLevel: 'silent', admin: ADMIN },
    next: false,
  });
  const addr = await app.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${addr.port}`;
  const res = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: ADMIN.user, password: ADMIN.password }),
  });
  cookie = res.headers.get('set-cookie')!.split(';')[0]!;
});

afterAll(async () => {
  await app?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('LiveClient against the hub', () => {
  it('gets a snapshot, then the nodes an agent reports, and resubscribes after a dropped socket', async () => {
    const client = new LiveClient({
      url: liveUrl(new URL(base)),
      WebSocketImpl: browserLike(cookie),
      minBackoffMs: 50,
      maxBackoffMs: 200,
    });
    let frames = 0;
    const stop = client.listen('overview', () => frames++);
    try {
      const first = await until(() => client.get<'overview'>('overview').state, 'overview snapshot');
      expect(first.nodes).toEqual([]);
      expect(client.user).toEqual({ name: ADMIN.user, role: 'admin' });

      // a real agent connection: token over REST, hello, one sample
      const agent = await startAgent('ui-n1', 42);
      const withNode = await until(() => {
        const s: OverviewState | undefined = client.get<'overview'>('overview').state;
        return s?.nodes.find((n) => n.id === 'ui-n1');
      }, 'ui-n1 in the overview');
      expect(withNode).toMatchObject({ hostname: 'ui-n1.test', connected: true });
      // Its figures come in the node table's window.
      const nodes = tableView({ table: 'nodes', sort: 'id', q: 'ui-n1', offset: 0, limit: 10 });
      const stopTable = client.listen(nodes, () => {});
      const row = await until(
        () => client.get<'table'>(nodes).state?.rows[0] as NodeSummary | undefined,
        'the node table window',
      );
      expect(row.cpuPercent).toBe(42);
      stopTable();
      agent.close();

      // drop the browser socket from the hub side: the client reconnects and gets a fresh snapshot
      const before = frames;
      // Every status the client passes through (a poll could miss the short reconnect delay).
      const seen: string[] = [];
      const offStatus = client.onStatus(() => seen.push(client.getStatus()));
      for (const c of app.live.clients) c.ws.terminate();
      await until(() => (seen.includes('reconnecting') ? true : undefined), 'reconnecting');
      offStatus();
      await until(() => (client.getStatus() === 'open' ? true : undefined), 'reopened');
      await until(() => {
        const e = client.get<'overview'>('overview');
        return frames > before + 1 && !e.stale && e.state?.nodes.some((n) => n.id === 'ui-n1')
          ? true
          : undefined;
      }, 'snapshot after reconnect');
    } finally {
      stop();
      client.close();
    }
  });

  it('reports an unknown view as an error, not as empty data, and picks it up once the node reports', async () => {
    const client = new LiveClient({
      url: liveUrl(new URL(base)),
      WebSocketImpl: browserLike(cookie),
    });
    const stop = client.listen('node:no-such-node', () => {});
    try {
      const err = await until(() => client.get<'node'>('node:no-such-node').error, 'view error');
      expect(err.code).toBe('ERR_RDMAQ_NO_VIEW');
      expect(client.get<'node'>('node:no-such-node').state).toBeUndefined();
      const agent = await startAgent('no-such-node', 7);
      try {
        const st = await until(
          () => client.get<'node'>('node:no-such-node').state,
          'node view after it reports',
        );
        expect(st.node.cpuPercent).toBe(7);
        expect(client.get<'node'>('node:no-such-node').error).toBeUndefined();
      } finally {
        agent.close();
      }
    } finally {
      stop();
      client.close();
    }
  });

  it('calls onUnauthorized when the hub refuses the socket without a session', async () => {
    let refused = 0;
    const client = new LiveClient({
      url: liveUrl(new URL(base)),
      WebSocketImpl: browserLike(undefined),
      onUnauthorized: () => refused++,
      minBackoffMs: 5_000,
    });
    try {
      await until(() => (refused > 0 ? true : undefined), 'onUnauthorized');
      expect(client.get<'overview'>('overview').state).toBeUndefined();
    } finally {
      client.close();
    }
  });
});
