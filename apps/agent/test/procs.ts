/** Runs real agents as child processes (dist/bin.js), the way systemd runs them. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './helpers.js';

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

/** A temp dir in /dev/shm for sockets and ring files, removed by cleanup(). */
export function shmScratch(prefix: string): { dir: string; cleanup: () => void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';
  const dir = mkdtempSync(join(base, `rdmaq-agent-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
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
