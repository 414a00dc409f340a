import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  debug?: boolean;
  /** pino level; `debug` wins. Default: LOG_LEVEL, else info. */
  level?: string;
  /** json: one object per line (log shippers); pretty: for a person at a terminal. */
  format?: 'json' | 'pretty';
  name?: string;
}

/**
 * Logs on stderr (stdout stays free for commands that print data): JSON lines,
 * or the same records as readable lines when a person is watching.
 * `redact` is a second fence: secrets are never passed to the logger anyway.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const json = pino.destination({ dest: 2, sync: false });
  return pino(
    {
      name: options.name ?? 'atkafka',
      level: options.debug ? 'debug' : (options.level ?? process.env.LOG_LEVEL?.toLowerCase() ?? 'info'),
      redact: { paths: ['password', '*.password', 'sasl.password', 'config.saslPassword'], censor: '[redacted]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.format === 'pretty' ? prettyStream(json, process.stderr.isTTY === true) : json,
  );
}

type Destination = { write(chunk: string): boolean; flushSync?: () => void };

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};

/**
 * `12:30:01.123 WARN  relay seq gap  lastSeq=5 seq=9 missing=3`: the record's time,
 * level, message and fields, one line each, written through the same async stream as
 * JSON would be (so writePlain's ordering holds). Lines that are not records pass as they are.
 */
function prettyStream(out: Destination, color: boolean): Destination {
  return {
    write(chunk: string): boolean {
      let text = '';
      for (const line of chunk.split('\n')) {
        if (line === '') continue;
        text += `${prettyLine(line, color)}\n`;
      }
      return out.write(text);
    },
    flushSync: () => out.flushSync?.(),
  };
}

export function prettyLine(line: string, color = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (rec === null || typeof rec !== 'object' || typeof rec.level !== 'number') return line;
  const { level, time, msg, name, ...fields } = rec;
  void name;
  const [label, hue] = LEVELS[level as number] ?? [String(level), ''];
  const clock = typeof time === 'string' ? time.slice(11, 23) : '';
  const rest = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) && v !== '' ? v : JSON.stringify(v)}`)
    .join(' ');
  const head = color ? `\x1b[90m${clock}\x1b[0m ${hue}${label}\x1b[0m` : `${clock} ${label}`;
  return `${head} ${String(msg ?? '')}${rest === '' ? '' : `  ${color ? `\x1b[90m${rest}\x1b[0m` : rest}`}`;
}

/**
 * A plain line through the logger's own stream: pino writes asynchronously, so a line written to
 * process.stderr directly could land before log lines still queued, and not be the last one.
 */
export function writePlain(logger: Logger, line: string, options: { sync?: boolean } = {}): void {
  const stream = (logger as unknown as Record<symbol, Destination>)[pino.symbols.streamSym]!;
  stream.write(`${line}\n`);
  if (options.sync) stream.flushSync?.();
}
