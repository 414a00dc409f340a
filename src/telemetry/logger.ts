import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stderr (stdout stays free for commands that print data).
 * `redact` is a second fence: secrets are never passed to the logger anyway.
 */
export function createLogger(options: { debug?: boolean; name?: string } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'atkafka',
      level: options.debug ? 'debug' : (process.env.LOG_LEVEL ?? 'info'),
      redact: { paths: ['password', '*.password', 'sasl.password', 'config.saslPassword'], censor: '[redacted]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: 2, sync: false }),
  );
}
