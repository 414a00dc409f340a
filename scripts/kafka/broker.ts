// Run a throwaway single-node Kafka in the foreground (for the demo or manual tests):
//
//   node scripts/kafka/broker.ts [--port N] [--set key=value]... [--full-jit] [--keep]
//     prints KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT and KAFKA_BROKER_PID=<the JVM's pid> on
//     stdout once it serves requests, and runs until SIGINT/SIGTERM; then the broker and its data go.
//   node scripts/kafka/broker.ts --prepare
//     fetches the jars and builds the JVM class archive that speeds up every
//     later start, then exits (scripts/setup.sh runs this).
//
// --full-jit keeps the C2 compiler (slower start, higher throughput: use it for
// benchmarks). --keep leaves the data and kafka.log in the temp folder.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { launchBroker, prepareClassArchive } from './local-broker.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    set: { type: 'string', multiple: true },
    'full-jit': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    prepare: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log('usage: node scripts/kafka/broker.ts [--port N] [--set key=value]... [--full-jit] [--keep] | --prepare');
  process.exit(0);
}

if (values.prepare) {
  const t0 = performance.now();
  const archive = await prepareClassArchive();
  console.error(archive
    ? `kafka: class archive ready (${archive}, ${Math.round(performance.now() - t0)} ms)`
    : 'kafka: the JVM wrote no class archive; brokers will start without it');
  process.exit(0);
}

const config: Record<string, string> = {};
for (const kv of values.set ?? []) {
  const i = kv.indexOf('=');
  if (i <= 0) {
    console.error(`broker: --set wants key=value, got ${JSON.stringify(kv)}`);
    process.exit(2);
  }
  config[kv.slice(0, i)] = kv.slice(i + 1);
}
const port = values.port === undefined ? undefined : Number(values.port);
if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
  console.error(`broker: bad --port ${JSON.stringify(values.port)}`);
  process.exit(2);
}

const t0 = performance.now();
const broker = await launchBroker({ port, config, fastStartup: !values['full-jit'], keepFiles: values.keep });
console.error(`kafka: broker up in ${Math.round(performance.now() - t0)} ms (files: ${broker.dir})`);
console.log(`KAFKA_BOOTSTRAP_SERVERS=${broker.bootstrap}`);
console.log(`KAFKA_BROKER_PID=${broker.pid ?? ''}`);

let stopping = false;
const shutdown = async (signal: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  console.error(`kafka: ${signal}, stopping broker`);
  await broker.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGHUP', () => void shutdown('SIGHUP'));

// Stay in the foreground; if the broker dies by itself, say so and fail.
const watch = setInterval(() => {
  if (!stopping && !broker.running) {
    let log = '';
    try { log = readFileSync(broker.logFile, 'utf8').trimEnd().split('\n').slice(-20).join('\n'); } catch { /* none */ }
    console.error(`kafka: broker exited unexpectedly; last lines of ${broker.logFile}:\n${log}`);
    clearInterval(watch);
    process.exit(1);
  }
}, 500);
