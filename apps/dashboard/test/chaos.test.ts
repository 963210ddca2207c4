/**
 * Demo chaos through the hub: only a hub started by the demo (RDMAQ_DEMO_CHAOS_SOCKET) has it; viewers see
 * whether it is on, only admins act; bad requests are refused by name before anything reaches the demo;
 * every action is audited. The demo's side is a unix socket speaking the same JSON lines as
 * scripts/demo-chaos.mjs, which records what it was asked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, login, startHub, type TestHub } from './helpers.js';

describe('demo chaos controls', () => {
  let hub: TestHub;
  let plain: TestHub;
  let demo: Server;
  let dir: string;
  const asked: unknown[] = [];
  const nodes = [{ node: 'node-2', agent: 'running', path: 'up', slowed: null as string | null }];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rdmaq-chaos-'));
    const sock = path.join(dir, 'chaos.sock');
    demo = createServer((s) => {
      s.setEncoding('utf8');
      let buf = '';
      s.on('data', (c: string) => {
        buf += c;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const req = JSON.parse(buf.slice(0, nl)) as { action: string; node?: string; rate?: string };
        buf = buf.slice(nl + 1);
        asked.push(req);
        if (req.action === 'slow') nodes[0]!.slowed = req.rate ?? null;
        if (req.action === 'restart') {
          s.write(`${JSON.stringify({ ok: false, error: "node-2's agent is running; kill it first" })}\n`);
          return;
        }
        s.write(`${JSON.stringify({ ok: true, nodes })}\n`);
      });
    });
    await new Promise<void>((r) => demo.listen(sock, r));
    hub = await startHub({ demo: { chaosSocket: sock } });
    plain = await startHub();
    await api(hub, 'POST', '/api/users', { name: 'vera', password: 'viewer-pass-12', role: 'viewer' });
  });

  afterAll(async () => {
    await hub?.close();
    await plain?.close();
    demo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a production hub has none: enabled false, actions 404', async () => {
    expect((await api(plain, 'GET', '/api/demo/chaos')).body).toEqual({ enabled: false, nodes: [] });
    const r = await api(plain, 'POST', '/api/demo/chaos', { action: 'cut', node: 'node-2' });
    expect(r.status).toBe(404);
  });

  it('viewers see it is on but cannot act', async () => {
    const viewer = await login(hub.url, 'vera', 'viewer-pass-12');
    const s = await api<{ enabled: boolean; nodes: unknown[] }>(
      hub,
      'GET',
      '/api/demo/chaos',
      undefined,
      viewer,
    );
    expect(s.body).toMatchObject({ enabled: true, nodes: [{ node: 'node-2', agent: 'running' }] });
    const before = asked.length;
    const r = await api(hub, 'POST', '/api/demo/chaos', { action: 'cut', node: 'node-2' }, viewer);
    expect(r.status).toBe(403);
    expect(asked.slice(before).filter((a) => (a as { action: string }).action !== 'status')).toEqual([]);
  });

  it('bad requests are refused by name and never reach the demo', async () => {
    const before = asked.length;
    for (const [body, msg] of [
      [{ action: 'rm -rf', node: 'node-2' }, /action/],
      [{ action: 'cut', node: 'node-2; reboot' }, /node/],
      [{ action: 'slow', node: 'node-2', rate: '1e9bit' }, /rate/],
      [{ action: 'cut', node: 'node-2', extra: 1 }, /extra|Unrecognized/i],
    ] as const) {
      const r = await api<{ error: { message: string } }>(hub, 'POST', '/api/demo/chaos', body);
      expect(r.status).toBe(400);
      expect(JSON.stringify(r.body)).toMatch(msg);
    }
    expect(asked.length).toBe(before);
  });

  it('admins act; the demo does it, the reply is its new state, the audit trail says who', async () => {
    const r = await api<{ nodes: Array<{ slowed: string }> }>(hub, 'POST', '/api/demo/chaos', {
      action: 'slow',
      node: 'node-2',
      rate: '20mbit',
    });
    expect(r.status).toBe(200);
    expect(asked.at(-1)).toEqual({ action: 'slow', node: 'node-2', rate: '20mbit' });
    expect(r.body.nodes[0]!.slowed).toBe('20mbit');
    // The demo refusing (agent still running) comes back as a clear 409, not a hub error.
    const refused = await api(hub, 'POST', '/api/demo/chaos', { action: 'restart', node: 'node-2' });
    expect(refused.status).toBe(409);
    expect(JSON.stringify(refused.body)).toMatch(/kill it first/);
    const audit = await api<{ entries: Array<{ user: string; action: string; target: string }> }>(
      hub,
      'GET',
      '/api/audit?limit=10',
    );
    expect(audit.body.entries.map((e) => `${e.user} ${e.action} ${e.target}`)).toContain(
      'admin chaos.slow node-2',
    );
  });
});
