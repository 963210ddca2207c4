/** Runs real agents as child processes (dist/bin.js), the way systemd runs them. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { waitFor } from '../../../tooling/test-support/wait.js';

export const BIN = new URL('../dist/bin.js', import.meta.url).pathname;

export interface AgentProc {
  name: string;
  configFile: string;
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: string;
  httpPort: number;
  exited: Promise<number | null>;
  url(path: string): string;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * A temp dir in /dev/shm for sockets and ring files, created on first use (so a suite filtered out by -t
 * leaves nothing behind) and removed by cleanup().
 */
export function shmScratch(prefix: string): { readonly dir: string; cleanup: () => void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';
  let dir: string | undefined;
  return {
    get dir() {
      dir ??= mkdtempSync(join(base, `rdmaq-agent-${prefix}-`));
      return dir;
    },
    cleanup: () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function spawnAgent(
  name: string,
  dir: string,
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv = {},
): Promise<AgentProc> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run pnpm --filter @rdmaq/agent build first`);
  const configFile = join(dir, `${name}.yaml`);
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const proc = spawn(process.execPath, [BIN, 'run', '--config', configFile], {
    env: { PATH: process.env.PATH, RDMAQ_LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const a: AgentProc = {
    name,
    configFile,
    proc,
    lines: [],
    stderr: '',
    httpPort: 0,
    exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))),
    url: (path) => `http://127.0.0.1:${a.httpPort}${path}`,
    kill: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        a.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        a.lines.push({ msg: line });
      }
      i = buf.indexOf('\n');
    }
  });
  proc.stderr!.on('data', (d: Buffer) => {
    a.stderr += d.toString('utf8');
  });
  const running = await waitFor(
    `${name} to start`,
    () =>
      a.lines.find((l) => typeof l.msg === 'string' && l.msg.includes(' running')) ??
      (proc.exitCode !== null ? { exit: true } : undefined),
    30_000,
  );
  if ('exit' in running) throw new Error(`${name} exited at start: ${a.stderr}\n${JSON.stringify(a.lines)}`);
  a.httpPort = Number(String(running.http).split(':').pop());
  return a;
}

export async function stopAgent(a: AgentProc | undefined): Promise<void> {
  if (!a) return;
  if (a.proc.exitCode !== null || a.proc.signalCode !== null) return;
  a.kill('SIGTERM');
  const t = setTimeout(() => a.kill('SIGKILL'), 15_000);
  await a.exited;
  clearTimeout(t);
}

export async function getText(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

/** A free TCP port on loopback (bound then released; good enough for a test). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface PromServer {
  url: string;
  query(expr: string, time?: number): Promise<Array<{ labels: Record<string, string>; value: number }>>;
  stop(): Promise<void>;
}

/** Starts the Debian Prometheus on loopback with a temporary config and data dir, scraping every `scrapeMs`. */
export async function startPrometheus(dir: string, targets: number[], scrapeMs = 1000): Promise<PromServer> {
  const home = join(dir, `prometheus-${Date.now()}`);
  mkdirSync(home, { recursive: true });
  const config = join(home, 'prometheus.yml');
  writeFileSync(
    config,
    [
      `global: { scrape_interval: ${scrapeMs}ms, evaluation_interval: ${scrapeMs}ms }`,
      'scrape_configs:',
      '  - job_name: rdmaq',
      `    scrape_interval: ${scrapeMs}ms`,
      `    scrape_timeout: ${Math.floor(scrapeMs * 0.9)}ms`,
      `    static_configs: [{ targets: [${targets.map((p) => `'127.0.0.1:${p}'`).join(', ')}] }]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const proc = spawn(
    '/usr/bin/prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(home, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
    rmSync(home, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'prometheus to be ready',
      async () => {
        if (proc.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`);
        try {
          return (await fetch(`${url}/-/ready`)).status === 200;
        } catch {
          return false;
        }
      },
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    async query(expr, time) {
      const u = new URL('/api/v1/query', url);
      u.searchParams.set('query', expr);
      if (time !== undefined) u.searchParams.set('time', String(time));
      const body = (await (await fetch(u)).json()) as {
        status: string;
        error?: string;
        data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
      };
      if (body.status !== 'success') throw new Error(`PromQL ${expr}: ${body.error}`);
      return (body.data?.result ?? []).map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
    },
    stop,
  };
}
