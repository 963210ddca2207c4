/**
 * Alert delivery: webhooks receiving the Alertmanager v4 payload, and optionally a real Alertmanager
 * (API v2, `POST /api/v2/alerts`) so sites keep their routing. Each destination has its own bounded queue
 * and a single in-flight request; failures retry with exponential backoff. `notify` only enqueues, so the
 * evaluation loop never waits on the network.
 */
import { type Alert, alertDescription, alertLinks, Backoff, formatMetric } from '@rdmaq/shared';
import type { Logger } from './log.js';

export interface WebhookAlertV4 {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface WebhookPayloadV4 {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: WebhookAlertV4[];
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

interface Job {
  body: string;
  attempts: number;
  notBefore: number;
  /** Delays between its attempts: retryBaseMs, doubling (no cap below the last retry's). */
  backoff: Backoff;
}

/** One destination: a FIFO of JSON bodies POSTed one at a time, retried with backoff. */
class Outbox {
  private readonly queue: Job[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  delivered = 0;
  failed = 0;
  dropped = 0;

  constructor(
    readonly url: string,
    private readonly log: Logger,
    private readonly opts: { timeoutMs: number; retries: number; retryBaseMs: number; maxQueue: number },
  ) {}

  push(body: string): void {
    if (this.closed) return;
    if (this.queue.length >= this.opts.maxQueue) {
      this.queue.shift();
      this.dropped++;
      this.log.warn({ url: this.url }, 'alert delivery queue full: dropped the oldest notification');
    }
    this.queue.push({
      body,
      attempts: 0,
      notBefore: 0,
      // One hub, one destination: nobody to fall out of step with, so no jitter (tests see exact delays).
      backoff: new Backoff({
        initialMs: this.opts.retryBaseMs,
        maxMs: this.opts.retryBaseMs * 2 ** this.opts.retries,
        jitter: 0,
      }),
    });
    this.pump();
  }

  private pump(): void {
    if (this.busy || this.closed || !this.queue.length) return;
    const job = this.queue[0]!;
    const wait = job.notBefore - Date.now();
    if (wait > 0) {
      if (!this.timer) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        this.timer.unref();
      }
      return;
    }
    this.busy = true;
    void this.send(job).finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  private async send(job: Job): Promise<void> {
    job.attempts++;
    let retry = false;
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: job.body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        this.queue.shift();
        this.delivered++;
        return;
      }
      retry = res.status >= 500 || res.status === 429 || res.status === 408;
      this.log.warn({ url: this.url, status: res.status, attempt: job.attempts }, 'alert delivery refused');
    } catch (err) {
      retry = true;
      this.log.warn(
        { url: this.url, err: (err as Error).message, attempt: job.attempts },
        'alert delivery failed',
      );
    }
    if (retry && job.attempts <= this.opts.retries) {
      job.notBefore = job.backoff.nextAt();
    } else {
      this.queue.shift();
      this.failed++;
      this.log.error({ url: this.url, attempts: job.attempts }, 'alert notification given up');
    }
  }

  pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

export interface NotifierOptions {
  webhooks: string[];
  alertmanagerUrl?: string | undefined;
  externalUrl: string;
  timeoutMs: number;
  retries: number;
  retryBaseMs: number;
  alertmanagerResendMs: number;
}

const iso = (ms: number | null) => (ms === null ? ZERO_TIME : new Date(ms).toISOString());

export class Notifier {
  private readonly hooks: Outbox[];
  private readonly am: Outbox | undefined;
  private lastResend = 0;

  constructor(
    private readonly opts: NotifierOptions,
    log: Logger,
  ) {
    const o = {
      timeoutMs: opts.timeoutMs,
      retries: opts.retries,
      retryBaseMs: opts.retryBaseMs,
      maxQueue: 1000,
    };
    this.hooks = opts.webhooks.map((u) => new Outbox(u, log, o));
    this.am = opts.alertmanagerUrl
      ? new Outbox(`${opts.alertmanagerUrl.replace(/\/$/, '')}/api/v2/alerts`, log, o)
      : undefined;
  }

  private generatorUrl(a: Alert): string {
    return `${this.opts.externalUrl.replace(/\/$/, '')}/alerts?id=${encodeURIComponent(a.id)}`;
  }

