/**
 * Idempotence under retriable partition errors: create a 200-partition topic
 * and produce 20,000 keyed messages at once (batches of 2,000, all sent
 * without waiting), while the broker is still creating the partition logs, so
 * some partitions of a Produce request answer NOT_LEADER_OR_FOLLOWER /
 * UNKNOWN_TOPIC_OR_PARTITION and the client has to retry. An idempotent
 * producer must land exactly what it confirmed: read the topic back with kcat
 * and compare. platformatic is tried with overlapping send() calls (10 at
 * once, queued on its one connection) and with one send() at a time.
 *
 *   node bench/kafka-clients/fresh-topic.ts [--brokers 127.0.0.1:9092] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { RdKafka } from '@confluentinc/kafka-javascript';
import { Admin, Producer, ProduceAcks, compatibilityPartitioner } from '@platformatic/kafka';
import { makeDids, makeMessages, type BenchMessage } from './messages.ts';

const { values: args } = parseArgs({
  options: {
    brokers: { type: 'string', default: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092' },
    rounds: { type: 'string', default: '3' },
  },
});
const PARTITIONS = 200;
const BATCH = 2000;

function landed(topic: string): number {
  const out = execFileSync('kcat', ['-b', args.brokers, '-C', '-t', topic, '-e', '-q', '-f', '%p\n'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return out.toString().split('\n').filter(Boolean).length;
}

async function platformatic(
  topic: string,
  msgs: BenchMessage[],
  oneAtATime = false,
): Promise<{ confirmed: number; failed: number }> {
  const admin = new Admin({ clientId: 'fresh-admin', bootstrapBrokers: [args.brokers] });
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
  await admin.close();
  const p = new Producer<Buffer, Buffer, Buffer, Buffer>({
    clientId: 'fresh-platformatic',
    bootstrapBrokers: [args.brokers],
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression: 'zstd',
    partitioner: compatibilityPartitioner,
  });
  await p.initIdempotentProducer({});
  await p.metadata({ topics: [topic] });
  let confirmed = 0;
  let failed = 0;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < msgs.length; i += BATCH) {
    const batch = msgs.slice(i, i + BATCH).map((m) => ({ topic, key: m.key, value: m.value }));
    const sent = p.send({ messages: batch }).then(
      () => void (confirmed += batch.length),
      () => void (failed += batch.length),
    );
    // oneAtATime: what producer.asStream() does (next send after the last returned).
    if (oneAtATime) await sent;
    else sends.push(sent);
  }
  await Promise.all(sends);
  await p.close();
  return { confirmed, failed };
}

async function confluent(topic: string, msgs: BenchMessage[]): Promise<{ confirmed: number; failed: number }> {
  const admin = RdKafka.AdminClient.create({ 'bootstrap.servers': args.brokers });
  await new Promise<void>((resolve, reject) =>
    admin.createTopic({ topic, num_partitions: PARTITIONS, replication_factor: 1 }, 30_000, (e) => (e ? reject(e) : resolve())),
  );
  admin.disconnect();
  const p = new RdKafka.Producer({
    'bootstrap.servers': args.brokers,
    'enable.idempotence': true,
    acks: -1,
    'compression.codec': 'zstd',
    partitioner: 'murmur2_random',
    'linger.ms': 5,
    dr_cb: true,
  });
  let confirmed = 0;
  let failed = 0;
  p.on('delivery-report', (err) => (err ? failed++ : confirmed++));
  await new Promise<void>((resolve, reject) => p.connect({}, (e) => (e ? reject(e) : resolve())));
  p.setPollInBackground(true);
  for (const m of msgs) p.produce(topic, null, m.value, m.key);
  while (confirmed + failed < msgs.length) await new Promise((r) => setTimeout(r, 20));
  await new Promise<void>((resolve) => p.disconnect(5000, () => resolve()));
  return { confirmed, failed };
}

const msgs = makeMessages(20_000, makeDids(2000));
for (let round = 1; round <= Number(args.rounds); round++) {
  for (const [name, run] of [
    ['confluent', confluent],
    ['platformatic', platformatic],
    ['platformatic-one-send-at-a-time', (t: string, m: BenchMessage[]) => platformatic(t, m, true)],
  ] as const) {
    const topic = `fresh-${name}-${Date.now()}`;
    const { confirmed, failed } = await run(topic, msgs);
    const n = landed(topic);
    const verdict = n === confirmed ? 'exact' : n > confirmed ? `${n - confirmed} MORE than confirmed` : `${confirmed - n} LOST`;
    console.log(`${name} round ${round}: sent ${msgs.length}, confirmed ${confirmed}, failed ${failed}, landed ${n} (${verdict})`);
  }
}
process.exit(0);
