/**
 * Kafka client comparison: @confluentinc/kafka-javascript (librdkafka) vs
 * @platformatic/kafka (pure TS), against a real broker.
 *
 *   node bench/kafka-clients/compare.ts [--brokers 127.0.0.1:9092]
 *     [--runs 2] [--messages 500000] [--seconds 30] [--inflight 20000]
 *     [--rate 5000] [--latency-seconds 15] [--modes throughput,latency]
 *     [--only REGEX] [--settle-ms 5000] [--broker-pid-file FILE]
 *     [--kafka-libs DIR] [--out results.json]
 *     [--bounce-cmd 'SHELL COMMAND'] [--bounce-after 8] [--attempts 3]
 *   node bench/kafka-clients/compare.ts --from a.json,b.json   (re-render saved results)
 *
 * Each case runs in its own Node process (run-case.ts), so CPU seconds
 * (process.cpuUsage, all threads incl. librdkafka's) and peak RSS belong to
 * one client. After each case the topic is read back with kcat to check the
 * message count (idempotence: exactly the confirmed count, no duplicates) and
 * that every key landed on one partition, the one the Java client's own
 * partitioner picks (JavaPartition.java, needs --kafka-libs or KAFKA_LIBS:
 * a directory holding kafka-clients-*.jar). --broker-pid-file (a file holding
 * the broker's process id) adds the broker's CPU
 * seconds (from /proc) per case. Other processes' CPU use over each produce
 * window is reported too ("others CPU s"): this machine may be shared.
 *
 * Mode "bounce" (only with --bounce-cmd): the latency case again, but
 * --bounce-after seconds into producing the command runs (e.g. a broker
 * restart); failed messages are re-produced, and the read-back shows whether
 * the client kept exactly-once delivery through it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Admin } from '@platformatic/kafka';
import { makeDids } from './messages.ts';
import { javaPartition } from './murmur2.ts';
import type { Case, CaseResult } from './run-case.ts';

interface Variant {
  client: Case['client'];
  name: string;
  options: Case['options'];
  inflight?: number;
  /** Diagnostic only: runs when --only names it. */
  explicit?: boolean;
}

/**
 * Tunings tried. Common to all: idempotent producer, acks=all, zstd,
 * Java-compatible murmur2 partitioning, per-message confirmation.
 */
export const VARIANTS: Variant[] = [
  // librdkafka: run-case.ts sets linger.ms 5, batch.size 1000000,
  // batch.num.messages 10000, queue.buffering.max.messages 100000, and polls
  // delivery reports on librdkafka's background thread.
  { client: 'confluent', name: 'rdk-linger5', options: {} },
  { client: 'confluent', name: 'rdk-linger20', options: { 'linger.ms': 20 } },
  { client: 'confluent', name: 'rdk-linger5-poll10ms', options: { 'js.pollIntervalMs': 10 } },
  {
    client: 'confluent',
    name: 'rdk-linger10-win50k',
    options: { 'linger.ms': 10, 'queue.buffering.max.messages': 200_000 },
    inflight: 50_000,
  },
  // platformatic: 'stream' = producer.asStream() (the library's batching,
  // one Produce request in flight); 'send' = our own linger/batch
  // accumulator around producer.send(). partitioner: our 32-bit murmur2
  // unless 'bigint' (the library's compatibilityPartitioner).
  { client: 'platformatic', name: 'plt-stream-b1000-l10', options: { api: 'stream', batchSize: 1000, lingerMs: 10 } },
  { client: 'platformatic', name: 'plt-stream-b5000-l5', options: { api: 'stream', batchSize: 5000, lingerMs: 5 } },
  {
    client: 'platformatic',
    name: 'plt-stream-b5000-l5-bigint',
    options: { api: 'stream', batchSize: 5000, lingerMs: 5, partitioner: 'bigint' },
  },
  {
    client: 'platformatic',
    name: 'plt-stream-b10000-l20-win50k',
    options: { api: 'stream', batchSize: 10_000, lingerMs: 20 },
    inflight: 50_000,
  },
  // Overlapping send() calls: faster, but NOT safe (fresh-topic.ts: duplicates
  // after retriable partition errors). Kept as a reference point.
  { client: 'platformatic', name: 'plt-send-b5000-l5-s2', options: { api: 'send', batchSize: 5000, lingerMs: 5, sends: 2 } },
  // Diagnostics: where the CPU goes at a low rate (not zstd, so not eligible).
  {
    client: 'confluent',
    name: 'diag-rdk-linger5-maxinflight1',
    options: { 'max.in.flight.requests.per.connection': 1 },
    explicit: true,
  },
  { client: 'confluent', name: 'diag-rdk-linger5-lz4', options: { 'compression.codec': 'lz4' }, explicit: true },
  { client: 'confluent', name: 'diag-rdk-linger5-none', options: { 'compression.codec': 'none' }, explicit: true },
  { client: 'confluent', name: 'diag-rdk-linger5-zstd1', options: { 'compression.level': 1 }, explicit: true },
  {
    client: 'platformatic',
    name: 'diag-plt-stream-b5000-l5-none',
    options: { api: 'stream', batchSize: 5000, lingerMs: 5, compression: 'none' },
    explicit: true,
  },
];

