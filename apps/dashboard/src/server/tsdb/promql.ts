/**
 * Link and node history from the TSDB's PromQL HTTP API (`/api/v1/query_range`), in the shapes of
 * `Fleet.linkHistory` / `Fleet.nodeHistory`, so the UI does not know where history came from.
 *
 * A point at `ts` covers [ts, ts + step), like the SQLite roll-ups: each query is evaluated at the end of
 * its bucket with a look-back of one step (at least 5 s, so a 1 s-sampled counter has points to rate).
 * Throughput is `rate()` of the `_total` counters; percentiles are `histogram_quantile` over the rates of
 * the latency buckets (exact to the `le` bucket holding them, see LATENCY_BOUNDS_S); occupancy and up ratio
 * are `avg_over_time`.
 */
import { type HistoryPoint, type HostPoint, LinkMetric, parseLinkKey } from '@rdmaq/shared';
import { badRequest, HubError } from '../errors.js';
import type { TsdbHttp } from './http.js';
import { NodeMetric } from './remote-write.js';

/** A PromQL string literal. */
const str = (v: string): string => JSON.stringify(v);

interface Matrix {
  status: string;
  error?: string;
  data?: {
    resultType: string;
    result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }>;
  };
}

export class PromQl {
  constructor(
    private readonly queryUrl: string,
    private readonly http: TsdbHttp,
  ) {}

  /** Values of a one-series (aggregated) query by evaluation time (ms). NaN/Inf become absent. */
  async range(query: string, startMs: number, endMs: number, stepS: number): Promise<Map<number, number>> {
    const u = new URL(`${this.queryUrl.replace(/\/$/, '')}/api/v1/query_range`);
    const body = new URLSearchParams({
      query,
      start: String(startMs / 1000),
      end: String(endMs / 1000),
      step: `${stepS}s`,
    }).toString();
    let res: Awaited<ReturnType<TsdbHttp['request']>>;
    try {
      res = await this.http.request('POST', u.toString(), body, {
        'content-type': 'application/x-www-form-urlencoded',
      });
    } catch (err) {
      throw new HubError(
        'ERR_RDMAQ_TSDB',
        `the TSDB (${u.origin}) did not answer: ${(err as Error).message}`,
        502,
      );
    }
    let parsed: Matrix;
    try {
      parsed = JSON.parse(res.body.toString('utf8')) as Matrix;
    } catch {
      throw new HubError('ERR_RDMAQ_TSDB', `the TSDB answered HTTP ${res.status} without JSON`, 502);
    }
    if (res.status !== 200 || parsed.status !== 'success' || !parsed.data) {
      throw new HubError(
        'ERR_RDMAQ_TSDB',
        `the TSDB refused a history query (HTTP ${res.status}): ${parsed.error ?? ''}`,
        502,
      );
    }
    const out = new Map<number, number>();
    for (const s of parsed.data.result) {
      for (const [t, v] of s.values) {
        const x = Number(v);
        if (Number.isFinite(x)) out.set(Math.round(t * 1000), x);
      }
    }
    return out;
  }

  private grid(from: number, to: number, points: number) {
    const stepS = Math.max(1, Math.ceil((to - from) / 1000 / points));
    const stepMs = stepS * 1000;
    const base = Math.floor(from / stepMs) * stepMs;
    const last = Math.floor((to - 1) / stepMs) * stepMs;
    const win = `${Math.max(stepS, 5)}s`;
    return { stepS, stepMs, base, last, win };
  }

