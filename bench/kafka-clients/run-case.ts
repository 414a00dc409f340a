/**
 * One benchmark case in its own process (so CPU and peak RSS belong to one
 * client): create the topic with the client's admin API, then produce with
 * idempotence + acks=all + zstd, keeping at most `inflight` unconfirmed
 * messages, and count per-message delivery confirmations.
 *
 * Used by compare.ts; runnable alone:
 *   node bench/kafka-clients/run-case.ts '<json Case>'
 * Prints one JSON line (CaseResult) on stdout.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { RdKafka } from '@confluentinc/kafka-javascript';
import {
  Admin,
  Producer,
  ProduceAcks,
  compatibilityPartitioner,
  type MessageToProduce,
  type ProducerStreamMessageReport,
} from '@platformatic/kafka';
import { makeDids, makeMessages, type BenchMessage } from './messages.ts';
import { murmur2 } from './murmur2.ts';

export interface Case {
  client: 'confluent' | 'platformatic';
  /** Name of the tuning (a key of the variant tables in compare.ts). */
  variant: string;
  mode: 'throughput' | 'latency';
  brokers: string;
  topic: string;
  partitions: number;
  /** Throughput: stop after this many messages... */
  messages: number;
  /** ...or after this many seconds of producing. Latency: run length. */
  seconds: number;
  /** Latency mode: paced rate, msg/s. */
  rate: number;
  /** Most unconfirmed messages the source may have outstanding. */
  inflight: number;
  /**
   * Wait after creating the topic: the broker needs a few seconds to create
   * 200 partition logs after the controller reports leaders. 0 = produce
   * at once (the 'fresh topic' robustness check).
   */
  settleMs: number;
  /** Broker process id: adds its CPU seconds over the produce window. */
  brokerPid?: number;
  /** Client-specific options (see the variant tables in compare.ts). */
  options: Record<string, number | string | boolean>;
}

export interface CaseResult {
  client: string;
  variant: string;
  mode: string;
  topic: string;
  produced: number;
  confirmed: number;
  errors: number;
  firstError?: string;
  seconds: number;
  msgsPerSec: number;
  mbPerSec: number;
  cpuSec: number;
  cpuUserSec: number;
  cpuSysSec: number;
  cpuUsPerMsg: number;
  /** CPU seconds of the broker process over the same window (if brokerPid). */
  brokerCpuSec?: number;
  /** Busy CPU seconds of everything else on the machine over the window. */
  otherCpuSec: number;
  rssBeforeMB: number;
  peakRssMB: number;
  createTopicMs: number;
  latency?: { p50: number; p99: number; p999: number; max: number; samples: number };
}

/** What the produce loop needs from a client. */
interface Sink {
  /** Enqueue one message; `seq` comes back through the confirm callback. */
  produce(seq: number, msg: BenchMessage): void;
  /** Resolve when everything enqueued is confirmed or failed. */
  drain(): Promise<void>;
  close(): Promise<void>;
}
type Confirm = (seq: number, error: Error | null) => void;

const MB = 1024 * 1024;

/** Busy seconds, all CPUs, from /proc/stat. */
function systemBusySec(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / 100;
}

