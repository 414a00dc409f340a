// The real Tap's own backfill ceiling beside atkafka's (issue 8): a real PDS account with N records, the
// real Tap (scripts/tap.sh) backfilling it, first to a client that acks every event at once (Tap alone),
// then through atkafka's Tap source into a real broker (Tap + atkafka). Records/s for both, same machine.
//   node bench/tap-real.ts [--records N]
import { parseArgs } from 'node:util';

import { pino } from 'pino';
import { WebSocket } from 'ws';

import { createKafkaSink } from '../src/sink/kafka/index.ts';
import { TapPipeline } from '../src/sources/tap/pipeline.ts';
import { startPds, type PdsPeer } from '../test/support/peers.ts';
import { startTap } from '../test/support/tap.ts';
import { kafkaOptions, startBroker } from './common.ts';

const { values } = parseArgs({ options: { records: { type: 'string', default: '5000' } } });
const N = Math.ceil(Number(values.records) / 200) * 200;
const log = pino({ level: 'warn' }, pino.destination(2));

async function xrpc(pds: PdsPeer, nsid: string, body: unknown, jwt?: string): Promise<any> {
  const res = await fetch(`${pds.pdsUrl}/xrpc/${nsid}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(jwt ? { authorization: `Bearer ${jwt}` } : {}) },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${nsid}: ${res.status} ${await res.text()}`);
  return res.json();
}

await using pds = await startPds();
const account = pds.accounts[0]!;
const { accessJwt } = await xrpc(pds, 'com.atproto.server.createSession', { identifier: account.did, password: account.password });
const t0 = performance.now();
for (let b = 0; b < N / 200; b++) {
  const writes = Array.from({ length: 200 }, (_, i) => ({
    $type: 'com.atproto.repo.applyWrites#create',
    collection: 'app.bsky.feed.post',
    value: { $type: 'app.bsky.feed.post', text: `bench ${b}-${i}`, createdAt: new Date().toISOString() },
  }));
  await xrpc(pds, 'com.atproto.repo.applyWrites', { repo: account.did, writes }, accessJwt);
}
console.log(`PDS: ${N.toLocaleString()} records written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// 1. Tap alone: a client that acks every event the moment it arrives.
{
  await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl });
  const ws = new WebSocket(tap.channelUrl);
  await new Promise((r) => ws.once('open', r));
  let records = 0;
  const done = Promise.withResolvers<number>();
  ws.on('message', (data) => {
    const e = JSON.parse(data.toString()) as { id: number; type: string };
    ws.send(`{"type":"ack","id":${e.id}}`);
    if (e.type === 'record' && ++records === N) done.resolve(performance.now());
  });
  const start = performance.now();
  await tap.addRepos([account.did]);
  const end = await done.promise;
  ws.close();
  console.log(`Tap alone (acks at once): ${N.toLocaleString()} records in ${((end - start) / 1000).toFixed(1)} s = ${Math.round(N / ((end - start) / 1000)).toLocaleString()} records/s`);
}

// 2. Tap + atkafka into a real broker, acks after Kafka confirmed.
{
  const broker = await startBroker();
  const sink = await createKafkaSink(kafkaOptions(broker.bootstrap, `bench-tap-real-${Date.now()}`, 200), log, 10_000);
  await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl });
  let confirmed = 0;
  const done = Promise.withResolvers<number>();
  const pipeline = new TapPipeline({
    tapHost: tap.url,
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
    // Every event: N records plus the identity event that opens the backfill.
    onEventConfirmed: () => {
      if (++confirmed === N + 1) done.resolve(performance.now());
    },
  });
  const abort = new AbortController();
  const running = pipeline.run(abort.signal);
  const start = performance.now();
  await tap.addRepos([account.did]);
  const end = await done.promise;
  abort.abort();
  await running;
  console.log(`Tap + atkafka (acks after Kafka): ${N.toLocaleString()} records in ${((end - start) / 1000).toFixed(1)} s = ${Math.round(N / ((end - start) / 1000)).toLocaleString()} records/s`);
  await sink.close();
  await broker.stop();
}
process.exit(0);
