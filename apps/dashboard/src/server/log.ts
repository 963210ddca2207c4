import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON logs; pretty on a TTY. */
export function createLogger(level: string): Logger {
  const pretty = process.stdout.isTTY && level !== 'silent';
  return pino({
    level,
    base: { svc: 'rdmaq-dashboard' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}
