// The operator's view of a running bridge: metrics that move while the real corpus streams through,
// /healthz while the process lives, /readyz only while events can flow (it flips when the broker
// stops and when it comes back, and when the relay goes away), /health as before.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startReplayServer } from '../../src/replay/index.ts';
import { metricValue, startBridge, waitFor, type Bridge } from '../support/bridge.ts';
import { corpusFrames } from '../support/corpus.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const frames = corpusFrames();

async function probe(b: Bridge, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(b.metricsUrl.replace('/metrics', path));
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Sum of a metric's samples with these labels; for histograms pass the _count / _sum / _bucket name. */
async function metric(b: Bridge, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue(await b.metrics(), name, labels);
}

describe('probes and metrics of a running bridge', () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker();
  });
  after(async () => {
    await broker?.stop();
  });

  it('metrics move as the corpus streams; /readyz flips with the broker and the relay; /healthz stays up', async (t) => {
    if (!broker.canRestart) return t.skip('needs a local broker it can stop (KAFKA_BOOTSTRAP_SERVERS is set)');
    // The corpus over and over, slowly enough to watch it move for the whole test.
    const relay = await startReplayServer({ frames, rate: 200, loop: true });
    const b = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', 'probes', '--relay-host', relay.url, '--cursor-file', '']);
    try {
      await waitFor('ready', async () => (await probe(b, '/readyz').catch(() => ({ status: 0 }))).status === 200, 60_000, 200);
      const ready = await probe(b, '/readyz');
      assert.equal(ready.body.ready, true);
      assert.equal(ready.body.upstreamConnected, true);
      assert.equal(ready.body.kafkaReachable, true);
      assert.equal((await probe(b, '/healthz')).status, 200);
      assert.equal((await probe(b, '/health')).status, 200, 'the first version’s probe still answers');

      // Two scrapes a few seconds apart: every number that should move, moves.
      const names = [
        ['atkafka_handled_events', {}],
        ['atkafka_produced_events', { status: 'ok' }],
        ['atkafka_upstream_position', { source: 'relay' }],
        ['atkafka_relay_last_seq', {}],
        ['atkafka_event_latency_seconds_count', {}],
        ['atkafka_kafka_delivery_latency_seconds_count', {}],
        ['atkafka_process_process_cpu_seconds_total', {}],
      ] as const;
      await waitFor('a saved position', async () => (await metric(b, 'atkafka_upstream_position', { source: 'relay' })) > 0, 30_000, 200);
      const first = await Promise.all(names.map(([n, l]) => metric(b, n, l)));
      await new Promise((r) => setTimeout(r, 3000));
      const second = await Promise.all(names.map(([n, l]) => metric(b, n, l)));
      names.forEach(([n], i) => assert.ok(second[i]! > first[i]!, `${n}: ${first[i]} -> ${second[i]}`));
      assert.equal(await metric(b, 'atkafka_upstream_connected', { source: 'relay' }), 1);
      assert.equal(await metric(b, 'atkafka_ready'), 1);
      assert.equal(await metric(b, 'atkafka_kafka_reachable'), 1);
      const lag = await metric(b, 'atkafka_upstream_lag_seconds', { source: 'relay' });
      assert.ok(Number.isFinite(lag) && lag >= 0, `relay lag ${lag}`);
      const text = await b.metrics();
      for (const name of ['atkafka_backpressure_paused_seconds_total', 'atkafka_kafka_in_flight', 'atkafka_invalid_input', 'atkafka_upstream_reconnects', 'atkafka_process_process_resident_memory_bytes']) {
        assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exported`);
      }

      // The broker goes away: not ready (Kafka unreachable), still alive.
      await broker.halt();
      const down = await waitFor('not ready without Kafka', async () => {
        const r = await probe(b, '/readyz');
        return r.status === 503 ? r : undefined;
      }, 40_000, 250);
      assert.equal(down.body.kafkaReachable, false);
      assert.equal(down.body.upstreamConnected, true, 'the relay is still connected (reading is paused, not closed)');
      assert.equal((await probe(b, '/healthz')).status, 200, 'alive all the same');
      assert.equal(await metric(b, 'atkafka_ready'), 0);

      // Back: ready again, and events flow again.
      await broker.resume();
      await waitFor('ready again', async () => (await probe(b, '/readyz')).status === 200, 60_000, 250);
      const produced = await metric(b, 'atkafka_produced_events', { status: 'ok' });
      await waitFor('produced again', async () => (await metric(b, 'atkafka_produced_events', { status: 'ok' })) > produced, 30_000, 250);

      // The relay goes away: not ready (upstream), Kafka still reachable.
      await relay.close();
      const noRelay = await waitFor('not ready without the relay', async () => {
        const r = await probe(b, '/readyz');
        return r.status === 503 ? r : undefined;
      }, 30_000, 250);
      assert.equal(noRelay.body.upstreamConnected, false);
      assert.equal(noRelay.body.kafkaReachable, true);
      assert.equal((await probe(b, '/health')).status, 503);
      assert.equal((await probe(b, '/healthz')).status, 200);
      assert.equal(await metric(b, 'atkafka_upstream_connected', { source: 'relay' }), 0);
    } finally {
      b.child.kill('SIGTERM');
      await b.exited;
      await relay.close().catch(() => undefined);
    }
  });
});
