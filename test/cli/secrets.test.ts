// Credentials given to `atkafka firehose relay` never reach its logs, its error lines or /health:
// the relay URL's user:password and token, and the SASL password. The real CLI, a real broker.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { freePort, startBridge, waitFor } from '../support/bridge.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const USER = 'relayuser42';
const PASSWORD = 'relay-pw-s3cret';
const TOKEN = 'tok-s3cret-123';
const SASL_PASSWORD = 'sasl-pw-s3cret';

function assertNoSecrets(text: string, where: string): void {
  for (const secret of [USER, PASSWORD, TOKEN, SASL_PASSWORD]) assert.ok(!text.includes(secret), `${secret} in ${where}:\n${text}`);
}

describe('secrets stay out of what atkafka prints', () => {
  let broker: TestBroker;
  let dir: string;
  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-secrets-'));
  });
  after(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("the relay URL's username, password and token: redacted in the startup line, the connect lines, /health", async () => {
    const relayPort = await freePort(); // closed: every connect fails, and is logged
    const relayHost = `ws://${USER}:${PASSWORD}@127.0.0.1:${relayPort}/?token=${TOKEN}&mode=1`;
    const cursorFile = join(dir, 'relay.json');
    const bridge = await startBridge(
      ['--bootstrap-servers', broker.bootstrap, '--output-topic', 'secrets', '--relay-host', relayHost, '--cursor-file', cursorFile, '--reconnect-backoff', '50ms', '--reconnect-backoff-max', '100ms', '--debug'],
      {},
    );
    try {
      await waitFor('a few failed relay connects', async () => (bridge.logs().match(/relay connection lost/g) ?? []).length >= 2, 30_000);
      const health = await (await fetch(bridge.metricsUrl.replace('/metrics', '/health'))).text();
      assertNoSecrets(health, '/health');
      assertNoSecrets(await bridge.metrics(), '/metrics');
    } finally {
      bridge.child.kill('SIGTERM');
    }
    assert.equal(await bridge.exited, 0, bridge.logs());
    const logs = bridge.logs();
    assertNoSecrets(logs, 'the logs');
    const lines = logs.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const start = lines.find((l) => l.msg === 'starting atkafka firehose relay');
    assert.equal(start?.relayHost, `ws://***:***@127.0.0.1:${relayPort}/?token=***&mode=1`);
    const connecting = lines.find((l) => l.msg === 'connecting to relay');
    // The relay's own query parameters go along (a token may be how it authenticates), redacted in the log.
    assert.equal(connecting?.url, `ws://***:***@127.0.0.1:${relayPort}/xrpc/com.atproto.sync.subscribeRepos?token=***&mode=1`);
    const saved = await readFile(cursorFile, 'utf8').catch(() => '');
    assertNoSecrets(saved, 'the cursor file');
  });

  test('the SASL password from ATKAFKA_SASL_PASSWORD: not in any log line, also while Kafka refuses the client', async () => {
    // The broker has no SASL listener: the client's handshake fails and is retried, and logged.
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', 'secrets-sasl', '--cursor-file=', '--debug'], {
      ATKAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      ATKAFKA_SASL_USERNAME: 'kafka-user',
      ATKAFKA_SASL_PASSWORD: SASL_PASSWORD,
    });
    try {
      await waitFor('a failed Kafka connect, logged', async () => bridge.logs().includes('Kafka not reachable yet'), 45_000);
    } finally {
      bridge.child.kill('SIGKILL');
    }
    await bridge.exited;
    assert.match(bridge.logs(), /"msg":"starting atkafka firehose relay"/);
    assertNoSecrets(bridge.logs(), 'the logs');
  });
});
