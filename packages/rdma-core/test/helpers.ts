import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PEER = fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url));

export type PeerMessage = { t: string; [k: string]: unknown };

/** A forked peer process with a queue of the messages it sent. */
export class Peer {
  readonly child: ChildProcess;
  readonly messages: PeerMessage[] = [];
  private waiters: Array<{ pred: (m: PeerMessage) => boolean; resolve: (m: PeerMessage) => void }> = [];
  exitCode: number | null | undefined;
  private exited: Promise<void>;

  constructor(cfg: Record<string, unknown>) {
    this.child = fork(PEER, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: PeerMessage) => {
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first message (already received or future) matching `pred`; rejects on timeout or exit. */
  waitFor(pred: (m: PeerMessage) => boolean, timeoutMs = 60_000): Promise<PeerMessage> {
    const seen = this.messages.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `peer ${this.pid}: no matching message in ${timeoutMs} ms; got ${JSON.stringify(this.messages.slice(-5))}`,
            ),
          ),
        timeoutMs,
      );
      const fatal = this.messages.find((m) => m.t === 'fatal');
      if (fatal) {
        clearTimeout(timer);
        reject(new Error(`peer failed: ${JSON.stringify(fatal)}`));
        return;
      }
      this.waiters.push({
        pred: (m) => pred(m) || m.t === 'fatal',
        resolve: (m) => {
          clearTimeout(timer);
          if (m.t === 'fatal' && !pred(m)) reject(new Error(`peer failed: ${JSON.stringify(m)}`));
          else resolve(m);
        },
      });
      void this.exited.then(() => {
        setTimeout(() => {
          clearTimeout(timer);
          reject(
            new Error(
              `peer ${this.pid} exited (${this.exitCode}) before the expected message; last: ${JSON.stringify(this.messages.slice(-3))}`,
            ),
          );
        }, 50);
      });
    });
  }

  send(m: PeerMessage): void {
    if (this.child.connected) this.child.send(m);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.exitCode === undefined) this.child.kill(signal);
    return this.exited;
  }

  waitExit(): Promise<void> {
    return this.exited;
  }
}

/** CPU time (user + system) of a process in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / 100; // USER_HZ is 100 on Linux
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** rdmaq files in /dev/shm whose name contains `tag` (ring files are named after the link id). */
export function shmFiles(tag: string): string[] {
  return readdirSync('/dev/shm').filter((f) => f.startsWith('rdmaq-') && f.includes(tag));
}

let counter = 0;
/** A link id unique to this process and call, so parallel test files never share ring files. */
export function uniqueLinkId(name: string): string {
  counter += 1;
  return `t${process.pid}-${counter}-${name}`;
}