interface Verification {
  consumed: number;
  /** consumed - confirmed: > 0 means duplicates, < 0 lost messages. */
  diff: number;
  keys: number;
  /** Keys seen on more than one partition. */
  keysSplit: number;
  /** Keys whose partition differs from the Java client's. */
  keysNotJava: number;
  javaChecked: boolean;
}

interface Row extends CaseResult {
  run: number;
  /** Busy CPUs just before the case started (other load on the machine). */
  busyBefore: number;
  verify?: Verification;
}

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    brokers: { type: 'string', default: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092' },
    runs: { type: 'string', default: '2' },
    messages: { type: 'string', default: '500000' },
    seconds: { type: 'string', default: '30' },
    inflight: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '5000' },
    'latency-seconds': { type: 'string', default: '15' },
    modes: { type: 'string', default: 'throughput,latency' },
    only: { type: 'string' },
    'settle-ms': { type: 'string', default: '5000' },
    'broker-pid-file': { type: 'string' },
    'bounce-cmd': { type: 'string' },
    'bounce-after': { type: 'string', default: '8' },
    attempts: { type: 'string', default: '3' },
    from: { type: 'string' },
    'kafka-libs': { type: 'string', default: process.env.KAFKA_LIBS },
    out: { type: 'string' },
  },
});

/** Busy CPUs (0..nproc) over `ms`, from /proc/stat. */
function busyCpus(ms: number): Promise<number> {
  const read = (): [number, number] => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return [total - idle, total];
  };
  const [b0, t0] = read();
  return new Promise((resolve) =>
    setTimeout(() => {
      const [b1, t1] = read();
      resolve(((b1 - b0) / Math.max(1, t1 - t0)) * availableParallelism());
    }, ms),
  );
}

/**
 * Other work shares this machine (2 cores): before each case wait (up to
 * 90 s) until less than `maxBusy` CPUs are busy, so cases start on a quiet box.
 */
async function waitQuiet(maxBusy = 0.4): Promise<number> {
  let busy = 0;
  for (let i = 0; i < 45; i++) {
    busy = await busyCpus(2000);
    if (busy < maxBusy) break;
  }
  return busy;
}

function javaPartitions(keys: string[], partitions: number): Map<string, number> | null {
  const libs = args['kafka-libs'];
  if (!libs) return null;
  const r = spawnSync('java', ['-cp', join(libs, '*'), join(here, 'JavaPartition.java'), String(partitions)], {
    input: keys.join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`JavaPartition failed: ${r.stderr}`);
  const m = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const [k, p] = line.split(' ');
    if (k && p) m.set(k, Number(p));
  }
  return m;
}

/** Run one case; `onProducing` fires when its produce loop starts. */
function runChild(c: Case, onProducing?: () => void): Promise<CaseResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'run-case.ts'), JSON.stringify(c)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('PRODUCING\n')) {
        onProducing?.();
        d = d.replace('PRODUCING\n', '');
      }
      process.stderr.write(d);
    });
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop();
      if (code !== 0 || !line) reject(new Error(`case ${c.variant} exited with ${code}`));
      else resolve(JSON.parse(line) as CaseResult);
    });
  });
}

