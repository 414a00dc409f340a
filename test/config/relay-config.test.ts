import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { parseArgs, resolveFlags, UsageError } from '../../src/cli/flags.ts';
import { checkBootstrapServer, checkListenAddress, parseKafkaOptions } from '../../src/config/checks.ts';
import { enrichFlags, firehoseFlags, globalFlags, kafkaFlags, relayFlags } from '../../src/config/flags.ts';
import { relayConfig } from '../../src/config/relay-config.ts';

const specs = [...firehoseFlags, ...relayFlags, ...enrichFlags, ...kafkaFlags, ...globalFlags];
const KAFKA = { ATKAFKA_BOOTSTRAP_SERVERS: 'localhost:9092', ATKAFKA_OUTPUT_TOPIC: 'atproto-events' };

function config(argv: string[], env: Record<string, string> = {}) {
  return relayConfig(resolveFlags(parseArgs(argv, specs), specs, { ...KAFKA, ...env }));
}

const refused = (fn: () => unknown) => assert.throws(fn, UsageError);

describe('relay configuration', () => {
  test('the defaults are accepted, librdkafka included', () => {
    const c = config([]);
    assert.equal(c.metricsListenAddress, '0.0.0.0:6009');
    assert.equal(c.cursorFile, 'atkafka-cursor.json');
    assert.equal(c.kafka.sasl, undefined);
    assert.equal(c.kafka.tls, undefined);
    // The Go version's behaviour: enrichment on, against plc.directory, no profiles, no envelope.
    assert.deepEqual(c.stages, {
      collections: undefined,
      services: undefined,
      enrich: true,
      plcHost: 'https://plc.directory',
      apiHost: undefined,
      enrichTimeoutMs: 1000,
      enrichConcurrency: 64,
      identityCacheEntries: 100_000,
      plcRateLimit: 200,
      allowPrivateIdentityHosts: false,
      dnsServers: [],
      handleWellKnownUrl: 'https://{handle}/.well-known/atproto-did',
      didWebUrl: 'https://{host}/.well-known/did.json',
      osprey: undefined,
      topicTemplate: undefined,
      kafkaHeaders: true,
      format: 'atkafka',
      jetstreamCompress: false,
    });
  });

  test('filters, a PLC host with a trailing slash, Osprey and a template', () => {
    const c = config(['--plc-host', 'http://plc.local:2582/', '--watched-services', '*.bsky.network', '--ignored-collections', 'app.bsky.feed.like,chat.bsky.*'], {
      ATKAFKA_OSPREY_COMPATIBLE: 'true',
      ATKAFKA_TOPIC_TEMPLATE: 'atproto.{collection}',
      ATKAFKA_ENRICH: 'false',
    });
    assert.equal(c.stages.plcHost, 'http://plc.local:2582');
    assert.deepEqual(c.stages.services, { mode: 'watched', hosts: ['bsky.network'] });
    assert.deepEqual(c.stages.collections, { mode: 'ignored', exact: ['app.bsky.feed.like'], prefixes: ['chat.bsky.'] });
    assert.deepEqual(c.stages.osprey, { workerId: 0, epochMs: 1420070400000 });
    assert.equal(c.stages.topicTemplate, 'atproto.{collection}');
    assert.equal(c.stages.enrich, false);
  });

  test('env vars set to empty: text flags empty, optional settings unset, switches off', () => {
    const c = config([], {
      ATKAFKA_METRICS_LISTEN_ADDRESS: '',
      ATKAFKA_CURSOR_FILE: '',
      ATKAFKA_SASL_MECHANISM: '',
      ATKAFKA_SASL_USERNAME: '',
      ATKAFKA_SASL_PASSWORD: '',
      ATKAFKA_TLS: '',
      ATKAFKA_TLS_CA_FILE: '',
      ATKAFKA_KAFKA_OPTIONS: '',
      ATKAFKA_DEBUG: '',
      ATKAFKA_PLC_HOST: '',
      ATKAFKA_OSPREY_COMPATIBLE: 'false',
    });
    assert.equal(c.metricsListenAddress, '', 'metrics server disabled');
    assert.equal(c.cursorFile, undefined, 'no cursor file');
    assert.equal(c.kafka.sasl, undefined);
    assert.equal(c.kafka.tls, undefined);
    assert.deepEqual(c.kafka.extra, {});
    assert.equal(c.debug, false);
    for (const name of ['ATKAFKA_DECODE_THREADS', 'ATKAFKA_MAX_IN_FLIGHT', 'ATKAFKA_LINGER', 'ATKAFKA_STALL_TIMEOUT', 'ATKAFKA_CURSOR']) {
      assert.throws(() => config([], { [name]: '' }), new RegExp(`^UsageError: ${name} is set but empty`), name);
    }
    assert.throws(() => config([], { ATKAFKA_RELAY_HOST: '' }), /--relay-host: "" is not a URL/);
  });

  test('bootstrap servers: host:port with a real port, IPv6 in brackets', () => {
    for (const ok of ['localhost:9092', 'kafka-1.internal:9092', 'kafka.:9092', 'my_host:1', '10.0.0.1:65535', '[::1]:9092', '[2001:db8::1]:19092']) {
      checkBootstrapServer(ok);
    }
    for (const bad of ['kafka', 'kafka:', ':9092', 'kafka:0', 'kafka:65536', 'kafka:123456', '[::1]', '::1:9092', '[nope]:9092', 'user@kafka:9092', 'u:p@kafka:9092', 'kafka:9092/x', 'ka fka:9092', '-kafka:9092']) {
      refused(() => checkBootstrapServer(bad));
    }
  });

  test('metrics listen address: host:port, :port or a port, IPv6 in brackets, 0..65535; empty disables', () => {
    for (const ok of ['', '0.0.0.0:8081', ':8081', '8081', '[::]:8081', '[::1]:0', 'localhost:9100', '127.0.0.1:65535']) checkListenAddress(ok);
    for (const bad of ['nonsense', ':abc', '1.2.3.4:99999', '::1:8081', '[zz]:80', 'a b:80', 'host:', '0.0.0.0:-1', '0.0.0.0:80:80', ' ']) {
      refused(() => checkListenAddress(bad));
    }
  });

  test('--kafka-option: key=value (the value may hold "="), reserved keys and idempotence limits refused', () => {
    assert.deepEqual(parseKafkaOptions(['linger.ms=5', ' sasl.oauthbearer.config = a=b ', 'retries=3', 'max.in.flight=5']), {
      'linger.ms': '5',
      'sasl.oauthbearer.config': 'a=b',
      retries: '3',
      'max.in.flight': '5',
    });
    for (const bad of ['acks=all', 'enable.idempotence=false', 'message.timeout.ms=300000', 'partitioner=random', 'bootstrap.servers=x:1', 'max.in.flight=6', 'retries=0', '=1', 'x']) {
      refused(() => parseKafkaOptions([bad]));
    }
    // librdkafka's own checks, at config time.
    assert.equal(config(['--kafka-option', 'statistics.interval.ms=1000']).kafka.extra['statistics.interval.ms'], '1000');
    // librdkafka's comma lists survive the flag's own comma splitting, from the flag and from the env var.
    assert.deepEqual(config(['--kafka-option', 'debug=broker,topic,msg', '--kafka-option', 'linger.ms=5']).kafka.extra, { debug: 'broker,topic,msg', 'linger.ms': '5' });
    assert.deepEqual(config([], { ATKAFKA_KAFKA_OPTIONS: 'linger.ms=5,debug=eos,metadata' }).kafka.extra, { 'linger.ms': '5', debug: 'eos,metadata' });
    assert.throws(() => config(['--kafka-option', 'no.such.thing=1']), /--kafka-option no\.such\.thing=1: No such configuration property/);
  });
});
