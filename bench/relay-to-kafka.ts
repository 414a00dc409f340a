// npm run bench: the real corpus, looped by the replay relay to >= 1,000,000 ops, through the
// relay pipeline into a real Kafka broker on this machine. Prints throughput, latency, CPU, RSS.
//
//   node bench/relay-to-kafka.ts [--ops N] [--warmup N] [--rate-seconds S] [--rate R,R,...] [--partitions P] [--kafka-option k=v]...
//   KAFKA_BOOTSTRAP_SERVERS=host:port to use an existing broker instead of starting one.
//
// The pipeline runs in this process (so CPU and RSS are exactly the bridge's, librdkafka's threads
// included); the replay relay runs in a child process, the broker in a JVM.
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { pino } from 'pino';

import { Enricher } from '../src/enrich/index.ts';
import { collectionFilter } from '../src/filter/index.ts';
import { JetstreamCompressor } from '../src/format/jetstream-compress.ts';
import { RelayPipeline, type RelayPipelineOptions } from '../src/sources/relay/pipeline.ts';
import { createKafkaSink } from '../src/sink/kafka/index.ts';
import { readFramesFile } from '../src/replay/index.ts';
import { kafkaOptions as kafkaOptionsFor, procCpuSeconds, startBroker, threadCpuDelta, threadCpuSeconds, threadSwitches } from './common.ts';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '1000000' },
    /** Steady-rate cases (events/s, comma list): the cost where users run it (issue 13). */
    rate: { type: 'string', default: '500,2000,5000' },
    'rate-seconds': { type: 'string', default: '20' },
    'kafka-option': { type: 'string', multiple: true, default: [] },
    warmup: { type: 'string', default: '150000' },
    partitions: { type: 'string', default: '200' },
    /** Which of the stage cases to run after the plain ones: enrich-warm, enrich-cold, filter (issue 7), jetstream, jetstream-compress (issue 11); 'none' for none. */
    cases: { type: 'string', default: 'enrich-warm,enrich-cold,filter,jetstream,jetstream-compress' },
  },
});
const CORPUS = fileURLToPath(new URL('../test/fixtures/corpus/frames.bin.zst', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/atkafka.js', import.meta.url));
const log = pino({ level: 'warn' }, pino.destination(2));

const corpus = await readFramesFile(CORPUS);
const opsPerLoop = 150; // manifest.json: 150 ops in the 150 frames
const framesPerLoop = corpus.frames.length;
const loops = Math.ceil(Number(values.ops) / opsPerLoop);

const external = process.env.KAFKA_BOOTSTRAP_SERVERS?.trim();
// The broker runs from a child process: its launcher's modules would otherwise count in the bridge's RSS.
const broker = external ? undefined : await startBroker();
const kafkaOptions = (topic: string) => kafkaOptionsFor(bootstrap, topic, Number(values.partitions), values['kafka-option']);
const bootstrap = external ?? broker!.bootstrap;

async function startRelay(args: string[]): Promise<{ url: string; pid: number | undefined; stop: () => void }> {
  const child = spawn(process.execPath, [BIN, 'replay', '--file', CORPUS, '--loop', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('exit', (code) => reject(new Error(`replay exited ${code}`)));
  });
  return { url, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

interface Result {
  events: number;
  seconds: number;
  cpuSeconds: number;
  brokerCpuSeconds: number;
  relayCpuSeconds: number;
  mainThreadBusy: number;
  peakRssMb: number;
  latencies: Float64Array;
  /** CPU seconds by thread of the bridge process, largest first. */
  threads: [string, number][];
  /** Context switches (wake-ups) by thread, largest first. */
  switches: [string, number][];
}

const MAX_IN_FLIGHT = Number(process.env.MAX_IN_FLIGHT ?? 10_000); // the CLI default
const DECODE_THREADS = Number(process.env.DECODE_THREADS ?? 1); // the CLI default
const HEADERS = process.env.BENCH_HEADERS !== '0'; // the CLI default: on
// One topic for both runs, so the steady run measures a warm topic (leaders known), like production.
const sink = await createKafkaSink(kafkaOptions(`bench-${Date.now()}`), log, MAX_IN_FLIGHT);

async function run(relayArgs: string[], frames: number, extra: Pick<RelayPipelineOptions, 'stages' | 'collections' | 'format'> = {}): Promise<Result> {
  const relay = await startRelay([...relayArgs, '--limit', String(frames)]);
  const latencies = new Float64Array(frames);
  let confirmed = 0;
  let firstAt = 0;
  let lastAt = 0;
  const done = Promise.withResolvers<void>();
  const pipeline = new RelayPipeline({
    relayHost: relay.url,
    cursorFile: undefined,
    initialCursor: undefined,
    cursorSaveIntervalMs: 1000,
    maxInFlight: MAX_IN_FLIGHT,
    maxInFlightBytes: 32 << 20, // the CLI default
    maxFrameBytes: 16 << 20,
    decodeThreads: DECODE_THREADS,
    stallTimeoutMs: 0,
    backoffInitialMs: 1000,
    backoffMaxMs: 30_000,
    userAgent: 'atkafka-bench',
    sink,
    logger: log,
    collections: extra.collections,
    format: extra.format,
    // The CLI default is headers on; BENCH_HEADERS=0 measures without them.
    stages: { headers: HEADERS, ...extra.stages },
    onEventConfirmed: (ms) => {
      if (confirmed === 0) firstAt = performance.now() - ms;
      latencies[confirmed++] = ms;
      if (confirmed === frames) {
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
    }
  }, 50);
  const cpu0 = process.cpuUsage();
  const threads0 = threadCpuSeconds();
  const switches0 = threadSwitches();
  const broker0 = procCpuSeconds(broker?.pid);
  const relay0 = procCpuSeconds(relay.pid);
  const elu0 = performance.eventLoopUtilization();
  const abort = new AbortController();
  const running = pipeline.run(abort.signal);
  await done.promise;
  const cpu = process.cpuUsage(cpu0);
  const threads = threadCpuDelta(threads0, threadCpuSeconds());
  const switches = threadCpuDelta(switches0, threadSwitches());
  const brokerCpu = procCpuSeconds(broker?.pid) - broker0;
  const relayCpu = procCpuSeconds(relay.pid) - relay0;
  const elu = performance.eventLoopUtilization(elu0);
  clearInterval(rssTimer);
  abort.abort();
  await running;
  relay.stop();
  if (process.env.BENCH_MEM) {
    const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;
    console.log(`  at peak RSS: heapTotal ${mb(peakMem.heapTotal)}, heapUsed ${mb(peakMem.heapUsed)}, external ${mb(peakMem.external)}, arrayBuffers ${mb(peakMem.arrayBuffers)}`);
  }
  return {
    events: frames,
    seconds: (lastAt - firstAt) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    brokerCpuSeconds: brokerCpu,
    relayCpuSeconds: relayCpu,
    mainThreadBusy: elu.utilization,
    peakRssMb: Math.max(peakRss, process.memoryUsage.rss()) / 2 ** 20,
    latencies: latencies.subarray(0, confirmed).sort(),
    threads,
    switches,
  };
}

const cpuPerMillion = (seconds: number, n: number) => (Number.isNaN(seconds) ? 'n/a' : ((seconds / n) * 1e6).toFixed(1));
const pct = (a: Float64Array, p: number) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]!;

console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
console.log(`input: ${CORPUS} (${framesPerLoop} frames, ${opsPerLoop} ops) looped ${loops} times`);
console.log(`bridge: ${DECODE_THREADS} decode thread(s), ${MAX_IN_FLIGHT} in flight, ${values.partitions} partitions, zstd 1, linger ${process.env.BENCH_LINGER_MS ?? 20} ms, headers ${HEADERS ? 'on' : 'off'}${values['kafka-option'].length ? `, ${values['kafka-option'].join(' ')}` : ''}`);

// 1. Throughput: as fast as the bridge and the broker go.
const frames = loops * framesPerLoop;
const ops = loops * opsPerLoop;
// 0. Warm-up: the broker's JIT and the topic's 200 partition leaders, as in any running deployment.
const warmupLoops = Math.ceil(Number(values.warmup) / opsPerLoop);
if (warmupLoops > 0) {
  const w = await run([], warmupLoops * framesPerLoop);
  console.log(`\nwarm-up: ${(warmupLoops * opsPerLoop).toLocaleString()} ops at ${Math.round((warmupLoops * opsPerLoop) / w.seconds).toLocaleString()} ops/s (not counted)`);
}
const t = await run([], frames);
const opsPerSec = ops / t.seconds;
console.log(`\nmax throughput: ${ops.toLocaleString()} ops (${frames.toLocaleString()} frames) in ${t.seconds.toFixed(1)} s`);
console.log(`  ops/s            ${Math.round(opsPerSec).toLocaleString()}`);
console.log(`  latency p50/p99  ${pct(t.latencies, 50).toFixed(1)} / ${pct(t.latencies, 99).toFixed(1)} ms (frame read -> Kafka confirmed, at saturation)`);
console.log(`  CPU              ${((t.cpuSeconds / ops) * 1e6).toFixed(1)} s per million ops (bridge process, librdkafka threads included)`);
console.log(`  other CPU        broker ${cpuPerMillion(t.brokerCpuSeconds, ops)}, replay relay ${cpuPerMillion(t.relayCpuSeconds, ops)} s per million ops`);
console.log(`  main thread      ${(t.mainThreadBusy * 100).toFixed(0)}% busy (event loop utilization)`);
console.log(`  peak RSS         ${t.peakRssMb.toFixed(0)} MB`);

// 2. Cost and latency at steady production-like rates (the network's own is a few thousand events/s):
// per million events for the bridge, each of its threads and the broker, against the saturation run above.
const perThread = (r: Result, n: number) => r.threads.slice(0, 6).map(([k, v]) => `${k} ${cpuPerMillion(v, n)}`).join(', ');
console.log(`  per thread       ${perThread(t, ops)} s per million ops`);
for (const rate of values.rate.split(',').map(Number).filter((r) => r > 0)) {
  const steadyFrames = rate * Number(values['rate-seconds']);
  const s = await run(['--rate', String(rate)], steadyFrames);
  console.log(`\nsteady ${rate.toLocaleString()} events/s for ${values['rate-seconds']} s:`);
  console.log(`  latency p50/p99  ${pct(s.latencies, 50).toFixed(1)} / ${pct(s.latencies, 99).toFixed(1)} ms (max ${pct(s.latencies, 100).toFixed(1)})`);
  console.log(`  CPU              ${cpuPerMillion(s.cpuSeconds, s.events)} s per million events (${(s.cpuSeconds / s.seconds).toFixed(3)} cores; at saturation ${cpuPerMillion(t.cpuSeconds, frames)} per million frames)`);
  console.log(`  per thread       ${perThread(s, s.events)} s per million events`);
  const wakeups = s.switches.slice(0, 4).map(([k, v]) => `${k} ${Math.round(v / s.seconds).toLocaleString()}`).join(', ');
  console.log(`  wake-ups/s       ${wakeups} (context switches; ${rate.toLocaleString()} events/s in)`);
  console.log(`  broker CPU       ${cpuPerMillion(s.brokerCpuSeconds, s.events)} s per million events (${(s.brokerCpuSeconds / t.brokerCpuSeconds * (frames / s.events)).toFixed(1)}x its cost at saturation); replay relay ${cpuPerMillion(s.relayCpuSeconds, s.events)}`);
  console.log(`  peak RSS         ${s.peakRssMb.toFixed(0)} MB`);
}

// 3. The shared stages (issue 7), each against the plain max-throughput figure above, same input and size.
const cases = new Set(values.cases.split(',').map((c) => c.trim()));
const report = (name: string, r: Result, per: number) => {
  const rate = (ops * per) / r.seconds;
  console.log(`\n${name}: ${ops.toLocaleString()} ops in ${r.seconds.toFixed(1)} s`);
  console.log(`  ops/s            ${Math.round(rate).toLocaleString()} (${((rate / opsPerSec) * 100).toFixed(0)}% of plain)`);
  console.log(`  frames/s         ${Math.round(frames / r.seconds).toLocaleString()} (plain ${Math.round(frames / t.seconds).toLocaleString()})`);
  console.log(`  latency p50/p99  ${pct(r.latencies, 50).toFixed(1)} / ${pct(r.latencies, 99).toFixed(1)} ms (max ${pct(r.latencies, 100).toFixed(1)})`);
  console.log(`  CPU              ${((r.cpuSeconds / ops) * 1e6).toFixed(1)} s per million ops`);
  console.log(`  peak RSS         ${r.peakRssMb.toFixed(0)} MB`);
};
if (cases.has('enrich-warm') || cases.has('enrich-cold')) {
  // A PLC stand-in in its own process (its CPU is not the bridge's) serving the capture's real documents.
  for (const [name, delayMs, cacheEntries] of [
    ['enrich-warm', 0, 100_000],
    ['enrich-cold', 20, 1],
  ] as const) {
    if (!cases.has(name)) continue;
    const plc = await startPlcStandIn(delayMs);
    const enricher = new Enricher({
      plcHost: plc.url,
      logger: log,
      cacheEntries,
      // Handles are checked against the stand-in too (no DNS: these machines have no network).
      resolveTxt: () => Promise.reject(Object.assign(new Error('no DNS here'), { code: 'ENOTFOUND' })),
      wellKnownUrl: (handle) => `${plc.url}/handle/${handle}`,
      allowPrivateAddresses: true,
    });
    // Warm: one pass over the capture's 148 DIDs fills the cache, as in any running deployment.
    if (cacheEntries > 1) await run([], framesPerLoop * 2, { stages: { enricher, enrich: true, deadlineMs: 1000 } });
    const r = await run([], frames, { stages: { enricher, enrich: true, deadlineMs: 1000 } });
    report(
      name === 'enrich-warm'
        ? 'enrichment on, warm cache (every DID cached)'
        : 'enrichment on, cold cache (1-entry caches: every event asks a PLC answering in 20 ms, 200 req/s limit, 1 s deadline)',
      r,
      1,
    );
    enricher.close();
    plc.stop();
  }
}
if (cases.has('filter')) {
  const r = await run([], frames, { collections: collectionFilter('watched', ['app.bsky.feed.post']) });
  report('--watched-collections app.bsky.feed.post (ops/s counts ops read, most dropped before formatting)', r, 1);
}

if (cases.has('jetstream')) {
  const r = await run([], frames, { format: 'jetstream' });
  report('--format jetstream (the Jetstream v1 shape, time_us from the receive clock)', r, 1);
}
if (cases.has('jetstream-compress')) {
  const r = await run([], frames, { format: 'jetstream', stages: { compress: new JetstreamCompressor() } });
  report("--format jetstream --jetstream-compress (each message one zstd frame with Jetstream's dictionary, level 3)", r, 1);
}

await sink.close();
await broker?.stop();
process.exit(0);

async function startPlcStandIn(delayMs: number): Promise<{ url: string; stop: () => void }> {
  const script = fileURLToPath(new URL('./plc-stand-in.ts', import.meta.url));
  const child = spawn(process.execPath, [script, String(delayMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('exit', (code) => reject(new Error(`plc stand-in exited ${code}`)));
  });
  return { url, stop: () => child.kill('SIGTERM') };
}
