import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { tempDir } from './helpers.js';

const BIN = fileURLToPath(new URL('../dist/server/bin.js', import.meta.url));

describe('rdmaq-dashboard serve (built bin, UI off)', () => {
  const dir = tempDir('rdmaq-serve-');
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a one-time setup token at first start, serves /api/health, stops on SIGTERM', async () => {
    if (!existsSync(BIN)) throw new Error(`build the package first: ${BIN} is missing`);
    let out = '';
    child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dir], {
      env: {
        ...process.env,
        RDMAQ_UI: '0',
        RDMAQ_LOG_LEVEL: 'info',
        RDMAQ_ADMIN_USER: '',
        RDMAQ_ADMIN_PASSWORD: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d) => {
      out += String(d);
    });
    child.stderr?.on('data', (d) => {
      out += String(d);
    });
    // The log line (pino) and the banner (console) are separate streams: wait for both.
    await waitFor(
      'setup token and URL in the output',
      () => /"token":"setup_[A-Za-z0-9_-]+"/.test(out) && /"url":"http:/.test(out),
      30_000,
    );
    const url = /"url":"(http:\/\/[^"]+)"/.exec(out)![1]!;
    const token = /"token":"(setup_[A-Za-z0-9_-]+)"/.exec(out)![1]!;
    const health = await fetch(`${url}/api/health`);
    expect(await health.json()).toEqual({
      status: 'ok',
      agents: { connected: 0, stale: 0, offline: 0, total: 0 },
      links: { up: 0, total: 0 },
    });
    expect(await (await fetch(`${url}/api/auth/setup`)).json()).toEqual({ needed: true });
    const setup = (body: unknown) =>
      fetch(`${url}/api/auth/setup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await setup({ token: 'setup_wrong', name: 'root', password: 'a long password' })).status).toBe(
      403,
    );
    const ok = await setup({ token, name: 'root', password: 'a long password' });
    expect(ok.status).toBe(200);
    const cookie = (ok.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect(await (await fetch(`${url}/api/auth/me`, { headers: { cookie } })).json()).toEqual({
      name: 'root',
      role: 'admin',
    });
    // The token works once.
    expect((await setup({ token, name: 'root2', password: 'a long password' })).status).toBe(403);
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(503);
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(path.join(dir, 'rdmaq.lock'))).toBe(false);
  });
});
