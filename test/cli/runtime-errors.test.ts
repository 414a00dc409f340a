// What stays exit 1: failures of a valid configuration at run time, unlike the exit-2 configuration
// errors of config-errors.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const bin = fileURLToPath(new URL('../../bin/atkafka.js', import.meta.url));

describe('runtime failures: exit 1', () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker();
  });
  after(async () => {
    await broker?.stop();
  });

  test('--metrics-listen-address already in use: exit 1 after connecting to Kafka, naming the address', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as { port: number };
    try {
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ATKAFKA_') && k !== 'DEBUG' && k !== 'METRICS_LISTEN_ADDRESS') env[k] = v;
      const child = spawn(
        process.execPath,
        [bin, 'firehose', 'relay', '--bootstrap-servers', broker.bootstrap, '--output-topic', 'busy-port', '--cursor-file=', '--metrics-listen-address', `127.0.0.1:${port}`],
        { env, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 1, stderr);
      const lines = stderr.split('\n').filter((l) => l !== '');
      assert.match(lines.at(-1)!, new RegExp(`^atkafka: cannot listen on --metrics-listen-address 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      assert.doesNotMatch(stderr, /^\s+at /m);
    } finally {
      busy.close();
    }
  });
});
