/**
 * Host figures of the agent process for each sample: CPU % of one core since the previous sample, RSS,
 * event-loop lag (p99 of perf_hooks' delay histogram since the previous sample) and uptime. Always real
 * time (process.hrtime), whatever clock drives the sampler.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import type { HostFigures } from '@rdmaq/shared';

export class HostSampler {
  private readonly loop: IntervalHistogram;
  private lastCpu = process.cpuUsage();
  private lastAt = process.hrtime.bigint();
  private readonly startedAt = process.hrtime.bigint();

  constructor() {
    // 10 ms resolution: one timer per 10 ms costs nothing measurable and catches stalls ≥ 10 ms.
    this.loop = monitorEventLoopDelay({ resolution: 10 });
    this.loop.enable();
  }

  sample(): HostFigures {
    const now = process.hrtime.bigint();
    const cpu = process.cpuUsage(this.lastCpu);
    const elapsedUs = Number(now - this.lastAt) / 1000;
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    const cpuPercent = elapsedUs > 0 ? ((cpu.user + cpu.system) / elapsedUs) * 100 : 0;
    // The histogram's values include the timer resolution; report only the delay beyond it.
    const p99 = this.loop.count > 0 ? this.loop.percentile(99) : 0;
    const lagMs = Math.max(0, p99 / 1e6 - 10);
    this.loop.reset();
    return {
      cpuPercent: round(cpuPercent, 2),
      rssBytes: process.memoryUsage.rss(),
      eventLoopLagMs: round(lagMs, 3),
      uptimeS: round(Number(now - this.startedAt) / 1e9, 3),
    };
  }

  close(): void {
    this.loop.disable();
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
