// Hostile Jetstream messages against the whole source (socket, zstd, parse, format): a frame that
// declares a huge size, one that hides it and expands past the cap, a record nested past the stack,
// and bytes that are not zstd. Each is skipped and counted as invalid input; the events around them
// are produced, and the process neither crashes nor allocates what the frame asks for.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { constants, zstdCompressSync } from 'node:zlib';

import { pino } from 'pino';
import { WebSocketServer } from 'ws';

import { JETSTREAM_DICTIONARY } from '../../src/format/jetstream-compress.ts';
import type { MessageSink } from '../../src/sink/kafka/types.ts';
import { JetstreamPipeline } from '../../src/sources/jetstream/pipeline.ts';
import { registry } from '../../src/telemetry/metrics.ts';
import { loadCorpusLines } from '../support/jetstream-server.ts';

/** Confirms every message at once: this test is about what reaches the sink, not about Kafka. */
class CaptureSink implements MessageSink {
  readonly values: string[] = [];
  #confirm: (t: unknown) => void = () => {};
  onConfirmed(h: (t: unknown) => void): void {
    this.#confirm = h;
  }
  send(_key: string, value: string | Uint8Array, token: unknown): void {
    this.values.push(typeof value === 'string' ? value : Buffer.from(value).toString());
    queueMicrotask(() => this.#confirm(token));
  }
  get inFlight(): number {
    return 0;
  }
  get inFlightBytes(): number {
    return 0;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

const withDict = (s: string | Buffer, params: Record<number, number> = {}) =>
  zstdCompressSync(Buffer.from(s), { dictionary: JETSTREAM_DICTIONARY, params });

async function invalid(reason: string): Promise<number> {
  const m = (await registry.getSingleMetric('atkafka_invalid_input')!.get()).values;
  return m.find((v) => v.labels.source === 'jetstream' && v.labels.reason === reason)?.value ?? 0;
}

describe('Jetstream source on hostile messages', () => {
  it('skips and counts a zstd bomb, a size-less frame past the cap, a record nested past the stack and non-zstd bytes; the events between them go on', async () => {
    const good = loadCorpusLines().filter((l) => l.includes('"kind":"commit"')).slice(0, 5);
    const base = JSON.parse(good[0]!) as { did: string; time_us: number; commit: { rev: string; collection: string; rkey: string; cid: string } };
    const c = base.commit;
    // Text, not JSON.stringify: the nesting that exhausts the stack would exhaust it here first.
    const nested = '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_000);
    const deep = `{"did":"${base.did}","time_us":${base.time_us + 1},"kind":"commit","commit":{"rev":"${c.rev}","operation":"create","collection":"${c.collection}","rkey":"3deep","record":${nested},"cid":"${c.cid}"}}`;
    // A well-formed event of 17 MB (over the 16 MB any message may be) compresses to a few hundred bytes:
    // were it decompressed, it would be produced, so only the guards keep it out.
    const huge = (rkey: string) => `{"did":"${base.did}","time_us":${base.time_us + 2},"kind":"commit","commit":{"rev":"${c.rev}","operation":"create","collection":"${c.collection}","rkey":"${rkey}","record":{"text":"${'a'.repeat(17 << 20)}"},"cid":"${c.cid}"}}`;
    const hostile: Buffer[] = [
      // The frame header says 17 MB: refused before anything is allocated.
      withDict(huge('3huge')),
      // No content size in the header: decompressed with a cap, and refused at it.
      withDict(huge('3hugeunsized'), { [constants.ZSTD_c_contentSizeFlag]: 0 }),
      withDict(deep),
      Buffer.from('not a zstd frame at all'),
    ];
    const frames = [withDict(good[0]!), ...hostile.flatMap((h, i) => [h, withDict(good[i + 1]!)])];

    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    wss.on('connection', (ws) => {
      for (const f of frames) ws.send(f, { binary: true });
    });
    await new Promise((r) => wss.once('listening', r));
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;

    const before = { frame: await invalid('invalid-frame'), record: await invalid('invalid-record') };
    const rssBefore = process.memoryUsage().rss;
    const sink = new CaptureSink();
    const pipeline = new JetstreamPipeline({
      hosts: [url],
      collections: undefined,
      dids: [],
      compress: true,
      cursorFile: undefined,
      initialCursor: 1,
      cursorSaveIntervalMs: 100,
      rewindUs: 5_000_000,
      stallTimeoutMs: 0,
      backoffInitialMs: 100,
      backoffMaxMs: 500,
      maxInFlight: 100,
      maxInFlightBytes: 1 << 30,
      format: 'atkafka',
      passCompressed: false,
      userAgent: 'atkafka-test',
      sink,
      logger: pino({ level: 'silent' }),
    });
    const stop = new AbortController();
    const running = pipeline.run(stop.signal);
    const deadline = Date.now() + 20_000;
    while (sink.values.length < good.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    await running;
    wss.close();

    assert.deepEqual(
      sink.values.map((v) => (JSON.parse(v) as { operation: { rkey: string } }).operation.rkey),
      good.map((l) => (JSON.parse(l) as { commit: { rkey: string } }).commit.rkey),
      'every good event, in order, and nothing else',
    );
    assert.equal((await invalid('invalid-frame')) - before.frame, 3, 'the bomb, the size-less frame past the cap, and the non-zstd bytes');
    assert.equal((await invalid('invalid-record')) - before.record, 1, 'the record nested past the stack');
    assert.ok(process.memoryUsage().rss - rssBefore < 200 << 20, 'nothing near what the frames asked for was kept');
  });
});
