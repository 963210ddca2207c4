/**
 * Real processes for cross-package tests: the built bins of the agent and the dashboard, started as an
 * operator would, with their output kept for the failure message and every process killed at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(new URL('../../..', import.meta.url).pathname);
export const agentBin = join(repoRoot, 'apps/agent/dist/bin.js');
export const dashboardBin = join(repoRoot, 'apps/dashboard/dist/server/bin.js');

export interface Proc {
  name: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const running = new Set<Proc>();

export function startProc(name: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 200_000) out = out.slice(-100_000); // the tail is what explains a failure
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const proc: Proc = { name, child, output: () => out, exited };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

export async function stopProc(
  proc: Proc,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 10_000,
): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => stopProc(p)));
}

/** A TCP port free right now on 127.0.0.1 (for daemons whose config wants a fixed port). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `rdmaq-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * How these suites poll (with the repo's `waitFor`): their probes are HTTP requests to real processes, so
 * every 250 ms, for up to 30 s unless a call says otherwise.
 */
export const POLL = { timeoutMs: 30_000, everyMs: 250 };
