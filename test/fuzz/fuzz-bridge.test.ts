// Fuzzing end to end: a few hundred frames mixing the real capture with seeded
// mutated and hostile ones (valid-but-hostile records included, a far-future
// seq in the middle), served by the replay relay to the real `atkafka firehose
// relay` CLI, into a real broker, read back with kcat. What must come out is
// the oracle's (test/support/fuzz-stream.ts), not atkafka's.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { startReplayServer, type ReplayServer } from '../../src/replay/index.ts';
import { metricValue, startBridge, type Bridge } from '../support/bridge.ts';
import { recordHashProblem } from '../support/fuzz-check.ts';
import { buildFuzzStream, messageKey } from '../support/fuzz-stream.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { readTopic } from '../support/kafka-read.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 1);
const stream = buildFuzzStream({ seed: SEED, generated: 150 });

interface Run {
  exitedEarly: number | string | undefined;
  exitCode: number | string;
  metrics: string;
  messages: { key: string; value: string }[];
  logs: string;
}

/** Waits until the relay has sent everything and the bridge's counters stop moving (or it died). */
async function settle(bridge: Bridge, relay: ReplayServer, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let since = Date.now();
  let exited = false;
  void bridge.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    let text: string;
    try {
      text = await bridge.metrics();
    } catch {
      await sleep(200);
      continue;
    }
    const snapshot = ['atkafka_handled_events', 'atkafka_invalid_input', 'atkafka_relay_duplicate_events', 'atkafka_produced_events', 'atkafka_kafka_in_flight'].map((m) => metricValue(text, m)).join(' ');
    const idle = relay.stats.framesSent === stream.frames.length && metricValue(text, 'atkafka_kafka_in_flight') === 0 && metricValue(text, 'atkafka_decode_backlog_frames') === 0;
    if (snapshot !== last || !idle) {
      last = snapshot;
      since = Date.now();
    } else if (Date.now() - since > 1_500) {
      return text;
    }
    await sleep(200);
  }
  return (await bridge.metrics().catch(() => '')) ?? '';
}

function counts(keys: string[]): Map<string, number> {
  const c = new Map<string, number>();
  for (const k of keys) c.set(k, (c.get(k) ?? 0) + 1);
  return c;
}

/** Which frame a message key belongs to, for failure messages. */
function frameOfKey(key: string): string {
  const i = stream.frames.findIndex((f) => {
    const v = f.verdict;
    return 'did' in v && 'time' in v && key.includes(v.did) && (key.includes(v.time) || ('seq' in v && key.includes(` ${v.seq} `)));
  });
  return i < 0 ? '?' : `frame ${i} (${stream.frames[i]!.label}, seq ${'seq' in stream.frames[i]!.verdict ? (stream.frames[i]!.verdict as { seq: number }).seq : '-'})`;
}

let broker: TestBroker;
let dir: string;
before(async () => {
  broker = await startTestBroker();
  dir = await mkdtemp(join(tmpdir(), 'atkafka-fuzz-'));
});
after(async () => {
  await broker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

for (const threads of ['0', '1']) {
  describe(`fuzz the bridge end to end, --decode-threads ${threads} (${stream.frames.length} frames, seed ${SEED})`, () => {
    let run: Run;

    before(async () => {
      await using relay = await startReplayServer({ frames: stream.frames.map((f) => f.bytes) });
      const topic = `fuzz-threads-${threads}`;
      const bridge = await startBridge([
        '--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--topic-partitions', '4', '--relay-host', relay.url,
        '--cursor-file', join(dir, `cursor-${threads}.json`), '--cursor-save-interval', '100ms', '--decode-threads', threads,
      ]);
      let exitedEarly: number | string | undefined;
      void bridge.exited.then((code) => (exitedEarly ??= code));
      const metrics = await settle(bridge, relay, 60_000);
      const early = exitedEarly;
      bridge.child.kill('SIGTERM');
      const exitCode = await Promise.race([bridge.exited, sleep(40_000, 'no exit 40 s after SIGTERM', { ref: false })]);
      if (typeof exitCode === 'string' && exitCode.startsWith('no exit')) bridge.child.kill('SIGKILL');
      const messages = (await readTopic(broker.bootstrap, topic)).map((m) => ({ key: m.key, value: m.value }));
      run = { exitedEarly: early, exitCode, metrics, messages, logs: bridge.logs() };
    });

    /** The errors it logged, or else the end of its stderr (an uncaught exception is not a JSON line). */
    const logTail = () => {
      const lines = run.logs.split('\n').filter((l) => l.trim() !== '');
      const errors = lines.filter((l) => /"level":(50|60)/.test(l));
      return (errors.length > 0 ? errors : lines).slice(-8).join('\n');
    };

    it('does not crash, and exits 0 on SIGTERM', () => {
      assert.equal(run.exitedEarly, undefined, `the bridge exited by itself with ${run.exitedEarly}:\n${logTail()}`);
      assert.equal(run.exitCode, 0, `exit after SIGTERM: ${run.exitCode}\n${logTail()}`);
    });

    it('every message of every event the oracle calls valid is in the topic', () => {
      const got = counts(run.messages.map((m) => messageKey(JSON.parse(m.value))));
      const missing = [...stream.expected].filter(([k, n]) => (got.get(k) ?? 0) < n).map(([k]) => k);
      assert.deepEqual(
        missing.slice(0, 20).map((k) => `${frameOfKey(k)}: ${k.slice(0, 160)}`),
        [],
        `${missing.length} of ${stream.expected.size} expected messages missing (far-future seq ${stream.farFuture.seq} at frame ${stream.farFuture.index}); duplicates dropped: ${metricValue(run.metrics, 'atkafka_relay_duplicate_events')}`,
      );
    });

    it('nothing the oracle calls invalid reaches the topic', () => {
      const extra = run.messages.map((m) => messageKey(JSON.parse(m.value))).filter((k) => !stream.expected.has(k));
      assert.deepEqual(extra.slice(0, 20), [], `${extra.length} unexpected messages`);
    });

    it('every record in the topic hashes back to its CID', () => {
      const bad = run.messages.flatMap((m) => {
        const op = (JSON.parse(m.value) as { operation?: { action: string; path: string; cid: string; record: unknown } }).operation;
        if (op === undefined || op.action === 'delete') return [];
        const problem = recordHashProblem(op.record, op.cid);
        return problem === undefined ? [] : [`${op.path}: ${problem}`];
      });
      assert.deepEqual(bad.slice(0, 10), [], `${bad.length} records do not hash to their CID`);
    });

    it('atkafka_invalid_input counts exactly the invalid frames and ops', () => {
      assert.equal(metricValue(run.metrics, 'atkafka_invalid_input'), stream.expectedInvalid, `by reason: ${run.metrics.split('\n').filter((l) => l.startsWith('atkafka_invalid_input{')).join('; ')}`);
    });
  });
}
