/** The hub's TSDB side (issue 17): remote write out, PromQL history in. Built only when `tsdb` is configured. */
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
