import { pino } from 'pino';
import type { Logger as PinoLogger, LevelWithSilent } from 'pino';

export type Logger = PinoLogger;

/**
 * Paths pino removes from every log line, whatever a caller passes. Tokens and target credentials
 * never reach a log: engines log identities (`identitySummary`) and masked command text only.
 */
export const REDACT_PATHS = [
  'token',
  'password',
  'authorization',
  'target',
  '*.token',
  '*.password',
  '*.authorization',
  '*.target',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Append JSON lines to this file instead of stdout. */
  file?: string;
}

/** JSON logs (one object per line) with secrets redacted by path. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: { service: 'gatehouse' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.file) return pino(options, pino.destination({ dest: opts.file, mkdir: true, sync: false }));
  return pino(options);
}

/** A logger that writes nothing (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
