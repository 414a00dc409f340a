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

type Destination = { write(chunk: string): boolean; flushSync?: () => void };

/**
 * A plain line through the logger's own stream: pino writes asynchronously, so a line written to
 * process.stderr directly could land before log lines still queued, and not be the last one.
 */
export function writePlain(logger: Logger, line: string, options: { sync?: boolean } = {}): void {
  const stream = (logger as unknown as Record<symbol, Destination>)[pino.symbols.streamSym]!;
  stream.write(`${line}\n`);
  if (options.sync) stream.flushSync?.();
}
