import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { checkCursorFile, CursorFileError, CursorFileInvalid, loadCursor, saveCursor } from '../../src/checkpoint/cursor-file.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'atkafka-cursor-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Load-time problems are CursorFileInvalid (exit 2), still a CursorFileError for code that catches those. */
async function rejectsWith(path: string, message: RegExp, load: Promise<unknown> = loadCursor(path)): Promise<void> {
  await assert.rejects(load, (err: unknown) => {
    assert.ok(err instanceof CursorFileInvalid, `expected CursorFileInvalid, got ${String(err)}`);
    assert.ok(err instanceof CursorFileError);
    assert.equal(err.name, 'CursorFileInvalid');
    assert.match(err.message, message);
    return true;
  });
}

describe('cursor file', () => {
  test('save then load round-trips seq and relay host, with the save time', async () => {
    const path = join(dir, 'roundtrip.json');
    const before = Date.now();
    await saveCursor(path, { seq: 31527015471, relayHost: 'wss://bsky.network' });
    const loaded = await loadCursor(path);
    assert.ok(loaded);
    assert.equal(loaded.seq, 31527015471);
    assert.equal(loaded.relayHost, 'wss://bsky.network');
    const savedAt = Date.parse(loaded.savedAt);
    assert.ok(savedAt >= before - 1000 && savedAt <= Date.now() + 1000, loaded.savedAt);
    // The file itself: one JSON line, readable by people and other tools.
    const text = await readFile(path, 'utf8');
    assert.match(text, /^\{"seq":31527015471,"relayHost":"wss:\/\/bsky\.network","savedAt":"[^"]+"\}\n$/);
  });

  test('seq 0 and seqs up to 2^53 - 1 round-trip exactly', async () => {
    const path = join(dir, 'limits.json');
    for (const seq of [0, 1, 2 ** 53 - 1]) {
      await saveCursor(path, { seq, relayHost: 'ws://127.0.0.1:2470' });
      assert.equal((await loadCursor(path))?.seq, seq);
    }
  });

  test('a missing file loads as undefined', async () => {
    assert.equal(await loadCursor(join(dir, 'does-not-exist.json')), undefined);
    assert.equal(await loadCursor(join(dir, 'no-such-dir', 'cursor.json')), undefined);
  });

  test('corrupt JSON is a CursorFileError naming the file, never undefined', async () => {
    for (const [name, text] of [
      ['truncated.json', '{"seq":315270'],
      ['empty.json', ''],
      ['garbage.json', '\u0000\u0001binary'],
    ] as const) {
      const path = join(dir, name);
      await writeFile(path, text);
      await rejectsWith(path, new RegExp(`${name.replace('.', '\\.')} is not JSON`));
    }
  });

  test('JSON without a valid seq and relayHost is a CursorFileError', async () => {
    const cases = [
      'null',
      '42',
      '[]',
      '{}',
      '{"relayHost":"wss://bsky.network"}',
      '{"seq":"31527015471","relayHost":"wss://bsky.network"}',
      '{"seq":-1,"relayHost":"wss://bsky.network"}',
      '{"seq":1.5,"relayHost":"wss://bsky.network"}',
      '{"seq":9007199254740992,"relayHost":"wss://bsky.network"}',
      '{"seq":10}',
      '{"seq":10,"relayHost":7}',
    ];
    for (const [i, text] of cases.entries()) {
      const path = join(dir, `invalid-${i}.json`);
      await writeFile(path, text);
      await rejectsWith(path, /has no valid "seq" \(a whole number >= 0\) and "relayHost"; fix or remove it/);
    }
  });

  test('a file without savedAt still loads (savedAt "")', async () => {
    const path = join(dir, 'no-saved-at.json');
    await writeFile(path, '{"seq":7,"relayHost":"wss://bsky.network","extra":true}');
    assert.deepEqual(await loadCursor(path), { seq: 7, relayHost: 'wss://bsky.network', savedAt: '' });
  });

  test('an unreadable path (a directory) is a CursorFileError, not undefined', async () => {
    const path = join(dir, 'a-directory');
    await mkdir(path);
    await rejectsWith(path, /a-directory is a directory; point --cursor-file at a file/);
    // A path through a regular file cannot be read either.
    await writeFile(join(dir, 'plain-file'), 'x');
    await rejectsWith(join(dir, 'plain-file', 'cursor.json'), /cannot read cursor file .*ENOTDIR/);
  });

  test('the startup check: none yet, the same relay (wss/https alike), another relay, an unwritable place', async () => {
    const path = join(dir, 'check', 'cursor.json');
    assert.equal(await checkCursorFile(path, 'wss://bsky.network'), undefined);
    assert.deepEqual(await readdir(join(dir, 'check')), [], 'the write probe leaves nothing behind');
    await saveCursor(path, { seq: 9, relayHost: 'wss://bsky.network' });
    assert.equal((await checkCursorFile(path, 'https://bsky.network/'))?.seq, 9);
    await rejectsWith(
      path,
      /^cursor file .*cursor\.json holds seq 9 of wss:\/\/bsky\.network, not of wss:\/\/\*\*\*:\*\*\*@other\.example\/; seqs differ between relays: remove the file/,
      checkCursorFile(path, 'wss://u:hunter2@other.example'),
    );
    await rejectsWith('/proc/atkafka-cursor.json', /^cannot write cursor file \/proc\/atkafka-cursor\.json: creating a file in \/proc fails/, checkCursorFile('/proc/atkafka-cursor.json', 'wss://bsky.network'));
  });

  test("the relay's credentials are not written into the file, and it still matches that relay", async () => {
    const path = join(dir, 'creds.json');
    const relayHost = 'wss://user:hunter2@relay.example:2470/?token=t0ken';
    await saveCursor(path, { seq: 5, relayHost });
    const text = await readFile(path, 'utf8');
    assert.doesNotMatch(text, /hunter2|t0ken|user/);
    assert.equal((await checkCursorFile(path, relayHost))?.seq, 5);
  });

  test('no temp file is left behind; a stale one from a crash is replaced', async () => {
    const sub = join(dir, 'tmpcheck');
    const path = join(sub, 'cursor.json');
    await saveCursor(path, { seq: 1, relayHost: 'wss://bsky.network' });
    assert.deepEqual(await readdir(sub), ['cursor.json']);
    // A crash between write and rename leaves cursor.json.tmp; the next save must cope.
    await writeFile(`${path}.tmp`, 'half-written');
    await saveCursor(path, { seq: 2, relayHost: 'wss://bsky.network' });
    assert.deepEqual(await readdir(sub), ['cursor.json']);
    assert.equal((await loadCursor(path))?.seq, 2);
  });

  test('a save overwrites the previous cursor; the directory is created when missing', async () => {
    const path = join(dir, 'nested', 'deeper', 'cursor.json');
    await saveCursor(path, { seq: 100, relayHost: 'wss://relay-a.example' });
    await saveCursor(path, { seq: 250, relayHost: 'wss://relay-b.example' });
    const loaded = await loadCursor(path);
    assert.equal(loaded?.seq, 250);
    assert.equal(loaded?.relayHost, 'wss://relay-b.example');
    assert.deepEqual(await readdir(join(dir, 'nested', 'deeper')), ['cursor.json']);
  });

  test('many saves in a row leave a valid file holding the last one', async () => {
    const path = join(dir, 'sequential.json');
    for (let seq = 1; seq <= 50; seq++) await saveCursor(path, { seq, relayHost: 'wss://bsky.network' });
    assert.equal((await loadCursor(path))?.seq, 50);
  });
});