  async linkHistory(key: string, from: number, to: number, points: number) {
    const k = parseLinkKey(key);
    if (!k) throw badRequest('link: expected <nodeId>~<linkId>');
    const { stepS, stepMs, base, last, win } = this.grid(from, to, points);
    const sel = `{node=${str(k.nodeId)},link=${str(k.linkId)}}`;
    const rate = (m: string) => `sum(rate(${m}${sel}[${win}]))`;
    const q = (phi: number) =>
      `histogram_quantile(${phi}, sum by (le) (rate(${LinkMetric.queueLatency}_bucket${sel}[${win}]))) * 1e9`;
    const queries = {
      recordsPerS: rate(LinkMetric.records),
      bytesPerS: rate(LinkMetric.bytes),
      completionsPerS: rate(LinkMetric.completions),
      backpressurePerS: rate(LinkMetric.backpressure),
      // No error series until a first error: 0 wherever the link has records.
      errorsPerS: `${rate(LinkMetric.errors)} or 0 * ${rate(LinkMetric.records)}`,
      occupancyBytes: `avg(avg_over_time(${LinkMetric.occupancy}${sel}[${win}]))`,
      p50Ns: q(0.5),
      p99Ns: q(0.99),
      p999Ns: q(0.999),
      upRatio: `avg(avg_over_time(${LinkMetric.up}${sel}[${win}]))`,
    };
    const names = Object.keys(queries) as Array<keyof typeof queries>;
    const results = await Promise.all(
      names.map((n) => this.range(queries[n], base + stepMs, last + stepMs, stepS)),
    );
    const byName = new Map(names.map((n, i) => [n, results[i]!]));
    const times = new Set<number>();
    for (const m of results) for (const t of m.keys()) times.add(t);
    const r2 = (v: number | undefined) => (v === undefined ? null : Math.round(v * 100) / 100);
    const out: HistoryPoint[] = [...times]
      .sort((a, b) => a - b)
      .map((t) => {
        const v = (n: keyof typeof queries) => byName.get(n)!.get(t);
        return {
          ts: t - stepMs,
          recordsPerS: r2(v('recordsPerS')),
          bytesPerS: r2(v('bytesPerS')),
          completionsPerS: r2(v('completionsPerS')),
          backpressurePerS: r2(v('backpressurePerS')),
          errorsPerS: r2(v('errorsPerS')),
          occupancyBytes: v('occupancyBytes') ?? null,
          p50Ns: v('p50Ns') ?? null,
          p99Ns: v('p99Ns') ?? null,
          p999Ns: v('p999Ns') ?? null,
          upRatio: r2(v('upRatio')),
        };
      });
    // resolutionS: the TSDB keeps every 1 s sample; `source` tells it apart from the hub's memory.
    return { link: key, from, to, resolutionS: 1 as const, stepMs, points: out, source: 'tsdb' as const };
  }

  async nodeHistory(nodeId: string, from: number, to: number, points: number) {
    const { stepS, stepMs, base, last, win } = this.grid(from, to, points);
    const sel = `{node=${str(nodeId)}}`;
    const avg = (m: string, scale: number) => `avg(avg_over_time(${m}${sel}[${win}])) * ${scale}`;
    const [cpu, rss, lag] = await Promise.all([
      this.range(avg(NodeMetric.cpu, 100), base + stepMs, last + stepMs, stepS),
      this.range(avg(NodeMetric.rss, 1), base + stepMs, last + stepMs, stepS),
      this.range(avg(NodeMetric.lag, 1000), base + stepMs, last + stepMs, stepS),
    ]);
    const out: HostPoint[] = [];
    for (const t of [...cpu.keys()].sort((a, b) => a - b)) {
      const r = rss.get(t);
      const l = lag.get(t);
      if (r === undefined || l === undefined) continue;
      out.push({ ts: t - stepMs, cpuPercent: cpu.get(t)!, rssBytes: r, eventLoopLagMs: l });
    }
    return { node: nodeId, from, to, resolutionS: 1 as const, stepMs, points: out, source: 'tsdb' as const };
  }

  /** `check`: does the TSDB answer a query? */
  async ping(): Promise<string | undefined> {
    try {
      const now = Date.now();
      await this.range('vector(1)', now - 60_000, now, 60);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
}
