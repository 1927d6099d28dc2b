import { pino, type Logger } from 'pino';

/** The root logger of a binary: JSON lines on stdout, level from --log-level. */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
export type { Logger };
