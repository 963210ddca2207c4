/**
 * rdmaq-perf's processes: the orchestrator (cli.ts) starts each end of a case as `cli.js __worker <json>` in a
 * process of its own, pinned to a core with taskset, and drives it over the fork IPC channel with one
 * choreography for every transport: listening {port?} → connect {port?} → connected → run → result → exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type Msg = { t: string; [k: string]: unknown };

/** The entry point every worker process runs (the CLI itself, with `__worker`). */
const ENTRY = fileURLToPath(new URL('./cli.js', import.meta.url));
export const WORKER_ARG = '__worker';

// ---- orchestrator side ------------------------------------------------------------------------------------

export interface SpawnOptions {
  /** Core to pin to (taskset); undefined: the scheduler places the process (as it does for the C baselines). */
  cpu?: number | undefined;
  /** Command line prefix, e.g. /usr/bin/time to measure the whole process's CPU. */
  wrap?: string[];
}

/** One worker process and its message queue. */
export class PerfWorker {
  readonly child: ChildProcess;
  private queue: Msg[] = [];
  private waiting: ((m: Msg) => void) | undefined;
  stderr = '';

  constructor(cfg: object, opts: SpawnOptions = {}) {
    const node = [process.execPath, ENTRY, WORKER_ARG, JSON.stringify(cfg)];
    const pin =
      opts.cpu !== undefined && existsSync('/usr/bin/taskset')
        ? ['/usr/bin/taskset', '-c', String(opts.cpu)]
        : [];
    const argv = [...(opts.wrap ?? []), ...pin, ...node];
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.child.on('message', (m: Msg) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(m);
      } else this.queue.push(m);
    });
  }

  /** The worker's next message; a `fatal` one (or an early exit, or the timeout) rejects. */
  next(timeoutMs = 300_000): Promise<Msg> {
    const q = this.queue.shift();
    if (q) return q.t === 'fatal' ? Promise.reject(fatalError(q)) : Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker timed out; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`worker exited early; stderr: ${this.stderr.trim()}`));
      };
      this.child.once('exit', onExit);
      this.waiting = (m) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        if (m.t === 'fatal') reject(fatalError(m));
        else resolve(m);
      };
    });
  }

  send(m: Msg): void {
    if (this.child.connected) this.child.send(m);
  }

  exited(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((r) => this.child.once('exit', () => r()));
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function fatalError(m: Msg): Error {
  return new Error(`${String(m.code ?? '')} ${String(m.message)}`.trim());
}

export interface PairOptions {
  /** Pin a to cpu0 and b to cpu1 (default true). */
  pin?: boolean;
  wrap?: string[];
  /** How long the run may take (default 900 s). */
  runTimeoutMs?: number;
}

/**
 * Runs a two-worker case: both listen (each may report a port), each is told the other's port and connects,
 * both run, both report; then both are told to exit, given a moment to close their links, and killed.
 */
export async function pairCase(
  a: object,
  b: object,
  opts: PairOptions = {},
): Promise<[Msg, Msg, PerfWorker, PerfWorker]> {
  const pin = opts.pin ?? true;
  const wrap = opts.wrap ?? [];
  const wa = new PerfWorker(a, { cpu: pin ? 0 : undefined, wrap });
  const wb = new PerfWorker(b, { cpu: pin ? 1 : undefined, wrap });
  try {
    const [la, lb] = await Promise.all([wa.next(), wb.next()]); // listening
    wa.send({ t: 'connect', port: lb.port });
    wb.send({ t: 'connect', port: la.port });
    await Promise.all([wa.next(), wb.next()]); // connected
    wa.send({ t: 'run' });
    wb.send({ t: 'run' });
    const runMs = opts.runTimeoutMs ?? 900_000;
    const [ra, rb] = await Promise.all([wa.next(runMs), wb.next(runMs)]);
    wa.send({ t: 'exit' });
    wb.send({ t: 'exit' });
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([wa.exited(), wb.exited()]),
      new Promise((r) => {
        grace = setTimeout(r, 5000);
      }),
    ]);
    clearTimeout(grace);
    return [ra, rb, wa, wb];
  } finally {
    wa.kill();
    wb.kill();
  }
}

// ---- worker side --------------------------------------------------------------------------------------------

/** Sends a message to the orchestrator. */
export function toParent(m: Msg): void {
  process.send?.(m);
}

/** Waits for the orchestrator's next message of type `t`. */
export function nextMessage(t: string): Promise<Msg> {
  return new Promise((resolve) => {
    const on = (m: Msg) => {
      if (m.t !== t) return;
      process.off('message', on);
      resolve(m);
    };
    process.on('message', on);
  });
}

/** Sends the result, then waits for the orchestrator's exit (both ends report before either closes). */
export async function report(res: Msg): Promise<void> {
  toParent(res);
  await nextMessage('exit');
}

/** Sends a worker's failure to the orchestrator. */
export function reportFatal(err: unknown): void {
  const e = err as { code?: unknown; message?: unknown };
  toParent({ t: 'fatal', code: typeof e.code === 'string' ? e.code : '', message: String(e.message ?? err) });
}
