/** The hub's TSDB side: remote write out, PromQL history in. Built only when `tsdb` is configured. */
import type { TsdbConfig } from '../config.js';
import type { Logger } from '../log.js';
import { TsdbHttp } from './http.js';
import { PromQl } from './promql.js';
import { RemoteWriter } from './remote-write.js';

export interface Tsdb {
  writer: RemoteWriter;
  promql: PromQl;
  close(): Promise<void>;
}

export function createTsdb(cfg: TsdbConfig, log: Logger): Tsdb {
  const http = new TsdbHttp({
    headers: cfg.headers,
    basicAuth: cfg.basicAuth,
    tlsCaPath: cfg.tlsCaPath,
    timeoutMs: cfg.timeoutMs,
  });
  const writer = new RemoteWriter({
    url: cfg.remoteWriteUrl,
    http,
    log: log.child({ component: 'tsdb' }),
    batchSamples: cfg.batchSamples,
    queueSamples: cfg.queueSamples,
    batchDelayMs: cfg.batchDelayMs,
    retryBaseMs: cfg.retryBaseMs,
    retryMaxMs: cfg.retryMaxMs,
    writeIntervalMs: cfg.writeIntervalS * 1000,
  });
  log.info(
    { remoteWriteUrl: cfg.remoteWriteUrl, queryUrl: cfg.queryUrl, queueSamples: cfg.queueSamples },
    'TSDB configured: remote write on, history beyond memory from PromQL',
  );
  return {
    writer,
    promql: new PromQl(cfg.queryUrl, http),
    async close() {
      await writer.close(cfg.timeoutMs);
      http.close();
    },
  };
}

/**
 * `rdmaq-dashboard check`: does the TSDB take a (empty) remote-write request and answer a PromQL query?
 * Returns one line per direction and whether both answered.
 */
export async function checkTsdb(cfg: TsdbConfig): Promise<{ ok: boolean; lines: string[] }> {
  const http = new TsdbHttp({
    headers: cfg.headers,
    basicAuth: cfg.basicAuth,
    tlsCaPath: cfg.tlsCaPath,
    timeoutMs: cfg.timeoutMs,
  });
  const lines: string[] = [];
  let ok = true;
  try {
    const { default: snappy } = await import('snappy');
    const res = await http.request('POST', cfg.remoteWriteUrl, snappy.compressSync(Buffer.alloc(0)), {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'snappy',
      'x-prometheus-remote-write-version': '0.1.0',
    });
    if (res.status >= 200 && res.status < 300)
      lines.push(`remote write ${cfg.remoteWriteUrl}: OK (HTTP ${res.status})`);
    else {
      ok = false;
      lines.push(
        `remote write ${cfg.remoteWriteUrl}: HTTP ${res.status} ${res.body.toString('utf8', 0, 200).trim()} — check the URL (VictoriaMetrics: /api/v1/write, Mimir: /api/v1/push, Thanos Receive: /api/v1/receive) and auth`,
      );
    }
  } catch (err) {
    ok = false;
    lines.push(`remote write ${cfg.remoteWriteUrl}: no answer (${(err as Error).message})`);
  }
  const q = await new PromQl(cfg.queryUrl, http).ping();
  if (q === undefined) lines.push(`PromQL ${cfg.queryUrl}: OK`);
  else {
    ok = false;
    lines.push(`PromQL ${cfg.queryUrl}: ${q}`);
  }
  http.close();
  return { ok, lines };
}
