/** One HTTP(S) client for the TSDB: keep-alive, per-request timeout, optional CA, auth headers. */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { HubError } from '../errors.js';

export interface TsdbHttpOptions {
  headers: Record<string, string>;
  basicAuth?: { username: string; password: string } | undefined;
  tlsCaPath?: string | undefined;
  timeoutMs: number;
}

export interface HttpReply {
  status: number;
  body: Buffer;
}

export class TsdbHttp {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  private readonly httpsAgent: https.Agent;
  private readonly headers: Record<string, string>;

  constructor(private readonly o: TsdbHttpOptions) {
    let ca: Buffer | undefined;
    if (o.tlsCaPath) {
      try {
        ca = readFileSync(o.tlsCaPath);
      } catch (err) {
        throw new HubError(
          'ERR_RDMAQ_CONFIG',
          `cannot read the TSDB CA certificate ${o.tlsCaPath}: ${(err as Error).message}; fix tsdb.tlsCaPath (RDMAQ_TSDB_CA)`,
        );
      }
    }
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 8, ...(ca ? { ca } : {}) });
    this.headers = { 'user-agent': 'rdmaq-hub', ...o.headers };
    if (o.basicAuth) {
      const { username, password } = o.basicAuth;
      this.headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
  }

  request(
    method: 'GET' | 'POST',
    url: string,
    body?: Buffer | string,
    headers: Record<string, string> = {},
  ): Promise<HttpReply> {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        u,
        {
          method,
          agent: u.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          headers: {
            ...this.headers,
            ...headers,
            ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}),
          },
          timeout: this.o.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`no answer within ${this.o.timeoutMs} ms (tsdb.timeoutMs)`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