/** Read the topic back with kcat: count, and partition per key. */
function readBack(topic: string, confirmed: number, java: Map<string, number> | null, partitions: number): Promise<Verification> {
  return new Promise((resolve, reject) => {
    const kcat = spawn('kcat', ['-b', args.brokers, '-C', '-t', topic, '-e', '-q', '-f', '%p %k\n'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const keyPart = new Map<string, Set<number>>();
    let consumed = 0;
    let rest = '';
    kcat.stdout.setEncoding('utf8').on('data', (d: string) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const sp = line.indexOf(' ');
        const p = Number(line.slice(0, sp));
        const k = line.slice(sp + 1);
        consumed++;
        let s = keyPart.get(k);
        if (!s) keyPart.set(k, (s = new Set()));
        s.add(p);
      }
    });
    kcat.on('error', reject);
    kcat.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`kcat exited ${code}`));
      let keysSplit = 0;
      let keysNotJava = 0;
      for (const [k, s] of keyPart) {
        if (s.size !== 1) keysSplit++;
        const [p] = s;
        const expected = java ? java.get(k) : javaPartition(Buffer.from(k), partitions);
        if (p !== expected) keysNotJava++;
      }
      resolve({ consumed, diff: consumed - confirmed, keys: keyPart.size, keysSplit, keysNotJava, javaChecked: !!java });
    });
  });
}

async function deleteTopic(topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'bench-cleanup', bootstrapBrokers: [args.brokers] });
  try {
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await admin.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const fmt = (n: number | undefined, d = 0): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));

/**
 * A case is disturbed when other processes used more than 15% of a core on
 * average during its produce window (this machine is shared). Disturbed
 * cases are retried (--attempts), shown with † and left out of the summary
 * when an undisturbed run exists.
 */
const disturbed = (r: Row): boolean => r.mode !== 'bounce' && r.otherCpuSec / r.seconds > 0.15;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** One line per tuning: medians over runs (min-max for msgs/s). */
function summary(rows: Row[]): string {
  const out: string[] = [];
  const names = [...new Set(rows.map((r) => r.variant))];
  const pick = (n: string, mode: string): Row[] => {
    const all = rows.filter((r) => r.variant === n && r.mode === mode);
    const clean = all.filter((r) => !disturbed(r));
    return clean.length ? clean : all;
  };
  const tp = (n: string) => pick(n, 'throughput');
  const lat = (n: string) => pick(n, 'latency');
  out.push(
    `| client / tuning | runs | msgs/s median (min-max) | CPU µs/msg | broker CPU µs/msg | peak RSS MB | p50 / p99 ms @ ${args.rate}/s | CPU µs/msg @ ${args.rate}/s | broker CPU µs/msg @ ${args.rate}/s | read back |`,
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const n of names) {
    const t = tp(n);
    const l = lat(n);
    const all = [...t, ...l];
    const perMsg = (rs: Row[], f: (r: Row) => number | undefined) => {
      const xs = rs.map((r) => ((f(r) ?? NaN) * 1e6) / Math.max(1, r.confirmed)).filter((x) => !Number.isNaN(x));
      return xs.length ? median(xs) : undefined;
    };
    const exact = all.every((r) => r.verify && r.verify.diff === 0 && r.verify.keysSplit === 0 && r.verify.keysNotJava === 0);
    const msgs = t.map((r) => r.msgsPerSec);
    out.push(
      `| ${n} | ${t.length}+${l.length} | ${msgs.length ? `${fmt(median(msgs))} (${fmt(Math.min(...msgs))}-${fmt(Math.max(...msgs))})` : '-'} | ` +
        `${fmt(perMsg(t, (r) => r.cpuSec), 1)} | ${fmt(perMsg(t, (r) => r.brokerCpuSec), 1)} | ${all.length ? fmt(Math.max(...all.map((r) => r.peakRssMB))) : '-'} | ` +
        `${l.length ? `${fmt(median(l.map((r) => r.latency?.p50 ?? NaN)), 1)} / ${fmt(median(l.map((r) => r.latency?.p99 ?? NaN)), 1)}` : '-'} | ` +
        `${fmt(perMsg(l, (r) => r.cpuSec), 1)} | ${fmt(perMsg(l, (r) => r.brokerCpuSec), 1)} | ${exact ? 'exact, keys on Java partition' : 'MISMATCH'} |`,
    );
  }
  return out.join('\n');
}