/** utime + stime of a process, seconds. */
export function processCpuSec(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- confluent

async function confluentCreateTopic(c: Case): Promise<void> {
  const admin = RdKafka.AdminClient.create({ 'bootstrap.servers': c.brokers, 'client.id': 'bench-admin' });
  await new Promise<void>((resolve, reject) => {
    admin.createTopic({ topic: c.topic, num_partitions: c.partitions, replication_factor: 1 }, 30_000, (err) =>
      err ? reject(err) : resolve(),
    );
  });
  admin.disconnect();
}

async function confluentSink(c: Case, confirm: Confirm): Promise<Sink> {
  const o = c.options;
  const conf: Record<string, string | number | boolean> = {
    'bootstrap.servers': c.brokers,
    'client.id': 'bench-confluent',
    'enable.idempotence': true,
    acks: -1,
    'compression.codec': 'zstd',
    partitioner: 'murmur2_random',
    'linger.ms': 5,
    'batch.size': 1_000_000,
    'batch.num.messages': 10_000,
    'queue.buffering.max.messages': 100_000,
    'queue.buffering.max.kbytes': 1_048_576,
    dr_cb: true,
  };
  for (const [k, v] of Object.entries(o)) if (!k.startsWith('js.')) conf[k] = v;
  const producer = new RdKafka.Producer(conf as RdKafka.ProducerGlobalConfig);
  let outstanding = 0;
  let onIdle: (() => void) | null = null;
  producer.on('delivery-report', (err, report) => {
    outstanding--;
    confirm(report.opaque as number, err ? new Error(err.message) : null);
    if (outstanding === 0 && onIdle) onIdle();
  });
  await new Promise<void>((resolve, reject) => {
    producer.connect({}, (err) => (err ? reject(err) : resolve()));
  });
  const pollMs = Number(o['js.pollIntervalMs'] ?? 0);
  if (pollMs > 0) producer.setPollInterval(pollMs);
  else producer.setPollInBackground(true);
  // Wait until the producer sees every partition with a leader.
  for (let i = 0; i < 100; i++) {
    const md = await new Promise<RdKafka.Metadata>((resolve, reject) =>
      producer.getMetadata({ topic: c.topic, timeout: 5000 }, (err, data) => (err ? reject(err) : resolve(data))),
    );
    const t = md.topics.find((x) => x.name === c.topic);
    if (t && t.partitions.length === c.partitions && t.partitions.every((p) => p.leader >= 0)) break;
    await sleep(100);
  }
  return {
    produce(seq, msg) {
      // Never throws ERR__QUEUE_FULL here: the source window (`inflight`) is
      // kept below queue.buffering.max.messages; a real pipeline would catch
      // it (err.code === RdKafka.CODES.ERRORS.ERR__QUEUE_FULL) and wait.
      producer.produce(c.topic, null, msg.value, msg.key, null, seq);
      outstanding++;
    },
    drain() {
      if (outstanding === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        onIdle = resolve;
      });
    },
    close() {
      return new Promise<void>((resolve) => producer.disconnect(5000, () => resolve()));
    },
  };
}

// ------------------------------------------------------------- platformatic

async function platformaticCreateTopic(c: Case): Promise<void> {
  const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: [c.brokers] });
  await admin.createTopics({ topics: [c.topic], partitions: c.partitions, replicas: 1 });
  for (let i = 0; i < 100; i++) {
    const md = await admin.metadata({ topics: [c.topic], forceUpdate: true });
    const t = md.topics.get(c.topic);
    if (t && t.partitionsCount === c.partitions && t.partitions.every((p) => p.leader >= 0)) break;
    await sleep(100);
  }
  await admin.close();
}

/** Java-compatible murmur2 in 32-bit integer math (the bundled one uses BigInt). */
function fastJavaPartitioner(_m: unknown, key: Buffer | undefined): number {
  return key ? murmur2(key) & 0x7fffffff : 0;
}

