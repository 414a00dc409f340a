// Wikimedia EventStreams -> Kafka: the stand-in (bench/wikimedia-stand-in.ts, a child process) serves the
// real recentchange events (looped with fresh offsets and ids) to the Wikimedia pipeline in this process
// and a real broker. Two kinds of case:
//   - backfill: N stored events read from `since` as fast as the pipeline takes them (events/s, CPU per
//     million, peak RSS, latency);
//   - steady: the stand-in pushes R events/s for S seconds (recentchange's real rate is a few dozen a
//     second): the bridge's and the broker's CPU in cores and per million events, and latency.
//
//   node bench/wikimedia-to-kafka.ts [--events N] [--rates 50,1000] [--seconds S] [--partitions P]
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { pino } from 'pino';

import { createKafkaSink } from '../src/sink/kafka/index.ts';
import { WikimediaPipeline } from '../src/sources/wikimedia/pipeline.ts';
import { kafkaOptions, procCpuSeconds, startBroker } from './common.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    rates: { type: 'string', default: '50,1000' },
    seconds: { type: 'string', default: '20' },
    partitions: { type: 'string', default: '200' },
  },
});
const EVENTS = Number(values.events);
const SECONDS = Number(values.seconds);
const SERVER = fileURLToPath(new URL('./wikimedia-stand-in.ts', import.meta.url));
const log = pino({ level: 'warn' }, pino.destination(2));
const broker = await startBroker();
let topicNo = 0;

interface Result {
  events: number;
  seconds: number;
  cpuSeconds: number;
  brokerCpuSeconds: number;
  peakRssMb: number;
  latencies: Float64Array;
}

/** Runs the pipeline until `events` are confirmed (backfill) or for `seconds` (steady). */
async function run(stored: number, rate: number, seconds: number): Promise<Result> {
  const child = spawn(process.execPath, [SERVER, String(stored), String(rate)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('exit', (code) => reject(new Error(`wikimedia stand-in exited ${code}`)));
  });
  const topic = `bench-wm-${Date.now()}-${++topicNo}`;
  const sink = await createKafkaSink(kafkaOptions(broker.bootstrap, topic, Number(values.partitions)), log, 10_000);
  const latencies: number[] = [];
  let firstAt = 0;
  let lastAt = 0;
  const done = Promise.withResolvers<void>();
  const pipeline = new WikimediaPipeline({
    baseUrl: url,
    streams: ['recentchange'],
    key: 'wiki',
    cursorFile: undefined,
    // Before every stored event: the backfill reads them all; a steady case stores none.
    since: stored > 0 ? new Date(Date.now() - stored - 120_000).toISOString() : undefined,
    cursorSaveIntervalMs: 1000,
    stallTimeoutMs: 0,
    backoffInitialMs: 1000,
    backoffMaxMs: 30_000,
    maxInFlight: 10_000,
    maxInFlightBytes: 32 << 20,
    userAgent: 'atkafka-bench',
    sink,
    stages: { headers: true },
    logger: log,
    onEventConfirmed: (ms) => {
      if (latencies.length === 0) firstAt = performance.now() - ms;
      latencies.push(ms);
      lastAt = performance.now();
      if (stored > 0 && latencies.length === stored) done.resolve();
    },
  });
  let peakRss = 0;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  const abort = new AbortController();
  const running = pipeline.run(abort.signal);
  // A steady case is measured after a few seconds of warm-up (connection, JIT, topic creation).
  let cpu0 = process.cpuUsage();
  let broker0 = procCpuSeconds(broker.pid);
  let n0 = 0;
  let t0 = performance.now();
  if (stored > 0) {
    await done.promise;
  } else {
    await new Promise((r) => setTimeout(r, 5000));
    cpu0 = process.cpuUsage();
    broker0 = procCpuSeconds(broker.pid);
    n0 = latencies.length;
    t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
  }
  const cpu = process.cpuUsage(cpu0);
  const brokerCpu = procCpuSeconds(broker.pid) - broker0;
  const n = latencies.length - n0;
  const elapsed = stored > 0 ? (lastAt - firstAt) / 1000 : (performance.now() - t0) / 1000;
  clearInterval(rssTimer);
  abort.abort();
  await running;
  await sink.close();
  child.stdin!.end();
  return { events: n, seconds: elapsed, cpuSeconds: (cpu.user + cpu.system) / 1e6, brokerCpuSeconds: brokerCpu, peakRssMb: peakRss / 2 ** 20, latencies: Float64Array.from(latencies.slice(n0)).sort() };
}

const pct = (a: Float64Array, p: number) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]!;
const perM = (s: number, n: number) => ((s / n) * 1e6).toFixed(1);

console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
console.log(`input: the Wikimedia stand-in serving the real recentchange events (test/fixtures/wikimedia, looped with fresh offsets and ids); ${values.partitions} partitions, linger 20 ms, keyed by wiki`);

// The broker's JIT and a first topic, as in any running deployment (not counted).
await run(20_000, 0, 0);

const b = await run(EVENTS, 0, 0);
console.log(`\nbackfill of ${EVENTS.toLocaleString()} events from since:`);
console.log(`  events/s         ${Math.round(b.events / b.seconds).toLocaleString()}`);
console.log(`  latency p50/p99  ${pct(b.latencies, 50).toFixed(1)} / ${pct(b.latencies, 99).toFixed(1)} ms (event read -> Kafka confirmed; the in-flight bound queues them)`);
console.log(`  CPU              ${perM(b.cpuSeconds, b.events)} s per million events (bridge process, librdkafka included); broker ${perM(b.brokerCpuSeconds, b.events)}`);
console.log(`  peak RSS         ${b.peakRssMb.toFixed(0)} MB`);

for (const rate of values.rates.split(',').map(Number).filter((r) => r > 0)) {
  const r = await run(0, rate, SECONDS);
  console.log(`\nsteady ${rate} events/s for ${SECONDS} s (${r.events.toLocaleString()} events):`);
  console.log(`  bridge CPU       ${(r.cpuSeconds / r.seconds).toFixed(3)} cores, ${perM(r.cpuSeconds, r.events)} s per million events`);
  console.log(`  broker CPU       ${(r.brokerCpuSeconds / r.seconds).toFixed(3)} cores, ${perM(r.brokerCpuSeconds, r.events)} s per million events`);
  console.log(`  latency p50/p99  ${pct(r.latencies, 50).toFixed(1)} / ${pct(r.latencies, 99).toFixed(1)} ms`);
  console.log(`  peak RSS         ${r.peakRssMb.toFixed(0)} MB`);
}

await broker.stop();
process.exit(0);
