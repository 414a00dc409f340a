// The Kafka sink alone against a local broker, corpus messages, in-flight cap CAP (default 20000): node bench/micro/kafka-sink-only.ts
import { pino } from 'pino';
import { createKafkaSink } from '../../src/sink/kafka/index.ts';
import { launchBroker } from '../../scripts/kafka/local-broker.ts';
import { corpusFrames, expectedMessages } from '../../test/support/corpus.ts';
const msgs = expectedMessages(corpusFrames());
const broker = await launchBroker({ fastStartup: false });
const sink = await createKafkaSink({ bootstrapServers: [broker.bootstrap], topic: 'sinkonly', partitions: 200, replicationFactor: 1, compression: 'zstd', compressionLevel: 1, lingerMs: Number(process.env.LINGER ?? 20), batchBytes: 1048576, maxMessageBytes: 20971520, clientId: 'x', extra: {} }, pino({ level: 'warn' }), 20000);
const N = 300000, CAP = Number(process.env.CAP ?? 20000);
let sent = 0, done = 0;
const fin = Promise.withResolvers<void>();
const t0 = performance.now(); const c0 = process.cpuUsage();
function pump() { while (sent < N && sink.inFlight < CAP) { const m = msgs[sent % msgs.length]!; sent++; sink.send(m.key, m.value, null); } }
function onDone() { done++; if (done === N) fin.resolve(); else if (sink.inFlight <= CAP / 2) pump(); }
sink.onConfirmed(onDone);
pump();
await fin.promise;
const s = (performance.now() - t0) / 1000; const c = process.cpuUsage(c0);
console.log(`sink only: ${Math.round(N / s)} msg/s, ${((c.user + c.system) / N).toFixed(1)} us CPU/msg, maxRSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
await sink.close(); await broker.stop(); process.exit(0);
