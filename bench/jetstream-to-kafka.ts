// Jetstream -> Kafka: the Jetstream stand-in (test/support/jetstream-server.ts, in a child process)
// replays N events (the real Jetstream capture, looped with fresh revs and rkeys) from a cursor into
// the Jetstream pipeline in this process and a real broker. Prints events/s, CPU per million events
// and RSS per case; then what per-message zstd with Jetstream's dictionary (--jetstream-compress)
// costs and saves against Kafka's own batch compression: bytes on the broker's disk per message and
// the bridge's CPU per message.
//
//   node bench/jetstream-to-kafka.ts [--events N] [--partitions P]
import { execFileSync, spawn } from 'node:child_process';
import { constants as zlibConstants, zstdCompressSync } from 'node:zlib';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';

import { pino } from 'pino';

import { JetstreamCompressor } from '../src/format/jetstream-compress.ts';
import { createKafkaSink } from '../src/sink/kafka/index.ts';
import type { KafkaSinkOptions } from '../src/sink/kafka/types.ts';
import { JetstreamPipeline } from '../src/sources/jetstream/pipeline.ts';
import type { OutputFormat } from '../src/decode/relay-frame.ts';
import { kafkaOptions, procCpuSeconds, startBroker } from './common.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '500000' },
    partitions: { type: 'string', default: '200' },
    /** Which cases (1-based, comma list) to run; default all. */
    cases: { type: 'string', default: '' },
    warmup: { type: 'string', default: '100000' },
  },
});
const EVENTS = Number(values.events);
const SERVER = fileURLToPath(new URL('../test/support/jetstream-server.ts', import.meta.url));
const log = pino({ level: 'warn' }, pino.destination(2));

const broker = await startBroker();
let topicNo = 0;
let snapshotTaken = false;

async function startServer(events: number): Promise<{ url: string; pid: number | undefined; stop: () => void }> {
  const child = spawn(process.execPath, [SERVER, '--port', '0', '--events', String(events)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(/ws:\/\/\S+/.exec(d.toString())![0]));
    child.once('exit', (code) => reject(new Error(`jetstream stand-in exited ${code}`)));
  });
  return { url, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

interface Case {
  name: string;
  format: OutputFormat;
  upstreamCompress: boolean;
  /** --jetstream-compress */
  perMessage: boolean;
  kafkaCompression: KafkaSinkOptions['compression'];
}

interface Result {
  seconds: number;
  cpuSeconds: number;
  brokerCpuSeconds: number;
  serverCpuSeconds: number;
  peakRssMb: number;
  diskBytes: number;
  topic: string;
  latencies: Float64Array;
}

async function run(c: Case, events = EVENTS, served = events): Promise<Result> {
  const server = await startServer(served);
  const topic = `bench-js-${Date.now()}-${++topicNo}`;
  const sink = await createKafkaSink({ ...kafkaOptions(broker.bootstrap, topic, Number(values.partitions)), compression: c.kafkaCompression }, log, 10_000);
  let confirmed = 0;
  const latencies = new Float64Array(events);
  let firstAt = 0;
  let lastAt = 0;
  const done = Promise.withResolvers<void>();
  const pipeline = new JetstreamPipeline({
    hosts: [server.url],
    collections: undefined,
    dids: [],
    compress: c.upstreamCompress,
    cursorFile: undefined,
    initialCursor: 1_000_000_000_000_000,
    cursorSaveIntervalMs: 1000,
    rewindUs: 10_000_000,
    stallTimeoutMs: 0,
    backoffInitialMs: 1000,
    backoffMaxMs: 30_000,
    maxInFlight: 10_000,
    maxInFlightBytes: 32 << 20,
    format: c.format,
    passCompressed: c.perMessage,
    userAgent: 'atkafka-bench',
    sink,
    stages: { headers: true, compress: c.perMessage ? new JetstreamCompressor() : undefined },
    logger: log,
    onEventConfirmed: (ms) => {
      if (confirmed === 0) firstAt = performance.now() - ms;
      latencies[confirmed] = ms;
      if (++confirmed === events) {
        lastAt = performance.now();
        done.resolve();
      }
    },
  });
  let peakRss = 0;
  let peakMem = process.memoryUsage();
  const rssTimer = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > peakRss) {
      peakRss = rss;
      if (process.env.BENCH_MEM) peakMem = process.memoryUsage();
      if (process.env.BENCH_SNAPSHOT && peakMem.heapUsed > 250 * 2 ** 20 && !snapshotTaken) {
        snapshotTaken = true;
        console.log(`heap snapshot: ${writeHeapSnapshot('/tmp/js-bench.heapsnapshot')}`);
      }
    }
  }, 50);
  const cpu0 = process.cpuUsage();
  const broker0 = procCpuSeconds(broker.pid);
  const server0 = procCpuSeconds(server.pid);
  const abort = new AbortController();
  const running = pipeline.run(abort.signal);
  await done.promise;
  const cpu = process.cpuUsage(cpu0);
  const result = {
    seconds: (lastAt - firstAt) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    brokerCpuSeconds: procCpuSeconds(broker.pid) - broker0,
    serverCpuSeconds: procCpuSeconds(server.pid) - server0,
    peakRssMb: peakRss / 2 ** 20,
    diskBytes: 0,
    topic,
    latencies: latencies.sort(),
  };
  clearInterval(rssTimer);
  if (process.env.BENCH_MEM) {
    const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;
    console.log(`  at peak RSS: heapTotal ${mb(peakMem.heapTotal)}, heapUsed ${mb(peakMem.heapUsed)}, external ${mb(peakMem.external)}, arrayBuffers ${mb(peakMem.arrayBuffers)}`);
  }
  abort.abort();
  await running;
  await sink.close();
  server.stop();
  result.diskBytes = topicBytesOnDisk(topic);
  return result;
}

