// What a per-message delivery report costs, against confirming by flush epochs (src/sink/kafka/producer.ts):
// the raw librdkafka producer, corpus messages, 200 partitions, idempotent, zstd 1, 10,000 unconfirmed at most.
// The first per-message run warms the broker up. node bench/micro/delivery-reports-vs-flush.ts
import Kafka from '@confluentinc/kafka-javascript';
import { launchBroker } from '../../scripts/kafka/local-broker.ts';
import { corpusFrames, expectedMessages } from '../../test/support/corpus.ts';
const msgs = expectedMessages(corpusFrames()).map((m) => ({ key: m.key, value: Buffer.from(m.value) }));
const broker = await launchBroker({ fastStartup: false });
const N = 400000, CAP = 10000;
const admin = Kafka.AdminClient.create({ 'bootstrap.servers': broker.bootstrap });
async function topic(name: string) { await new Promise<void>((res, rej) => admin.createTopic({ topic: name, num_partitions: 200, replication_factor: 1 }, (e) => e ? rej(e) : res())); }
function mk(extra: Record<string, unknown>) {
  const p = new Kafka.Producer({ 'bootstrap.servers': broker.bootstrap, 'enable.idempotence': true, acks: 'all', 'message.timeout.ms': 0, partitioner: 'murmur2_random', 'compression.codec': 'zstd', 'compression.level': 1, 'linger.ms': Number(process.env.LINGER ?? 20), 'batch.size': 1048576, 'queue.buffering.max.messages': 100000, dr_cb: true, ...extra } as any);
  return new Promise<Kafka.Producer>((res) => p.connect({}, () => res(p)));
}
async function perMessage(t: string) {
  const p = await mk({}); p.setPollInBackground(true);
  let sent = 0, done = 0; const fin = Promise.withResolvers<void>();
  const pump = () => { while (sent < N && sent - done < CAP) { const m = msgs[sent % msgs.length]!; sent++; p.produce(t, null, m.value, m.key, null, sent); } };
  p.on('delivery-report', () => { done++; if (done === N) fin.resolve(); else if (sent - done <= CAP / 2) pump(); });
  const t0 = performance.now(), c0 = process.cpuUsage(); pump(); await fin.promise;
  const s = (performance.now() - t0) / 1000, c = process.cpuUsage(c0);
  console.log(`per-message DR: ${Math.round(N / s)} msg/s, ${((c.user + c.system) / N).toFixed(1)} us CPU/msg`);
  await new Promise<void>((r) => p.disconnect(() => r()));
}
async function epochs(t: string) {
  const p = await mk({ 'delivery.report.only.error': true }); p.setPollInBackground(true);
  let failed = 0; p.on('delivery-report', () => { failed++; });
  let sent = 0, done = 0; const fin = Promise.withResolvers<void>();
  let flushing = false;
  const step = () => {
    // produce up to CAP, then flush; while flushing, nothing (simulates no DR cost)
    const start = sent; while (sent < N && sent - start < CAP) { const m = msgs[sent % msgs.length]!; sent++; p.produce(t, null, m.value, m.key, null); }
    flushing = true;
    const upto = sent;
    p.flush(60000, (err) => { flushing = false; if (err) throw err; done = upto; if (done === N) fin.resolve(); else step(); });
  };
  const t0 = performance.now(), c0 = process.cpuUsage(); step(); await fin.promise;
  const s = (performance.now() - t0) / 1000, c = process.cpuUsage(c0);
  console.log(`flush epochs (${CAP}): ${Math.round(N / s)} msg/s, ${((c.user + c.system) / N).toFixed(1)} us CPU/msg, failed ${failed}`);
  await new Promise<void>((r) => p.disconnect(() => r()));
}
await topic('w'); await perMessage('w');
await topic('a'); await perMessage('a');
await topic('b'); await epochs('b');
await topic('c'); await perMessage('c');
await topic('d'); await epochs('d');
admin.disconnect(); await broker.stop(); process.exit(0);