  /**
   * The same texts as the dashboard (shared format.ts): `summary` and `description` with value and
   * threshold in the metric's unit, `value`/`threshold` in that unit too (the raw numbers in `value_raw`,
   * `threshold_raw`), and the pages to open: `url` (the link's page, else the node's), `link_url`,
   * `node_url`, `peer_url` — absolute under the dashboard's external URL (relative when it has none).
   */
  private annotations(a: Alert): Record<string, string> {
    const base = this.opts.externalUrl;
    const links = alertLinks(a.labels, base);
    const unit = (v: number | null) => (v === null ? '' : a.metric ? formatMetric(a.metric, v) : String(v));
    return {
      summary: a.summary,
      description: alertDescription(a, base),
      value: unit(a.value),
      threshold: unit(a.threshold),
      value_raw: a.value === null ? '' : String(a.value),
      threshold_raw: String(a.threshold),
      ...(links.link || links.node ? { url: (links.link ?? links.node)! } : {}),
      ...(links.link ? { link_url: links.link } : {}),
      ...(links.node ? { node_url: links.node } : {}),
      ...(links.peer ? { peer_url: links.peer } : {}),
      ...(a.ack ? { acknowledged_by: a.ack.by, ack_comment: a.ack.comment } : {}),
    };
  }

  /** Builds the Alertmanager v4 webhook payloads for a batch of changes: one group per rule. */
  buildWebhookPayloads(alerts: Alert[]): WebhookPayloadV4[] {
    const groups = new Map<string, Alert[]>();
    for (const a of alerts) {
      const g = groups.get(a.labels.alertname ?? a.ruleName) ?? [];
      g.push(a);
      groups.set(a.labels.alertname ?? a.ruleName, g);
    }
    const out: WebhookPayloadV4[] = [];
    for (const [alertname, list] of groups) {
      const items: WebhookAlertV4[] = list.map((a) => ({
        status: a.state === 'resolved' ? 'resolved' : 'firing',
        labels: a.labels,
        annotations: this.annotations(a),
        startsAt: iso(a.firedAt ?? a.activeAt),
        endsAt: a.state === 'resolved' ? iso(a.resolvedAt) : ZERO_TIME,
        generatorURL: this.generatorUrl(a),
        fingerprint: a.id,
      }));
      const common = (pick: (i: WebhookAlertV4) => Record<string, string>) => {
        const first = pick(items[0]!);
        const c: Record<string, string> = {};
        for (const [k, v] of Object.entries(first)) if (items.every((i) => pick(i)[k] === v)) c[k] = v;
        return c;
      };
      out.push({
        version: '4',
        groupKey: `{}:{alertname="${alertname}"}`,
        truncatedAlerts: 0,
        status: items.some((i) => i.status === 'firing') ? 'firing' : 'resolved',
        receiver: 'rdmaq-dashboard',
        groupLabels: { alertname },
        commonLabels: common((i) => i.labels),
        commonAnnotations: common((i) => i.annotations),
        externalURL: this.opts.externalUrl,
        alerts: items,
      });
    }
    return out;
  }

  private amBody(alerts: Alert[]): string {
    return JSON.stringify(
      alerts.map((a) => ({
        labels: a.labels,
        annotations: this.annotations(a),
        startsAt: iso(a.firedAt ?? a.activeAt),
        ...(a.state === 'resolved' ? { endsAt: iso(a.resolvedAt) } : {}),
        generatorURL: this.generatorUrl(a),
      })),
    );
  }

  /** Newly firing or resolved alerts (never blocks: enqueues). */
  notify(alerts: Alert[]): void {
    if (!alerts.length) return;
    for (const p of this.buildWebhookPayloads(alerts)) {
      const body = JSON.stringify(p);
      for (const h of this.hooks) h.push(body);
    }
    this.am?.push(this.amBody(alerts));
  }

  /** Alertmanager forgets alerts it stops hearing about: re-send every firing, unsilenced one periodically. */
  tick(now: number, firing: Alert[]): void {
    if (!this.am || now - this.lastResend < this.opts.alertmanagerResendMs) return;
    this.lastResend = now;
    const live = firing.filter((a) => a.silencedBy.length === 0);
    if (live.length) this.am.push(this.amBody(live));
  }

  stats() {
    return [...this.hooks, ...(this.am ? [this.am] : [])].map((o) => ({
      url: o.url,
      pending: o.pending(),
      delivered: o.delivered,
      failed: o.failed,
      dropped: o.dropped,
    }));
  }

  close(): void {
    for (const h of this.hooks) h.close();
    this.am?.close();
  }
}
