// What Kafka headers cost the JS thread per message, in the binding's produce() and through KafkaSink.send().
// Corpus messages, 5 headers like the pipeline's ({kind},{collection},{action},{seq},{source}).
// Only the synchronous produce/send calls are timed, in CPU time of the JS thread
// (process.threadCpuUsage() around each burst of BURST messages, then a flush outside the clock),
// so librdkafka's own threads and the broker do not count.
// A real local KRaft broker (librdkafka's mock broker times out on CreateTopics, which the sink needs).
//   node bench/micro/sink-headers.ts        (N=300000 ROUNDS=3 by default)
//
// 2-core VM, two runs (3 and 5 rounds), ns per message; run-to-run noise is ~±300 ns:
//   produce() no headers ~950-1270; 5 headers ~5200-5500 (+~4.2 us, ~0.85 us per header);
//   Buffer values instead of strings: no gain; one shared array: -0.3..-0.5 us (no building, less GC);
//   1 header ~2000-2500; 2 headers ~3100-3500; 1 header holding all 5 fields ~2600-2700.
//   KafkaSink.send(): none ~860-1050, topic ~920-1190, 5 headers ~5050-5450, both ~4600-5870.
// The cost is per header object, inside the binding's produce() (src/producer.cc): for each one
// GetOwnPropertyNames (V8's slow key accumulator), two property reads, UTF-8 copies of name and
// value, and several mallocs for RdKafka::Headers. No form of the same headers avoids it; fewer
// header objects do.
import Kafka from '@confluentinc/kafka-javascript';
import type { MessageHeader, Producer } from '@confluentinc/kafka-javascript';
import { pino } from 'pino';

import { launchBroker, type LocalBroker } from '../../scripts/kafka/local-broker.ts';
import { createKafkaSink, type SendExtra } from '../../src/sink/kafka/index.ts';
import { corpusFrames, expectedMessages } from '../../test/support/corpus.ts';

const corpus = expectedMessages(corpusFrames());
const msgs = corpus.map((m, i) => {
  const v = JSON.parse(m.value) as { collection?: string; action?: string; kind?: string };
  return { key: m.key, value: Buffer.from(m.value), seq: m.seq, kind: v.kind ?? 'commit', collection: v.collection ?? '', action: v.action ?? 'create', i };
});
const N = Number(process.env.N ?? 300_000);
const BURST = 10_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);

const broker: LocalBroker = await launchBroker({ fastStartup: false });
const common = {
  'bootstrap.servers': broker.bootstrap,
  'enable.idempotence': true,
  acks: 'all',
  'message.timeout.ms': 0,
  partitioner: 'murmur2_random',
  'compression.codec': 'zstd',
  'compression.level': 1,
  'linger.ms': 20,
  'batch.size': 1_048_576,
  'queue.buffering.max.messages': 200_000,
  'delivery.report.only.error': true,
  dr_msg_cb: true,
};

const producer = new Kafka.Producer(common as never);
await new Promise<void>((res, rej) => producer.connect({}, (e) => (e ? rej(e) : res())));
producer.setPollInBackground(true);
const admin = Kafka.AdminClient.createFrom(producer);
let topicNo = 0;
async function freshTopic(): Promise<string> {
  const t = `hdr-${topicNo++}`;
  await new Promise<void>((res, rej) => admin.createTopic({ topic: t, num_partitions: 64, replication_factor: 1 }, 15_000, (e) => (e ? rej(e) : res())));
  return t;
}
/** Microseconds of CPU this thread used since `from`. */
const cpuSince = (from: NodeJS.CpuUsage) => {
  const c = process.threadCpuUsage(from);
  return c.user + c.system;
};
const flush = (p: Producer) => new Promise<void>((res, rej) => p.flush(60_000, (e) => (e ? rej(e) : res())));

// Header forms. Each builds (or reuses) the headers for message m; building counts, as the caller must build them.
const strCache = new Map<string, Buffer>();
const cachedBuf = (s: string) => {
  let b = strCache.get(s);
  if (b === undefined) strCache.set(s, (b = Buffer.from(s)));
  return b;
};
const SHARED: MessageHeader[] = [{ kind: 'commit' }, { collection: 'app.bsky.feed.post' }, { action: 'create' }, { seq: '31527015322' }, { source: 'relay' }];
type M = (typeof msgs)[number];
const forms: Record<string, ((m: M) => MessageHeader[]) | undefined> = {
  none: undefined,
  'empty []': () => [],
  '5 fresh, string values': (m): MessageHeader[] => [{ kind: m.kind }, { collection: m.collection }, { action: m.action }, { seq: String(m.seq) }, { source: 'relay' }],
  '5 fresh, Buffer values (cached, seq Buffer.from)': (m): MessageHeader[] => [
    { kind: cachedBuf(m.kind) },
    { collection: cachedBuf(m.collection) },
    { action: cachedBuf(m.action) },
    { seq: Buffer.from(String(m.seq)) },
    { source: cachedBuf('relay') },
  ],
  '5 shared (one array for all)': () => SHARED,
  '1 header, string': (m) => [{ seq: String(m.seq) }],
  '2 headers, string': (m): MessageHeader[] => [{ seq: String(m.seq) }, { source: 'relay' }],
  '1 header, all 5 fields in its value': (m) => [{ atkafka: `${m.kind} ${m.collection} ${m.action} ${m.seq} relay` }],
};

