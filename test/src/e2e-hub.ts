/**
 * The real dashboard server (`rdmaq-dashboard serve`, built dist + built Next UI) as a child process on an
 * ephemeral port with a temp data dir, for the browser end-to-end tests. Stopped with SIGTERM (then
 * SIGKILL), data dir removed, even when a test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const DASHBOARD_DIR = path.dirname(require.resolve('@rdmaq/dashboard/package.json'));

export const ADMIN = { name: 'admin', password: 'e2e-admin-password' };

export interface Hub {
  url: string;
  dataDir: string;
  /** Everything the server printed, for failure messages. */
  output: () => string;
  stop: () => Promise<void>;
}

/** Fails with what to run when the server or the UI has not been built. */
export function assertBuilt(): void {
  const bin = path.join(DASHBOARD_DIR, 'dist/server/bin.js');
  const ui = path.join(DASHBOARD_DIR, '.next/BUILD_ID');
  for (const [file, what] of [
    [bin, 'the dashboard server'],
    [ui, 'the dashboard UI (next build)'],
  ] as const) {
    if (!existsSync(file)) {
      const err = new Error(
        `${what} is not built (${file} is missing); run: pnpm --filter @rdmaq/dashboard build`,
      );
      (err as Error & { code: string }).code = 'ERR_RDMAQ_NOT_BUILT';
      throw err;
    }
  }
}

export async function startHub(): Promise<Hub> {
  assertBuilt();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'rdmaq-e2e-hub-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      path.join(DASHBOARD_DIR, 'dist/server/bin.js'),
      'serve',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--data',
      dataDir,
    ],
    {
      cwd: DASHBOARD_DIR,
      env: {
        ...process.env,
        RDMAQ_ADMIN_USER: ADMIN.name,
        RDMAQ_ADMIN_PASSWORD: ADMIN.password,
        RDMAQ_LOG_LEVEL: 'info',
        NEXT_TELEMETRY_DISABLED: '1',
        NODE_ENV: 'production',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dashboard did not start within 60 s:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('rdmaq dashboard listening')) continue;
        try {
          const j = JSON.parse(line) as { url?: string };
          if (j.url) {
            clearTimeout(timer);
            resolve(j.url);
          }
        } catch {
          // a partial line; wait for the rest
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`dashboard exited with ${code} before listening:\n${out}`));
    });
  });
  let stopped = false;
  return {
    url,
    dataDir,
    output: () => out,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Signs in over REST and returns the session cookie (`name=value`). */
export async function login(base: string, name: string, password: string): Promise<string> {
  const res = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base },
    body: JSON.stringify({ name, password }),
  });
  if (!res.ok) throw new Error(`login as ${name} failed: HTTP ${res.status} ${await res.text()}`);
  const cookie = res.headers.get('set-cookie')?.split(';')[0];
  if (!cookie) throw new Error('login answered without a session cookie');
  return cookie;
}

/** JSON request with the session cookie; throws with the hub's error body on a non-2xx answer. */
export async function rest<T>(
  base: string,
  cookie: string,
  method: string,
  p: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(base + p, {
    method,
    headers: { cookie, origin: base, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: HTTP ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}
