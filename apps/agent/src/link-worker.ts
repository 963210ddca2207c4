/**
 * Entry of the data-path worker (`dataPath: worker`): runs the agent's LinkManager — listener and consumers,
 * senders, traffic generators, probes — on this thread's own event loop, so whatever the main thread does
 * (sampling, the hub WebSocket, HTTP, GC) never delays a record. The main thread's side is link-thread.ts;
 * the messages are declared in data-path.ts.
 *
 * Everything here answers requests from the main thread, one reply per request; link state changes and log
 * lines are pushed as they happen. Log lines go to the main thread's pino logger (one log stream), cut to
 * LOG_BOUNDS. An uncaught error ends the worker; the main thread logs it, marks the links down and starts a
 * new worker with backoff.
 *
 * This thread never ends with an shm link open: rdma-core's native Sender/Receiver touch their ring mapping in
 * their finalizers, which Node runs when a worker's environment is torn down, after the ring Buffer's own
 * finalizer has unmapped it — a SIGSEGV of the whole agent. So an uncaught error first closes the links
 * (bounded by FATAL_CLOSE_MS), then exits; a failed start closes what it opened.
 *
 * The rdma-core addon reads its libfabric variables from the C environment, which writes to process.env in a
 * worker do not reach: the main thread imports @rdmaq/rdma-core (its addon-env.ts) before starting this.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { MAX_LINKS_PER_SAMPLE } from '@rdmaq/shared';
import { realClock } from './clock.js';
import type { AgentConfig } from './config.js';
import {
  boundBindings,
  type FromWorker,
  LOG_BOUNDS,
  type SampleReply,
  type StartReply,
  type ToWorker,
  type WorkerInit,
} from './data-path.js';
import { errorCode, errorMessage } from './errors.js';
import { LoopLag } from './host.js';
import { type LinkEvent, LinkManager } from './links.js';
import { type BaseLogger, LOG_LEVELS, type LogLevel } from './logger.js';

if (isMainThread || !parentPort) {
  throw new Error('link-worker.js is the data-path worker of the agent: link-thread.ts starts it');
}
const port = parentPort;
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

/** How long closing the links may take after an uncaught error before the thread exits anyway. */
const FATAL_CLOSE_MS = 3000;

const LEVEL_VALUE: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};
const minLevel =
  (LEVEL_VALUE as Record<string, number>)[init.logLevel] ?? (init.logLevel === 'silent' ? 100 : 30);

/** A logger that posts {level, bindings, msg} to the main thread, which writes it with its pino logger. */
function postingLogger(bindings: Record<string, unknown>): BaseLogger {
  const method =
    (level: LogLevel) =>
    (a: Record<string, unknown> | string, b?: string): void => {
      if (LEVEL_VALUE[level] < minLevel) return;
      const [obj, msg] = typeof a === 'string' ? [{}, a] : [a, b ?? ''];
      post({
        t: 'log',
        level,
        bindings: boundBindings({ ...bindings, ...obj }),
        msg: msg.slice(0, LOG_BOUNDS.msgChars),
      });
    };
  const logger = Object.fromEntries(LOG_LEVELS.map((l) => [l, method(l)])) as Record<
    LogLevel,
    ReturnType<typeof method>
  >;
  return { ...logger, child: (more) => postingLogger({ ...bindings, ...more }) };
}

const logger = postingLogger({});
const rdma = await import('@rdmaq/rdma-core');
const links = new LinkManager({ config: init.config as AgentConfig, rdma, logger, clock: realClock });
links.on('state', (ev: LinkEvent) => post({ t: 'state', ev, view: links.view(ev.link) }));

// This thread's own event-loop lag: the figure that matters for queue latency.
const loop = new LoopLag(10);

async function handle(m: ToWorker): Promise<unknown> {
  switch (m.t) {
    case 'start': {
      try {
        await links.start();
      } catch (err) {
        await links.close().catch(() => {});
        throw err;
      }
      return {
        fabricListenerMissing: links.fabricListenerMissing,
        views: links.views(),
      } satisfies StartReply;
    }
    case 'sample': {
      const t0 = performance.now();
      let out = links.sample();
      const costMs = performance.now() - t0;
      let views = links.views();
      // Bounded message: the wire format takes MAX_LINKS_PER_SAMPLE links at most anyway.
      const omitted = Math.max(0, out.length - MAX_LINKS_PER_SAMPLE);
      if (omitted > 0) {
        out = out.slice(0, MAX_LINKS_PER_SAMPLE);
        views = views.slice(0, MAX_LINKS_PER_SAMPLE);
      }
      return { links: out, costMs, loop: loop.take(), views, omitted } satisfies SampleReply;
    }
    case 'rawStats':
      return links.rawStats(m.link);
    case 'trafficStats':
      return links.trafficStats();
    case 'drain':
      return links.drain(m.timeoutMs);
    case 'markAllDown':
      links.markAllDown(m.reason.slice(0, 2048));
      return undefined;
    case 'close':
      await links.close();
      loop.close();
      return undefined;
    case 'crash':
      // Tests: an uncaught exception, the way a bug would end this thread.
      setImmediate(() => {
        throw new Error(m.message.slice(0, LOG_BOUNDS.msgChars));
      });
      return undefined;
  }
}

let fatal = false;
function onFatal(err: unknown): void {
  if (fatal) return;
  fatal = true;
  const e = err instanceof Error ? err : new Error(String(err));
  post({
    t: 'fatal',
    error: {
      name: e.name.slice(0, 64),
      message: e.message.slice(0, LOG_BOUNDS.msgChars),
      stack: (e.stack ?? '').slice(0, LOG_BOUNDS.msgChars),
    },
  });
  const exit = (): never => process.exit(1);
  setTimeout(exit, FATAL_CLOSE_MS).unref();
  links.close().then(exit, exit);
}
process.on('uncaughtException', onFatal);
process.on('unhandledRejection', onFatal);

port.on('message', (m: ToWorker) => {
  handle(m).then(
    (value) => post({ t: 'reply', id: m.id, ok: true, value }),
    (err: unknown) =>
      post({
        t: 'reply',
        id: m.id,
        ok: false,
        error: { message: errorMessage(err).slice(0, LOG_BOUNDS.msgChars), code: errorCode(err) },
      }),
  );
});