async function rawRun(name: string, build: ((m: M) => MessageHeader[]) | undefined): Promise<number> {
  const topic = await freshTopic();
  let ns = 0;
  for (let sent = 0; sent < N; ) {
    const t0 = process.threadCpuUsage();
    const end = Math.min(N, sent + BURST);
    if (build === undefined) {
      for (; sent < end; sent++) {
        const m = msgs[sent % msgs.length]!;
        producer.produce(topic, null, m.value, m.key, null);
      }
    } else {
      for (; sent < end; sent++) {
        const m = msgs[sent % msgs.length]!;
        producer.produce(topic, null, m.value, m.key, null, undefined, build(m));
      }
    }
    ns += cpuSince(t0) * 1e3;
    await flush(producer);
  }
  void name;
  return ns / N;
}

// Only building the headers (what the caller pays whatever the sink does).
function buildOnly(build: (m: M) => MessageHeader[]): number {
  let keep = 0;
  const t0 = process.threadCpuUsage();
  for (let i = 0; i < N; i++) keep += build(msgs[i % msgs.length]!).length;
  const ns = (cpuSince(t0) * 1e3) / N;
  if (keep < 0) console.log(keep);
  return ns;
}

// Through the sink: send() with and without extra (its journal and topic lookup included).
async function sinkRun(mode: 'none' | 'headers' | 'topic' | 'topic+headers'): Promise<number> {
  const topic = `sink-${topicNo++}`;
  const sink = await createKafkaSink(
    {
      bootstrapServers: [broker.bootstrap],
      topic,
      partitions: 64,
      replicationFactor: 1,
      compression: 'zstd',
      compressionLevel: 1,
      lingerMs: 20,
      batchBytes: 1_048_576,
      maxMessageBytes: 1_048_576,
      clientId: 'bench',
      extra: {},
    },
    pino({ level: 'warn' }),
    BURST,
  );
  const other = `${topic}-routed`;
  if (mode === 'topic' || mode === 'topic+headers') {
    // Warm: the routed topic is created before timing starts.
    sink.send('warm', 'x', null, { topic: other });
    await sink.flush();
  }
  let ns = 0;
  for (let sent = 0; sent < N; ) {
    const end = Math.min(N, sent + BURST);
    const t0 = process.threadCpuUsage();
    for (; sent < end; sent++) {
      const m = msgs[sent % msgs.length]!;
      if (mode === 'none') sink.send(m.key, m.value, null);
      else {
        const extra: SendExtra = {};
        if (mode !== 'headers') extra.topic = other;
        if (mode !== 'topic') extra.headers = [{ kind: m.kind }, { collection: m.collection }, { action: m.action }, { seq: String(m.seq) }, { source: 'relay' }];
        sink.send(m.key, m.value, null, extra);
      }
    }
    ns += cpuSince(t0) * 1e3;
    await sink.flush();
  }
  await sink.close();
  return ns / N;
}

const raw: Record<string, number[]> = {};
const sinkResults: Record<string, number[]> = {};
await rawRun('warm', undefined);
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, build] of Object.entries(forms)) (raw[name] ??= []).push(await rawRun(name, build));
  for (const mode of ['none', 'headers', 'topic', 'topic+headers'] as const) (sinkResults[mode] ??= []).push(await sinkRun(mode));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`local KRaft broker, ${N} corpus messages per run, median of ${ROUNDS} runs, ns of JS thread per message`);
console.log('binding produce():');
for (const [name, xs] of Object.entries(raw)) {
  const build = forms[name];
  const b = build ? buildOnly(build) : 0;
  console.log(`  ${name.padEnd(50)} ${med(xs).toFixed(0).padStart(6)} ns  (building the headers alone: ${b.toFixed(0)} ns)`);
}
console.log('KafkaSink.send() (headers built fresh per message, strings):');
for (const [mode, xs] of Object.entries(sinkResults)) console.log(`  ${mode.padEnd(50)} ${med(xs).toFixed(0).padStart(6)} ns`);

await new Promise<void>((r) => producer.disconnect(() => r()));
await broker.stop();
process.exit(0);