function table(rows: Row[]): string {
  const out: string[] = [];
  const tp = rows.filter((r) => r.mode === 'throughput');
  if (tp.length) {
    out.push('| client / tuning | run | msgs/s | MB/s | node CPU s | CPU µs/msg | broker CPU s | others CPU s | peak RSS MB | read back |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of tp) {
      const v = r.verify;
      const check = v
        ? `${v.consumed} (${v.diff === 0 ? 'exact' : (v.diff > 0 ? '+' : '') + v.diff}), keys ${v.keysSplit === 0 && v.keysNotJava === 0 ? 'ok' : `split ${v.keysSplit} / not-java ${v.keysNotJava}`}`
        : '-';
      out.push(
        `| ${r.variant} | ${r.run}${disturbed(r) ? ' †' : ''} | ${fmt(r.msgsPerSec)} | ${fmt(r.mbPerSec, 1)} | ${fmt(r.cpuSec, 1)} | ${fmt(r.cpuUsPerMsg, 1)} | ${fmt(r.brokerCpuSec, 1)} | ${fmt(r.otherCpuSec, 1)} | ${fmt(r.peakRssMB)} | ${check}${r.errors ? `, ${r.errors} errors` : ''} |`,
      );
    }
  }
  const bounce = rows.filter((r) => r.mode === 'bounce');
  if (bounce.length) {
    out.push('');
    out.push(`| broker restart @ ${args.rate} msg/s | run | failed attempts | confirmed | landed | p99 ms | max ms |`);
    out.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of bounce) {
      const v = r.verify;
      const landed = v ? `${v.consumed} (${v.diff === 0 ? 'exact' : (v.diff > 0 ? '+' : '') + v.diff})` : '-';
      out.push(`| ${r.variant} | ${r.run} | ${r.errors} | ${r.confirmed} | ${landed} | ${fmt(r.latency?.p99, 0)} | ${fmt(r.latency?.max, 0)} |`);
    }
  }
  const lat = rows.filter((r) => r.mode === 'latency');
  if (lat.length) {
    out.push('');
    out.push(`| client / tuning @ ${args.rate} msg/s | run | p50 ms | p99 ms | p99.9 ms | max ms | node CPU s | CPU µs/msg | broker CPU s | others CPU s | peak RSS MB |`);
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of lat) {
      const l = r.latency;
      out.push(
        `| ${r.variant} | ${r.run}${disturbed(r) ? ' †' : ''} | ${fmt(l?.p50, 1)} | ${fmt(l?.p99, 1)} | ${fmt(l?.p999, 1)} | ${fmt(l?.max, 1)} | ${fmt(r.cpuSec, 1)} | ${fmt(r.cpuUsPerMsg, 1)} | ${fmt(r.brokerCpuSec, 1)} | ${fmt(r.otherCpuSec, 1)} | ${fmt(r.peakRssMB)} |`,
      );
    }
  }
  return out.join('\n');
}