async function platformaticSink(c: Case, confirm: Confirm): Promise<Sink> {
  const o = c.options;
  const partitioner = o['partitioner'] === 'bigint' ? compatibilityPartitioner : fastJavaPartitioner;
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    clientId: 'bench-platformatic',
    bootstrapBrokers: [c.brokers],
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression: o['compression'] === 'none' ? 'none' : 'zstd',
    partitioner,
    autocreateTopics: false,
    // Producer forces maxInflights = 1 when idempotent.
  });
  // Connect + InitProducerId + metadata before the clock starts, like
  // producer.connect() for the other client.
  await producer.initIdempotentProducer({});
  await producer.metadata({ topics: [c.topic] });

  const batchSize = Number(o['batchSize'] ?? 2000);
  const lingerMs = Number(o['lingerMs'] ?? 5);
  let outstanding = 0;
  let onIdle: (() => void) | null = null;
  const done = (n: number): void => {
    outstanding -= n;
    if (outstanding === 0 && onIdle) onIdle();
  };

  if (o['api'] === 'stream') {
    // The library's own batching: a Writable that sends up to batchSize
    // messages per Produce request (one request at a time), waiting at most
    // batchTime ms, with a 'delivery-report' event per message. A failed
    // send destroys the stream and drops what it had buffered without a
    // report, so we track unconfirmed messages ourselves, fail them all, and
    // open a new stream for what comes next.
    type Stream = ReturnType<typeof producer.asStream>;
    const unconfirmed = new Set<number>();
    let stream: Stream | null = null;
    const open = (): Stream => {
      const s = producer.asStream({
        batchSize,
        batchTime: lingerMs,
        reportMode: 'message',
        highWaterMark: Number(o['highWaterMark'] ?? c.inflight),
      });
      s.on('delivery-report', (r: ProducerStreamMessageReport<Buffer, Buffer, Buffer, Buffer>) => {
        const seq = r.message.metadata as number;
        if (unconfirmed.delete(seq)) {
          confirm(seq, null);
          done(1);
        }
      });
      s.on('error', (err: Error) => {
        if (stream === s) stream = null;
        const lost = [...unconfirmed];
        unconfirmed.clear();
        for (const seq of lost) confirm(seq, err);
        done(lost.length);
      });
      return s;
    };
    return {
      produce(seq, msg) {
        stream ??= open();
        outstanding++;
        unconfirmed.add(seq);
        // The source window (`inflight`) bounds what is buffered; write()'s
        // return value is the stream-level backpressure signal.
        stream.write({ topic: c.topic, key: msg.key, value: msg.value, metadata: seq });
      },
      drain() {
        if (outstanding === 0) return Promise.resolve();
        return new Promise<void>((resolve) => {
          onIdle = resolve;
        });
      },
      async close() {
        if (stream) await stream.close();
        await producer.close();
      },
    };
  }

  // api === 'send': an explicit linger/batch accumulator around send(), like
  // librdkafka's: flush when batchSize messages are waiting or the oldest has
  // waited lingerMs, with at most `sends` send() calls outstanding (the
  // connection itself allows one in-flight Produce request when idempotent,
  // so extra sends only overlap encoding/compression with the network).
  const maxSends = Number(o['sends'] ?? 2);
  let buf: MessageToProduce<Buffer, Buffer, Buffer, Buffer>[] = [];
  let seqs: number[] = [];
  let oldest = 0;
  let timer: NodeJS.Timeout | null = null;
  let sending = 0;
  const flush = (force: boolean): void => {
    while (buf.length > 0 && sending < maxSends && (force || buf.length >= batchSize || performance.now() - oldest >= lingerMs)) {
      const batch = buf.length > batchSize ? buf.splice(0, batchSize) : buf;
      const batchSeqs = buf === batch ? seqs : seqs.splice(0, batch.length);
      if (batch === buf) {
        buf = [];
        seqs = [];
      }
      oldest = performance.now();
      sending++;
      producer.send({ messages: batch }, (err) => {
        sending--;
        const e = err ? (err as Error) : null;
        for (const s of batchSeqs) confirm(s, e);
        done(batchSeqs.length);
        flush(false);
      });
    }
    if (buf.length > 0 && !timer) {
      const wait = Math.max(0, lingerMs - (performance.now() - oldest));
      timer = setTimeout(() => {
        timer = null;
        flush(false);
      }, wait);
    }
  };
  return {
    produce(seq, msg) {
      if (buf.length === 0) oldest = performance.now();
      buf.push({ topic: c.topic, key: msg.key, value: msg.value });
      seqs.push(seq);
      outstanding++;
      if (buf.length >= batchSize) flush(false);
      else if (!timer) flush(false);
    },
    drain() {
      if (outstanding === 0) return Promise.resolve();
      flush(true);
      return new Promise<void>((resolve) => {
        onIdle = resolve;
      });
    },
    async close() {
      if (timer) clearTimeout(timer);
      await producer.close();
    },
  };
}

