import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  level: string;
  /** auto: pretty when stdout is a terminal. */
  pretty: 'auto' | 'true' | 'false';
  nodeId: string;
}

/**
 * JSON lines on stdout (for journald / log shippers), human-readable when a person is watching.
 * pino-pretty runs in-process as a stream (no worker thread) — a TTY is not a hot path.
 */
export function createLogger(opts: LoggerOptions, stream: NodeJS.WritableStream = process.stdout): Logger {
  const isTty = 'isTTY' in stream && (stream as { isTTY?: boolean }).isTTY === true;
  const usePretty = opts.pretty === 'true' || (opts.pretty === 'auto' && isTty);
  const base = { node: opts.nodeId };
  const options = { level: opts.level, base, timestamp: pino.stdTimeFunctions.isoTime };
  if (usePretty) {
    return pino(options, pretty({ colorize: isTty, destination: stream, sync: true }));
  }
  return pino(options, stream);
}

/** pino's levels that carry a log method (silent is a threshold only). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogMethod {
  (obj: Record<string, unknown>, msg?: string): void;
  (msg: string): void;
}

/**
 * The part of pino's Logger the data path uses. A pino Logger is one; in the data-path worker it is a
 * facade that posts each line to the main thread, whose pino logger writes it (one log stream).
 */
export type BaseLogger = { [L in LogLevel]: LogMethod } & {
  child(bindings: Record<string, unknown>): BaseLogger;
};
