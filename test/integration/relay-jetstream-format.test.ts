// --format jetstream from the relay: the real capture through replay relay -> atkafka CLI -> real Kafka
// equals what a real Jetstream server wrote for the same frames (apart from time_us and that server's
// extra cursor); --jetstream-compress makes each message a zstd frame with Jetstream's dictionary that
// node:zlib and the zstd CLI decode with that dictionary.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { zstdDecompressSync } from 'node:zlib';

import { startReplayServer } from '../../src/replay/index.ts';
import { readCursor, startBridge, waitFor } from '../support/bridge.ts';
import { corpusFrames, lastSeq } from '../support/corpus.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { javaPartition, readTopic, readTopicRaw } from '../support/kafka-read.ts';

const run = promisify(execFile);
const frames = corpusFrames();
const LAST = lastSeq(frames);
const DICTIONARY = fileURLToPath(new URL('../../src/format/zstd/legacy_subscribe.zdict', import.meta.url));
const jetstreamLines = zstdDecompressSync(readFileSync(new URL('../fixtures/jetstream/events.jsonl.zst', import.meta.url))).toString().trim().split('\n');
const withoutClock = (line: string) => line.replace(/,"time_us":\d+/, '').replace(/,"cursor":\d+/, '');

/** Lines by DID, each DID's in order (Kafka orders per key; that Jetstream server interleaved DIDs its own way). */
function byDid(lines: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const l of lines) {
    const did = (JSON.parse(l) as { did: string }).did;
    m.set(did, [...(m.get(did) ?? []), withoutClock(l)]);
  }
  return m;
}

describe('relay -> Kafka in the Jetstream shape', () => {
  let broker: TestBroker;
  let dir: string;
  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-js-format-'));
  });
  after(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function bridgeRun(topic: string, extra: string[]): Promise<void> {
    await using relay = await startReplayServer({ frames });
    const cursorFile = join(dir, `${topic}.json`);
    const b = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms', ...extra]);
    await waitFor('cursor at the last corpus seq', async () => (await readCursor(cursorFile)) === LAST, 60_000);
    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0, b.logs());
  }

  it('--format jetstream: field for field what Jetstream v1 writes, keyed and partitioned as before', async () => {
    await bridgeRun('js-plain', ['--format', 'jetstream']);
    const got = await readTopic(broker.bootstrap, 'js-plain');
    assert.equal(got.length, jetstreamLines.length);
    assert.deepEqual(byDid(got.map((m) => m.value)), byDid(jetstreamLines));
    for (const m of got) {
      const v = JSON.parse(m.value) as { did: string; time_us: number; kind: string };
      assert.equal(m.key, v.did);
      assert.equal(m.partition, javaPartition(m.key, 200));
      assert.ok(Number.isSafeInteger(v.time_us) && Math.abs(v.time_us / 1000 - Date.now()) < 120_000, 'time_us: when atkafka received the frame');
      assert.equal(m.headers.find(([k]) => k === 'kind')?.[1], v.kind);
    }
  });

  it('--jetstream-compress: one zstd frame per message with the dictionary id in a header; zlib and the zstd CLI decode it', async () => {
    await bridgeRun('js-zstd', ['--format', 'jetstream', '--jetstream-compress']);
    const got = await readTopicRaw(broker.bootstrap, 'js-zstd');
    assert.equal(got.length, jetstreamLines.length);
    const dictionary = readFileSync(DICTIONARY);
    const plain: string[] = [];
    let compressed = 0;
    let raw = 0;
    for (const m of got) {
      assert.deepEqual(m.value.subarray(0, 4), Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'a zstd frame');
      assert.equal(m.headers.find(([k]) => k === 'content-encoding')?.[1], 'zstd');
      assert.equal(m.headers.find(([k]) => k === 'zstd-dictionary')?.[1], '1612007021');
      assert.throws(() => zstdDecompressSync(m.value), 'needs the dictionary');
      const text = zstdDecompressSync(m.value, { dictionary }).toString();
      plain.push(text);
      compressed += m.value.length;
      raw += Buffer.byteLength(text);
    }
    assert.deepEqual(byDid(plain), byDid(jetstreamLines));
    assert.ok(compressed < raw * 0.7, `the dictionary pays off on single messages: ${compressed} of ${raw} bytes`);
    // The zstd CLI, an independent decoder, with Jetstream's dictionary file.
    const file = join(dir, 'one.zst');
    await writeFile(file, got[0]!.value);
    const { stdout } = await run('zstd', ['-d', '-q', '-c', '-D', DICTIONARY, file]);
    assert.equal(stdout, plain[0]);
  });
});