// ------------------------------------------------------------------- driver

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runCase(c: Case): Promise<CaseResult> {
  const dids = makeDids(2000);
  const pool = makeMessages(20_000, dids);

  const t0 = performance.now();
  if (c.client === 'confluent') await confluentCreateTopic(c);
  else await platformaticCreateTopic(c);
  const createTopicMs = performance.now() - t0;
  await sleep(c.settleMs);

  const maxMsgs = c.mode === 'throughput' ? c.messages : Math.ceil(c.rate * c.seconds) + 1;
  const sentAt = new Float64Array(maxMsgs);
  const latency = new Float64Array(maxMsgs);
  const confirmedAt = new Float64Array(c.mode === 'latency' ? maxMsgs : 0);
  let latencyCount = 0;
  let confirmed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let bytes = 0;
  let lastConfirmAt = 0;
  let inflight = 0;
  let waiter: (() => void) | null = null;
  const resumeAt = Math.floor(c.inflight * 0.75);
  const warmupMs = 1000;
  let startAt = 0;

  // Failed messages are produced again (a lossless pipeline cannot skip
  // them); `errors` counts failed attempts.
  const retry: number[] = [];
  let retryWake: (() => void) | null = null;
  const confirm: Confirm = (seq, error) => {
    inflight--;
    if (error) {
      errors++;
      firstError ??= String(error.message ?? error);
      retry.push(seq);
      if (retryWake) {
        const w = retryWake;
        retryWake = null;
        w();
      }
    } else {
      confirmed++;
      bytes += pool[seq % pool.length]!.value.length;
      const now = performance.now();
      lastConfirmAt = now;
      if (c.mode === 'latency') {
        confirmedAt[seq] = now;
        if (sentAt[seq]! - startAt >= warmupMs) latency[latencyCount++] = now - sentAt[seq]!;
      }
    }
    if (waiter && inflight <= resumeAt) {
      const w = waiter;
      waiter = null;
      w();
    }
  };

  const sink = c.client === 'confluent' ? await confluentSink(c, confirm) : await platformaticSink(c, confirm);
  if (global.gc) global.gc();
  const rssBeforeMB = process.memoryUsage().rss / MB;
  const cpu0 = process.cpuUsage();
  const sys0 = systemBusySec();
  const broker0 = c.brokerPid ? processCpuSec(c.brokerPid) : 0;
  startAt = performance.now();
  const deadline = startAt + c.seconds * 1000;
  let produced = 0;

  const send = (): void => {
    const seq = produced++;
    sentAt[seq] = performance.now();
    inflight++;
    sink.produce(seq, pool[seq % pool.length]!);
  };
  const resend = (): void => {
    for (const seq of retry.splice(0)) {
      inflight++;
      sink.produce(seq, pool[seq % pool.length]!);
    }
  };
  /** Wait until every message is confirmed, re-producing failures. */
  const settle = async (): Promise<void> => {
    for (;;) {
      resend();
      await Promise.race([sink.drain(), new Promise<void>((resolve) => (retryWake = resolve))]);
      retryWake = null;
      if (retry.length === 0 && inflight === 0) return;
      if (retry.length > 0) await sleep(100);
    }
  };

  process.stderr.write('PRODUCING\n');
  if (c.mode === 'throughput') {
    while (produced < maxMsgs && performance.now() < deadline) {
      resend();
      while (inflight < c.inflight && produced < maxMsgs) send();
      if (produced < maxMsgs) await new Promise<void>((resolve) => (waiter = resolve));
    }
  } else {
    // Paced: every ~1 ms, send whatever is due at `rate`.
    while (performance.now() < deadline && produced < maxMsgs) {
      resend();
      const due = Math.min(maxMsgs, Math.floor(((performance.now() - startAt) / 1000) * c.rate));
      while (produced < due && inflight < c.inflight) send();
      await sleep(1);
    }
  }
  await settle();
  const end = lastConfirmAt || performance.now();
  const cpu = process.cpuUsage(cpu0);
  const sysBusy = systemBusySec() - sys0;
  const brokerCpuSec = c.brokerPid ? processCpuSec(c.brokerPid) - broker0 : undefined;
  const seconds = (end - startAt) / 1000;
  await sink.close();

  const result: CaseResult = {
    client: c.client,
    variant: c.variant,
    mode: c.mode,
    topic: c.topic,
    produced,
    confirmed,
    errors,
    seconds,
    msgsPerSec: confirmed / seconds,
    mbPerSec: bytes / MB / seconds,
    cpuSec: (cpu.user + cpu.system) / 1e6,
    cpuUserSec: cpu.user / 1e6,
    cpuSysSec: cpu.system / 1e6,
    cpuUsPerMsg: (cpu.user + cpu.system) / Math.max(1, confirmed),
    otherCpuSec: sysBusy - (cpu.user + cpu.system) / 1e6 - (brokerCpuSec ?? 0),
    rssBeforeMB,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    createTopicMs,
  };
  if (firstError !== undefined) result.firstError = firstError;
  if (brokerCpuSec !== undefined) result.brokerCpuSec = brokerCpuSec;
  if (c.mode === 'latency' && process.env.BENCH_DEBUG) {
    // Per second of send time: messages, worst latency.
    const secs = new Map<number, [number, number]>();
    for (let i = 0; i < produced; i++) {
      const s = Math.floor((sentAt[i]! - startAt) / 1000);
      const e = secs.get(s) ?? [0, 0];
      e[0]++;
      e[1] = Math.max(e[1], confirmedAt[i]! - sentAt[i]!);
      secs.set(s, e);
    }
    for (const [s, [n, max]] of secs) console.error(`  t=${s}s sent ${n} worst ${max.toFixed(1)} ms`);
  }
  if (c.mode === 'latency') {
    const sorted = latency.slice(0, latencyCount).sort();
    result.latency = {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      p999: percentile(sorted, 99.9),
      max: sorted.length ? sorted[sorted.length - 1]! : NaN,
      samples: sorted.length,
    };
  }
  return result;
}

if (import.meta.main) {
  const arg = process.argv[2];
  if (!arg) {
    console.error("usage: node bench/kafka-clients/run-case.ts '<json Case>'");
    process.exit(2);
  }
  runCase(JSON.parse(arg) as Case).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
