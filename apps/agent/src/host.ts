/**
 * Host figures of the agent process for each sample: CPU % of one core since the previous sample, RSS,
 * event-loop lag of the main thread (p99 of the timer delay since the previous sample, see LoopLag) and
 * uptime. Always real time (process.hrtime), whatever clock drives the sampler.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { HostFigures } from '@rdmaq/shared';

/**
 * Event-loop lag of the calling thread: a timer every `resolutionMs` records how late it fires; take()
 * gives the p99 and the largest delay beyond the resolution since the previous take().
 *
 * Not perf_hooks.monitorEventLoopDelay: its reset() also forgets when its timer last fired, so the first
 * delay after each reset is dropped — a stall that starts right after a sample (the sample's own work, the
 * hub send it triggers, a GC) never showed. Here the last firing survives take().
 */
export class LoopLag {
  private readonly hist: RecordableHistogram = createHistogram();
  private prev = process.hrtime.bigint();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly resolutionMs = 10) {
    // 10 ms: one timer per 10 ms costs nothing measurable and catches stalls ≥ 10 ms.
    this.timer = setInterval(() => {
      const now = process.hrtime.bigint();
      this.hist.record(Math.max(1, Number(now - this.prev)));
      this.prev = now;
    }, resolutionMs);
    this.timer.unref();
  }

  take(): { lagMs: number; maxMs: number } {
    const h = this.hist;
    // The recorded delays include the timer period; report only the delay beyond it.
    const beyond = (ns: number) => round(Math.max(0, ns / 1e6 - this.resolutionMs), 3);
    const out =
      h.count > 0 ? { lagMs: beyond(h.percentile(99)), maxMs: beyond(h.max) } : { lagMs: 0, maxMs: 0 };
    h.reset();
    return out;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

export class HostSampler {
  private readonly loop = new LoopLag(10);
  private lastCpu = process.cpuUsage();
  private lastAt = process.hrtime.bigint();
  private readonly startedAt = process.hrtime.bigint();

  sample(): HostFigures {
    const now = process.hrtime.bigint();
    const cpu = process.cpuUsage(this.lastCpu);
    const elapsedUs = Number(now - this.lastAt) / 1000;
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    const cpuPercent = elapsedUs > 0 ? ((cpu.user + cpu.system) / elapsedUs) * 100 : 0;
    return {
      cpuPercent: round(cpuPercent, 2),
      rssBytes: process.memoryUsage.rss(),
      eventLoopLagMs: this.loop.take().lagMs,
      uptimeS: round(Number(now - this.startedAt) / 1e9, 3),
    };
  }

  close(): void {
    this.loop.close();
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
