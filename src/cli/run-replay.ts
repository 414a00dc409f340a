import { startReplayServer } from '../replay/index.ts';
import { createLogger } from '../telemetry/logger.ts';
import { UsageError } from './flags.ts';

interface ReplayValues {
  get(name: 'file' | 'host'): string;
  get(name: 'port'): number;
  get(name: 'rate' | 'limit'): number | undefined;
  get(name: 'loop' | 'debug'): boolean;
}

/** `atkafka replay`: a local stand-in relay serving a recorded frames file. */
export async function runReplay(v: ReplayValues): Promise<number> {
  const rate = v.get('rate');
  const limit = v.get('limit');
  if (rate !== undefined && rate < 1) throw new UsageError('--rate must be at least 1');
  if (limit !== undefined && limit < 0) throw new UsageError('--limit must not be negative');
  const logger = createLogger({ debug: v.get('debug'), name: 'atkafka-replay' });
  let server;
  try {
    server = await startReplayServer({ frames: v.get('file'), host: v.get('host'), port: v.get('port'), rate, loop: v.get('loop'), limit, logger });
  } catch (err) {
    throw new UsageError(`cannot serve ${v.get('file')}: ${(err as Error).message}`);
  }
  // stdout carries just the URL so scripts can read it.
  process.stdout.write(`${server.url}\n`);
  logger.info({ url: server.url, frames: server.file.frames.length, rate, loop: v.get('loop'), limit }, 'replay relay listening');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  logger.info({ framesSent: server.stats.framesSent }, 'replay relay stopped');
  return 0;
}