/** Bytes of the topic's log segments on the broker's disk (its partition folders are named <topic>-<n>). */
function topicBytesOnDisk(topic: string): number {
  // Only the segments: index files are preallocated (10 MB each) whatever they hold.
  const out = execFileSync('bash', ['-c', `find /tmp -maxdepth 5 -path '*/${topic}-*/*.log' -print0 2>/dev/null | xargs -0 -r du -b -c | tail -1`]).toString();
  return Number(out.split(/\s+/)[0]) || 0;
}

console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
console.log(`input: the Jetstream stand-in replaying ${EVENTS.toLocaleString()} events (test/fixtures/jetstream, looped with fresh revs and rkeys) from a cursor; ${values.partitions} partitions, linger 20 ms`);

const pct = (a: Float64Array, p: number) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]!;

const cases: Case[] = [
  { name: 'at-kafka shape (default), upstream compress=true', format: 'atkafka', upstreamCompress: true, perMessage: false, kafkaCompression: 'zstd' },
  { name: 'Jetstream shape, upstream compress=true (decompressed, produced as JSON)', format: 'jetstream', upstreamCompress: true, perMessage: false, kafkaCompression: 'zstd' },
  { name: 'Jetstream shape, upstream uncompressed', format: 'jetstream', upstreamCompress: false, perMessage: false, kafkaCompression: 'zstd' },
  { name: '--jetstream-compress, upstream uncompressed (atkafka compresses each message), Kafka zstd', format: 'jetstream', upstreamCompress: false, perMessage: true, kafkaCompression: 'zstd' },
  { name: '--jetstream-compress, upstream uncompressed, Kafka compression none', format: 'jetstream', upstreamCompress: false, perMessage: true, kafkaCompression: 'none' },
  { name: "--jetstream-compress, upstream compress=true (Jetstream's frames passed through), Kafka none", format: 'jetstream', upstreamCompress: true, perMessage: true, kafkaCompression: 'none' },
];
// The broker's JIT and a first topic, as in any running deployment (not counted).
if (Number(values.warmup) > 0) await run(cases[2]!, Number(values.warmup));
const wanted = values.cases === '' ? cases.map((_, i) => i + 1) : values.cases.split(',').map(Number);
for (const [i, c] of cases.entries()) {
  if (!wanted.includes(i + 1)) continue;
  const r = await run(c);
  console.log(`\n${i + 1}. ${c.name}:`);
  console.log(`  events/s         ${Math.round(EVENTS / r.seconds).toLocaleString()}`);
  console.log(`  latency p50/p99  ${pct(r.latencies, 50).toFixed(1)} / ${pct(r.latencies, 99).toFixed(1)} ms (message read -> Kafka confirmed)`);
  console.log(`  CPU              ${((r.cpuSeconds / EVENTS) * 1e6).toFixed(1)} s per million events (bridge process, librdkafka included)`);
  console.log(`  other CPU        broker ${((r.brokerCpuSeconds / EVENTS) * 1e6).toFixed(1)}, stand-in ${((r.serverCpuSeconds / EVENTS) * 1e6).toFixed(1)} s per million events`);
  console.log(`  peak RSS         ${r.peakRssMb.toFixed(0)} MB`);
}
// Size: looped events repeat their records, which batch compression would exploit as real traffic
// cannot; so sizes come from the 152 distinct real events. With 200 partitions (the default) each
// partition's batch holds one or two of them: what a batch holds at the network's real rate too
// (2,000 events/s over 200 partitions is 0.2 messages per partition in a 20 ms linger).
const lines = (await import('../test/support/jetstream-server.ts')).loadCorpusLines().map((l) => Buffer.from(l.replace(/,"cursor":\d+/, '')));
const raw = lines.reduce((n, l) => n + l.length, 0) / lines.length;
console.log(`\nsize of the ${lines.length} distinct real events (${raw.toFixed(0)} bytes of JSON each on average):`);
const compressor = new JetstreamCompressor();
const t0 = performance.now();
let dict = 0;
for (let r = 0; r < 200; r++) for (const l of lines) dict += compressor.compress(l).length;
const usPer = ((performance.now() - t0) * 1000) / (200 * lines.length);
dict /= 200 * lines.length;
console.log(`  per message, zstd 3 + Jetstream's dictionary   ${dict.toFixed(0)} bytes (${((dict / raw) * 100).toFixed(0)}%), ${usPer.toFixed(1)} us of CPU each`);
for (const k of [1, 8, 64, 152]) {
  let total = 0;
  for (let i = 0; i < lines.length; i += k) total += zstdCompressSync(Buffer.concat(lines.slice(i, i + k)), { params: { [zlibConstants.ZSTD_c_compressionLevel]: 1 } }).length;
  console.log(`  batches of ${String(k).padStart(3)}, zstd 1 (Kafka's, the default)   ${(total / lines.length).toFixed(0)} bytes per message (${((total / lines.length / raw) * 100).toFixed(0)}%)`);
}
console.log('  on the broker (record batches and headers included):');
for (const c of [cases[2]!, cases[3]!, cases[4]!]) {
  const r = await run(c, lines.length, lines.length);
  console.log(`    ${c.name}: ${(r.diskBytes / lines.length).toFixed(0)} bytes per event`);
}

await broker.stop();
process.exit(0);
