// Tap backfill into Kafka with acks (issue 8): a Tap stream replayed by bench/tap-stand-in.ts (its own
// process) through the Tap source, the shared core and a real broker. Prints records/s, CPU per record,
// peak RSS, and what the stand-in saw acknowledged.
//   node bench/tap-to-kafka.ts [--records N] [--window W] [--partitions P]
// The pipeline runs in this process, so CPU and RSS are the bridge's (librdkafka's threads included).
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { pino } from 'pino';

import { createKafkaSink } from '../src/sink/kafka/index.ts';
import { TapPipeline } from '../src/sources/tap/pipeline.ts';
import { kafkaOptions, procCpuSeconds, startBroker } from './common.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '500000' },
    window: { type: 'string', default: '10000' },
    partitions: { type: 'string', default: '200' },
  },
});
const total = Number(values.records);
const log = pino({ level: 'warn' }, pino.destination(2));
const external = process.env.KAFKA_BOOTSTRAP_SERVERS?.trim();
const broker = external ? undefined : await startBroker();
const bootstrap = external ?? broker!.bootstrap;
const sink = await createKafkaSink(kafkaOptions(bootstrap, `bench-tap-${Date.now()}`, Number(values.partitions)), log, 10_000);

async function run(total: number) {
  const script = fileURLToPath(new URL('./tap-stand-in.ts', import.meta.url));
  const tap = spawn(process.execPath, [script, String(total), values.window], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  tap.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  const url = await new Promise<string>((resolve) => {
    const t = setInterval(() => {
      if (lines.length > 0) {
        clearInterval(t);
        resolve(lines[0]!);
      }
    }, 10);
  });

  let confirmed = 0;
  let firstAt = 0;
  let lastAt = 0;
  const done = Promise.withResolvers<void>();
  const pipeline = new TapPipeline({
    tapHost: url,
    adminPassword: undefined,
    disableAcks: false,
    maxInFlight: 10_000,
    maxInFlightBytes: 32 << 20,
    backoffInitialMs: 1000,
    backoffMaxMs: 30_000,
    statsIntervalMs: 0,
    userAgent: 'atkafka-bench',
    sink,
    logger: log,
    onEventConfirmed: (ms) => {
      if (confirmed === 0) firstAt = performance.now() - ms;
      confirmed++;
      if (confirmed === total) {
        lastAt = performance.now();
        done.resolve();
      }
    },
  });
  let peakRss = 0;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  const cpu0 = process.cpuUsage();
  const broker0 = procCpuSeconds(broker?.pid);
  const tap0 = procCpuSeconds(tap.pid);
  const abort = new AbortController();
  const running = pipeline.run(abort.signal);
  await done.promise;
  const cpu = process.cpuUsage(cpu0);
  const brokerCpu = procCpuSeconds(broker?.pid) - broker0;
  const tapCpu = procCpuSeconds(tap.pid) - tap0;
  clearInterval(rssTimer);
  abort.abort();
  await running;
  // The stand-in's account of the acks, after the last ones went out.
  tap.stdin!.end();
  await new Promise((r) => tap.once('exit', r));
  const seen = JSON.parse(lines.at(-1)!) as { acked: number; duplicateAcks: number; unknownAcks: number };

  return { seen, seconds: (lastAt - firstAt) / 1000, cpu, brokerCpu, tapCpu, peakRss };
}

// Warm-up: the broker's JIT and the topic's partition leaders, as in any running deployment (not counted).
const warm = await run(Math.min(100_000, total));
console.log(`warm-up: ${Math.round(Math.min(100_000, total) / warm.seconds).toLocaleString()} records/s (not counted)`);
const { seen, seconds, cpu, brokerCpu, tapCpu, peakRss } = await run(total);
const perM = (s: number) => ((s / total) * 1e6).toFixed(1);
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
console.log(`input: ${total.toLocaleString()} Tap record events (real sample records, 2,000 DIDs), window ${values.window} unacked, acks on`);
console.log(`  records/s        ${Math.round(total / seconds).toLocaleString()} (${seconds.toFixed(1)} s)`);
console.log(`  CPU              ${perM((cpu.user + cpu.system) / 1e6)} s per million records (bridge process, librdkafka threads included)`);
console.log(`  other CPU        broker ${perM(brokerCpu)}, Tap stand-in ${perM(tapCpu)} s per million records`);
console.log(`  peak RSS         ${(peakRss / 2 ** 20).toFixed(0)} MB`);
console.log(`  acks             ${seen.acked.toLocaleString()} of ${total.toLocaleString()} (duplicates ${seen.duplicateAcks}, unknown ${seen.unknownAcks})`);
await sink.close();
await broker?.stop();
process.exit(seen.acked === total && seen.duplicateAcks === 0 ? 0 : 1);
