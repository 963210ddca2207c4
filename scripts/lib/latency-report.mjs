// The pure part of scripts/demo-latency.mjs: parse the targets, merge the hub's histogram slots per link end,
// judge them, format the report. No I/O here (apps/dashboard/test/demo-latency.test.ts tests it).
//
// Percentiles come from the hub's own histogram buckets (GET /api/latency?slots=1: 5 s slots of bucket
// counts per link end), merged bucket-wise with the shared histogram maths imported from the built
// @rdmaq/shared (packages/shared/dist/histogram.js, built by `make setup`): the same nearest-rank quantile
// and bucket midpoints as the hub, the agents and the native core.
import { mergeSparse, sparseQuantile } from '../../packages/shared/dist/histogram.js';

const UNITS = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 };

/** "200us", "200µs", "5ms", "0.5s", "1500ns" → nanoseconds. Throws on anything else. */
export function parseDuration(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)\s*$/.exec(String(text));
  if (!m) throw new Error(`"${text}" is not a duration: write e.g. 200us, 5ms, 1s`);
  return Number(m[1]) * UNITS[m[2]];
}

/** ns → "850 ns", "153 µs", "4.21 ms", "1.2 s": three significant digits (`digits` more after the point). */
export function formatNs(ns, digits = 0) {
  if (ns === null || ns === undefined || !Number.isFinite(ns)) return '—';
  const sig = (v) =>
    (v >= 100 ? v.toFixed(digits) : v >= 10 ? v.toFixed(1 + digits) : v.toFixed(2 + digits)).replace(
      /\.0+$|(\.\d*?)0+$/,
      '$1',
    );
  if (ns < 1e3) return `${sig(ns)} ns`;
  if (ns < 1e6) return `${sig(ns / 1e3)} µs`;
  if (ns < 1e9) return `${sig(ns / 1e6)} ms`;
  return `${sig(ns / 1e9)} s`;
}

/** Bucket-wise merge of a link end's slots and the quantiles of the result. */
export function mergeSlots(slots) {
  const merged = mergeSparse(...(slots ?? []).map((s) => s.buckets));
  let count = 0;
  for (const [, n] of merged) count += n;
  return {
    merged,
    count,
    p50: count ? sparseQuantile(merged, 0.5) : null,
    p99: count ? sparseQuantile(merged, 0.99) : null,
  };
}

/**
 * Judges every link end of a GET /api/latency?slots=1 answer against the targets (ns). Firing alerts
 * (GET /api/alerts `active`, state firing) are attached to their link end (label link_key) or listed apart.
 */
export function buildReport(latency, alerts, targets) {
  const firing = (alerts?.active ?? []).filter((a) => a.state === 'firing');
  const ends = [];
  const quiet = [];
  const all = [];
  for (const l of latency.links) {
    const m = mergeSlots(l.slots);
    const endAlerts = firing.filter((a) => a.labels?.link_key === l.key).map((a) => a.ruleName);
    if (m.count === 0) {
      quiet.push({ key: l.key, direction: l.direction, alerts: endAlerts });
      continue;
    }
    all.push(m.merged);
    const over = [];
    // One more digit than the table: a p50 of 200.7 µs must not read "200 µs > 200 µs".
    if (m.p50 > targets.p50) over.push(`p50 ${formatNs(m.p50, 1)} > ${formatNs(targets.p50)}`);
    if (m.p99 > targets.p99) over.push(`p99 ${formatNs(m.p99, 1)} > ${formatNs(targets.p99)}`);
    ends.push({
      key: l.key,
      providerClass: l.providerClass,
      provider: l.provider,
      state: l.state,
      count: m.count,
      p50: m.p50,
      p99: m.p99,
      over,
      alerts: endAlerts,
    });
  }
  ends.sort((a, b) => a.key.localeCompare(b.key));
  const total = mergeSlots(all.map((buckets) => ({ buckets })));
  const failed = ends.filter((e) => e.over.length > 0);
  const elsewhere = firing.filter((a) => !latency.links.some((l) => l.key === a.labels?.link_key));
  let verdict;
  if (ends.length === 0) verdict = { pass: false, why: 'no queue-latency records in the window' };
  else if (failed.length)
    verdict = { pass: false, why: `${failed.length} of ${ends.length} link ends over target` };
  else verdict = { pass: true, why: `all ${ends.length} link ends within target` };
  return {
    windowS: latency.windowS,
    targets,
    ends,
    quiet,
    total,
    firing: firing.length,
    elsewhere: elsewhere.map((a) => `${a.ruleName} ${a.labels?.node ?? ''}`.trim()),
    ...verdict,
  };
}

/** The report as lines of text. */
export function formatReport(r) {
  const lines = [];
  const w = Math.max(8, ...r.ends.map((e) => e.key.length));
  lines.push(`queue latency over the last ${r.windowS} s, from the hub's histograms (5 s slots merged)`);
  lines.push('');
  lines.push(
    `${'link end'.padEnd(w)}  ${'class'.padEnd(5)}  ${'records'.padStart(9)}  ${'p50'.padStart(9)}  ${'p99'.padStart(9)}  verdict`,
  );
  for (const e of r.ends) {
    const verdict = e.over.length ? `OVER (${e.over.join(', ')})` : 'ok';
    const alerts = e.alerts.length ? `  firing: ${e.alerts.join(', ')}` : '';
    lines.push(
      `${e.key.padEnd(w)}  ${String(e.providerClass ?? '?').padEnd(5)}  ${String(e.count).padStart(9)}  ${formatNs(e.p50).padStart(9)}  ${formatNs(e.p99).padStart(9)}  ${verdict}${alerts}`,
    );
  }
  lines.push(
    `${'all ends'.padEnd(w)}  ${''.padEnd(5)}  ${String(r.total.count).padStart(9)}  ${formatNs(r.total.p50).padStart(9)}  ${formatNs(r.total.p99).padStart(9)}`,
  );
  if (r.quiet.length) {
    const tx = r.quiet.filter((q) => q.direction === 'tx').length;
    const rx = r.quiet.filter((q) => q.direction !== 'tx');
    lines.push('');
    lines.push(
      `${r.quiet.length} link ends without queue-latency records in the window (${tx} tx ends: latency is measured at the receiving end)` +
        (rx.length ? `; receiving ends without records: ${rx.map((q) => q.key).join(', ')}` : ''),
    );
    const quietAlerts = r.quiet.filter((q) => q.alerts.length);
    for (const q of quietAlerts) lines.push(`  ${q.key}: firing ${q.alerts.join(', ')}`);
  }
  lines.push('');
  lines.push(
    `firing alerts: ${r.firing}${r.elsewhere.length ? ` (not on a link end: ${r.elsewhere.join(', ')})` : ''}`,
  );
  lines.push(
    `${r.pass ? 'PASS' : 'FAIL'}: ${r.why} (targets p50 ≤ ${formatNs(r.targets.p50)}, p99 ≤ ${formatNs(r.targets.p99)})`,
  );
  return lines;
}
