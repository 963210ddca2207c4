/**
 * Helpers of the fabric tests: child processes running test/fabric-peer.mjs (one link end each), read line by
 * line as JSON events, always killed at the end; network namespaces for the veth tests.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../../tooling/test-support/wait.js';

const here = dirname(fileURLToPath(import.meta.url));
export const PEER = join(here, 'fabric-peer.mjs');
export const SECRET = 'fabric-test-secret-0123456789';

export type PeerEvent = { ev: string; [k: string]: unknown };

export class Peer {
  readonly proc: ChildProcess;
  readonly events: PeerEvent[] = [];
  readonly stderr: string[] = [];
  private waiters: Array<() => void> = [];
  exited = false;
  exitCode: number | null = null;

  constructor(args: string[], netns?: string) {
    const cmd = netns ? 'ip' : process.execPath;
    const argv = netns ? ['netns', 'exec', netns, process.execPath, ...args] : args;
    this.proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      try {
        this.events.push(JSON.parse(l) as PeerEvent);
      } catch {
        this.stderr.push(l);
      }
      this.notify();
    });
    createInterface({ input: this.proc.stderr! }).on('line', (l) => {
      this.stderr.push(l);
    });
    this.proc.on('exit', (code) => {
      this.exited = true;
      this.exitCode = code;
      this.notify();
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits for the first event matching `pred` (rejects on timeout or when the process exits first). */
  async waitFor(pred: (e: PeerEvent) => boolean, timeoutMs: number, what: string): Promise<PeerEvent> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (this.exited) {
        throw new Error(
          `${what}: peer exited (${this.exitCode}) first; stderr: ${this.stderr.slice(-5).join(' | ')}`,
        );
      }
      const left = end - Date.now();
      if (left <= 0)
        throw new Error(
          `${what}: timeout after ${timeoutMs} ms; last events: ${JSON.stringify(this.events.slice(-3))}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The latest progress event's field. */
  latest(field: string): number {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if (e.ev === 'progress' && typeof e[field] === 'number') return e[field] as number;
    }
    return 0;
  }

  kill9(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }

  /** Waits up to `timeoutMs` for the process to exit; its exit code (null when a signal ended it or it is still running). */
  async exit(timeoutMs = 10_000): Promise<number | null> {
    await waitFor('the peer to exit', () => this.exited, timeoutMs).catch(() => {});
    return this.exitCode;
  }
}

const live = new Set<Peer>();

export function startPeer(mode: 'send' | 'recv', opts: Record<string, unknown>, netns?: string): Peer {
  const p = new Peer([PEER, mode, JSON.stringify({ secret: SECRET, ...opts })], netns);
  live.add(p);
  return p;
}

/** Kills every peer still running (afterEach). */
export async function killAll(): Promise<void> {
  for (const p of live) {
    p.kill9();
    await p.exit(5000);
  }
  live.clear();
}

export async function startReceiver(
  opts: Record<string, unknown>,
  netns?: string,
): Promise<{ peer: Peer; port: number }> {
  const peer = startPeer('recv', opts, netns);
  const ready = await peer.waitFor((e) => e.ev === 'ready', 15_000, 'receiver ready');
  return { peer, port: ready.port as number };
}

export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rdmaq-fabric-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The receiving application's durable position (next wanted sequence), as fabric-peer.mjs writes it. */
export function readPos(file: string): number {
  const b = readFileSync(file);
  return b.length >= 8 ? b.readDoubleLE(0) : 0;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Two network namespaces joined by a veth pair; remove() deletes both (and with them the pair). */
export function makeNetns(tag: string): {
  a: string;
  b: string;
  ipA: string;
  ipB: string;
  vethA: string;
  remove: () => void;
} {
  const id = `${process.pid % 10000}${tag}`;
  const a = `rdmaq-${id}-a`;
  const b = `rdmaq-${id}-b`;
  const vethA = `rq${id}a`.slice(0, 15);
  const vethB = `rq${id}b`.slice(0, 15);
  const octet = 10 + (process.pid % 200);
  const ipA = `10.77.${octet}.1`;
  const ipB = `10.77.${octet}.2`;
  const remove = (): void => {
    for (const ns of [a, b]) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // not there
      }
    }
  };
  remove();
  try {
    sh('ip', ['netns', 'add', a]);
    sh('ip', ['netns', 'add', b]);
    sh('ip', ['link', 'add', vethA, 'netns', a, 'type', 'veth', 'peer', 'name', vethB, 'netns', b]);
    sh('ip', ['-n', a, 'addr', 'add', `${ipA}/24`, 'dev', vethA]);
    sh('ip', ['-n', b, 'addr', 'add', `${ipB}/24`, 'dev', vethB]);
    for (const [ns, dev] of [
      [a, vethA],
      [b, vethB],
    ] as const) {
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { a, b, ipA, ipB, vethA, remove };
}