async function runOnce(
  c: Case,
  v: Variant,
  mode: string,
  run: number,
  java: Map<string, number> | null,
  partitions: number,
): Promise<Row | null> {
  const busyBefore = await waitQuiet();
  let row: Row;
  try {
    let bouncer: Promise<void> | undefined;
    const onProducing =
      mode === 'bounce'
        ? () => {
            bouncer = sleep(Number(args['bounce-after']) * 1000).then(
              () =>
                new Promise<void>((resolve) => {
                  console.error(`bounce: ${args['bounce-cmd']}`);
                  const b = spawn('bash', ['-c', args['bounce-cmd']!], { stdio: ['ignore', 'inherit', 'inherit'] });
                  b.on('exit', (code) => {
                    if (code !== 0) console.error(`bounce command exited ${code}`);
                    resolve();
                  });
                }),
            );
          }
        : undefined;
    const r = await runChild(c, onProducing);
    await bouncer;
    r.mode = mode;
    row = { ...r, run, busyBefore };
    row.verify = await readBack(c.topic, r.confirmed, java, partitions);
  } catch (err) {
    console.error(`${v.name} ${mode} run ${run}: ${String(err)}`);
    return null;
  }
  console.error(
    `${v.name} ${mode} #${run}: ${fmt(row.msgsPerSec)} msg/s, cpu ${fmt(row.cpuSec, 2)} s, broker ${fmt(row.brokerCpuSec, 2)} s, others ${fmt(row.otherCpuSec, 2)} s (busy before ${fmt(busyBefore, 2)}), rss ${fmt(row.peakRssMB)} MB` +
      (row.latency ? `, p50 ${fmt(row.latency.p50, 1)} p99 ${fmt(row.latency.p99, 1)} ms` : '') +
      `, read back ${JSON.stringify(row.verify)}${row.errors ? `, ${row.errors} errors: ${row.firstError}` : ''}`,
  );
  return row;
}

async function main(): Promise<void> {
  if (args.from) {
    // Re-render saved results (several files are merged).
    const saved = args.from.split(',').flatMap((f) => JSON.parse(readFileSync(f, 'utf8')) as Row[]);
    const plain = saved.filter((r) => r.mode !== 'bounce');
    if (plain.length) console.log(summary(plain) + '\n');
    console.log(table(saved));
    return;
  }
  const partitions = 200;
  const only = args.only ? new RegExp(args.only) : null;
  const variants = VARIANTS.filter((v) => (only ? only.test(v.name) : !v.explicit));
  const modes = args.modes.split(',') as (Case['mode'] | 'bounce')[];
  const runs = Number(args.runs);
  const java = javaPartitions(makeDids(2000), partitions);
  if (java) {
    let bad = 0;
    for (const [k, p] of java) if (javaPartition(Buffer.from(k), partitions) !== p) bad++;
    console.error(`java partitioner: ${java.size} keys, ${bad} differ from bench murmur2.ts`);
  } else console.error('no --kafka-libs: key placement checked against murmur2.ts only');

  const rows: Row[] = [];
  const stamp = Date.now().toString(36);
  for (let run = 1; run <= runs; run++) {
    for (const mode of modes) {
      for (const v of variants) {
        const c: Case = {
          client: v.client,
          variant: v.name,
          mode: mode === 'bounce' ? 'latency' : mode,
          brokers: args.brokers,
          topic: `bench-${stamp}-${v.name}-${mode}-${run}`,
          partitions,
          messages: Number(args.messages),
          seconds: mode === 'throughput' ? Number(args.seconds) : Number(args['latency-seconds']),
          rate: Number(args.rate),
          inflight: v.inflight ?? Number(args.inflight),
          settleMs: Number(args['settle-ms']),
          options: v.options,
        };
        if (mode === 'bounce') {
          if (!args['bounce-cmd']) continue;
        } else if (args['broker-pid-file']) c.brokerPid = Number(readFileSync(args['broker-pid-file'], 'utf8').trim());
        for (let attempt = 1; attempt <= Number(args.attempts); attempt++) {
          if (attempt > 1) c.topic = `${c.topic.replace(/-try\d+$/, '')}-try${attempt}`;
          const row = await runOnce(c, v, mode, run, java, partitions);
          if (!row) break;
          rows.push(row);
          await deleteTopic(c.topic).catch((err: unknown) => console.error(`delete ${c.topic}: ${String(err)}`));
          if (!disturbed(row)) break;
          console.error(`  (disturbed by other load: ${fmt(row.otherCpuSec, 1)} CPU s; retrying)`);
        }
      }
    }
  }
  if (args.out) writeFileSync(args.out, JSON.stringify(rows, null, 1) + '\n');
  const plain = rows.filter((r) => r.mode !== 'bounce');
  if (plain.length) console.log(summary(plain) + '\n');
  console.log(table(rows));
}

await main();
