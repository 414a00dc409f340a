import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { redactUrl } from '../../src/telemetry/redact.ts';

describe('redactUrl', () => {
  test('hides the username and password of a URL', () => {
    assert.equal(redactUrl('ws://user:hunter2@relay.example:2470'), 'ws://***:***@relay.example:2470/');
    assert.equal(redactUrl('wss://tok3n@relay.example/'), 'wss://***@relay.example/');
    assert.equal(redactUrl('https://:hunter2@plc.example'), 'https://***:***@plc.example/');
    // Forms only the WHATWG parser reads as userinfo.
    assert.doesNotMatch(redactUrl('ws:\\\\user:hunter2@relay.example'), /hunter2|user/);
    assert.doesNotMatch(redactUrl('wss://us%40er:hun%3Ater2@relay.example'), /hun|us%40er/);
  });

  test('hides secret-looking query and fragment parameters, keeps the others', () => {
    const out = redactUrl('wss://relay.example/xrpc/x?cursor=5&token=abc123&api_key=k1&Password=p1&sig=s1');
    assert.equal(out, 'wss://relay.example/xrpc/x?cursor=5&token=***&api_key=***&Password=***&sig=***');
    assert.doesNotMatch(redactUrl('https://ozone.example/cb#access_token=abc123&x=1'), /abc123/);
    assert.doesNotMatch(redactUrl('https://h.example/?x-auth=abc123'), /abc123/);
    assert.doesNotMatch(redactUrl('https://h.example/?client_secret=abc123&client_secret=def456'), /abc123|def456/);
  });

  test('a scheme-less host:port with userinfo (a bootstrap server) is redacted too', () => {
    assert.equal(redactUrl('user:hunter2@kafka-1:9092'), '***:***@kafka-1:9092');
    assert.equal(redactUrl('SASL_SSL://user:hunter2@kafka-1:9092'), 'SASL_SSL://***:***@kafka-1:9092');
  });

  test('text with nothing to hide comes back unchanged, byte for byte', () => {
    for (const s of ['wss://bsky.network', 'ftp://relay.example', 'kafka-1:9092', '[::1]:9092', 'ws://127.0.0.1:2470/xrpc/com.atproto.sync.subscribeRepos?cursor=42', '', 'not a url', '0.0.0.0:8081']) {
      assert.equal(redactUrl(s), s);
    }
  });

  test('never throws, and unparsable input still loses its secrets', () => {
    for (const s of ['ws://user:hunter2@[bad', 'user:hunter2@', '::::@@@', 'http://%zz:hunter2@x', '?token=hunter2', 'ws://x:99999/?password=hunter2', 'ws://a:hunter2@b:c@d']) {
      const out = redactUrl(s);
      assert.equal(typeof out, 'string');
      assert.doesNotMatch(out, /hunter2/, s);
    }
    assert.equal(redactUrl(undefined as unknown as string), '[redacted]');
  });
});
