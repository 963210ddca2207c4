/**
 * Demo mode's chaos buttons: the hub forwards an admin's request (cut, restore, slow, unslow, kill,
 * restart a demo host) to the demo process's unix socket (scripts/demo-chaos.mjs), which owns the network
 * namespaces and the agent processes. Off unless the demo started the hub with RDMAQ_DEMO_CHAOS_SOCKET: a
 * production hub has no such socket and answers 404.
 */
import { connect } from 'node:net';
import { z } from 'zod';
import { HubError } from './errors.js';

export const ChaosRequestSchema = z
  .object({
    action: z.enum(['cut', 'restore', 'slow', 'unslow', 'kill', 'restart']),
    node: z.string().regex(/^node-\d{1,2}$/, 'node: a demo host, node-1 … node-16'),
    rate: z
      .string()
      .regex(/^\d{1,6}(kbit|mbit|gbit)$/, 'rate: e.g. 20mbit, 500kbit, 1gbit')
      .optional(),
  })
  .strict();
export type ChaosRequest = z.infer<typeof ChaosRequestSchema>;

export interface ChaosNode {
  node: string;
  agent: 'running' | 'stopped';
  path: 'up' | 'cut';
  slowed: string | null;
}

/** Largest reply read from the demo (its status of 16 hosts is ~2 KB). */
const MAX_REPLY = 64 * 1024;

export class DemoChaos {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 10_000,
  ) {}

  status(): Promise<{ nodes: ChaosNode[] }> {
    return this.send({ action: 'status' }) as Promise<{ nodes: ChaosNode[] }>;
  }

  act(req: ChaosRequest): Promise<{ nodes: ChaosNode[] }> {
    return this.send(req) as Promise<{ nodes: ChaosNode[] }>;
  }

  private send(req: object): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const sock = connect(this.socketPath);
      let buf = '';
      const fail = (msg: string) => {
        clearTimeout(timer);
        sock.destroy();
        reject(new HubError('ERR_RDMAQ_DEMO_CHAOS', msg, 502));
      };
      const timer = setTimeout(
        () => fail(`the demo did not answer within ${this.timeoutMs} ms`),
        this.timeoutMs,
      );
      sock.setEncoding('utf8');
      sock.on('error', (err: NodeJS.ErrnoException) =>
        fail(
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
            ? 'the demo that started this hub is not running any more'
            : `demo chaos socket: ${err.message}`,
        ),
      );
      sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
      sock.on('data', (chunk: string) => {
        buf += chunk;
        if (buf.length > MAX_REPLY) return fail('the demo sent an oversized reply');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        sock.end();
        let reply: { ok?: boolean; error?: string; nodes?: ChaosNode[] };
        try {
          reply = JSON.parse(buf.slice(0, nl));
        } catch {
          return reject(new HubError('ERR_RDMAQ_DEMO_CHAOS', 'the demo sent a reply that is not JSON', 502));
        }
        if (reply.ok === false)
          return reject(new HubError('ERR_RDMAQ_DEMO_CHAOS', String(reply.error ?? 'refused'), 409));
        resolve(reply);
      });
    });
  }
}
