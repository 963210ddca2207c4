/**
 * A real VictoriaMetrics (Debian's `victoria-metrics`) for the TSDB tests (test/tsdb.test.ts) and the fleet
 * benchmark (`--tsdb compare`): started on a
 * free loopback port with its data in a temp dir, stopped (and restarted on the same port and data) on
 * demand.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const VM_BIN = process.env.RDMAQ_VICTORIA_METRICS ?? '/usr/bin/victoria-metrics';
export const vmMissing = existsSync(VM_BIN)
  ? undefined
  : `${VM_BIN} not found: install Debian's victoria-metrics (scripts/setup.sh does) to run the TSDB tests`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export class VictoriaMetrics {
  private proc: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<VictoriaMetrics> {
    const vm = new VictoriaMetrics(await freePort(), mkdtempSync(path.join(tmpdir(), 'rdmaq-vm-')));
    await vm.resume();
    return vm;
  }

  /** (Re)starts the process on the same port and data. */
  async resume(): Promise<void> {
    this.proc = spawn(
      VM_BIN,
      [
        `-httpListenAddr=127.0.0.1:${this.port}`,
        `-storageDataPath=${this.dir}`,
        '-retentionPeriod=2d',
        // Fresh samples queryable at once (the default hides the last 30 s).
        '-search.latencyOffset=0s',
        '-search.disableCache',
        '-loggerLevel=ERROR',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const end = Date.now() + 20_000;
    for (;;) {
      try {
        const r = await fetch(`${this.url}/health`);
        if (r.ok) return;
      } catch {
        // not yet listening
      }
      if (Date.now() > end) throw new Error('victoria-metrics did not start within 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the process (SIGTERM: it flushes what it holds) and waits for it to exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
    this.proc = undefined;
  }

  /** Synchronous last resort (process exit). */
  kill(): void {
    this.proc?.kill('SIGKILL');
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** An instant PromQL query: the value of each series (by its labels). */
  async query(
    q: string,
    timeMs = Date.now(),
  ): Promise<Array<{ metric: Record<string, string>; value: number }>> {
    const u = `${this.url}/api/v1/query?${new URLSearchParams({ query: q, time: String(timeMs / 1000) })}`;
    const r = await fetch(u);
    const body = (await r.json()) as {
      status: string;
      error?: string;
      data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    if (body.status !== 'success') throw new Error(`query ${q} failed: ${body.error}`);
    return body.data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  }

  /** A one-number query (0 when it has no result). */
  async scalar(q: string, timeMs = Date.now()): Promise<number> {
    const r = await this.query(q, timeMs);
    return r[0]?.value ?? 0;
  }
}
