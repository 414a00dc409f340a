// Generates real firehose fixtures for atkafka's tests.
//
// Starts an in-memory PLC directory (@did-plc/server) and a real @atproto/pds
// on loopback ports in this one process, subscribes to the PDS's own
// com.atproto.sync.subscribeRepos from cursor 0, drives a few accounts through
// every kind of event the PDS emits, and writes:
//
//   test/fixtures/pds/frames.bin     [u32 LE length][frame bytes] per websocket frame, verbatim
//   test/fixtures/pds/did_docs.json  DID -> DID document (from the PLC, at the end of the run)
//   test/fixtures/pds/expected.json  what the script did, per event in seq order, built from
//                                    what it sent and what the PDS/PLC APIs returned
//                                    (never from the frames)
//
// After writing, it decodes the recorded frames and checks them against
// expected.json (a self-check of the generator, not of atkafka); it exits
// non-zero if they disagree.
//
// Run: cd tools/pds-fixtures && npm ci && node generate.ts [--out DIR]

import { strict as assert } from 'node:assert';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';

// Quiet the PDS's pino loggers unless asked otherwise (read when the PDS loads).
process.env.LOG_ENABLED ??= 'false';

const { decodeFirst } = await import('@atcute/cbor');
const { fromUint8Array: readCar } = await import('@atcute/car');
const { toString: cidToString } = await import('@atcute/cid');
const { Secp256k1Keypair } = await import('@atproto/crypto');
const { PDS } = await import('@atproto/pds');
const plc = await import('@did-plc/server');

const HERE = import.meta.dirname;
const outArgIdx = process.argv.indexOf('--out');
const OUT_DIR = outArgIdx > 0 ? resolve(process.argv[outArgIdx + 1]) : resolve(HERE, '../../test/fixtures/pds');
const ADMIN_PASSWORD = 'admin-pass';
const LOOPBACK = '127.0.0.1';
const PDS_VERSION: string = (await import('@atproto/pds/package.json', { with: { type: 'json' } })).default.version;
const PLC_VERSION: string = (await import('@did-plc/server/package.json', { with: { type: 'json' } })).default.version;

// ---------------------------------------------------------------------------
// small helpers

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const tryPort = (port: number): Promise<number | null> =>
	new Promise((ok) => {
		const srv = createServer();
		srv.once('error', () => ok(null));
		srv.listen(port, LOOPBACK, () => {
			const { port: got } = srv.address() as { port: number };
			srv.close(() => ok(got));
		});
	});
/**
 * The PDS's URL (with its port) ends up in every DID document, so prefer the
 * usual dev ports (PLC 2582, PDS 2583) to keep did_docs.json stable across
 * runs; fall back to any free loopback port.
 */
const pickPort = async (preferred: number): Promise<number> => (await tryPort(preferred)) ?? (await tryPort(0))!;

/** Make an express app's listen(port) bind to loopback only. */
const bindLoopback = (app: { listen: (...a: unknown[]) => unknown }) => {
	const orig = app.listen;
	app.listen = function (port: unknown, ...rest: unknown[]) {
		return orig.call(this, port, LOOPBACK, ...rest);
	};
};

const S32 = '234567abcdefghijklmnopqrstuvwxyz';
/** A record key in TID syntax from a fixed time, so paths are the same on every run. */
const tid = (isoTime: string, clockId = 0): string => {
	let v = (BigInt(Date.parse(isoTime)) * 1000n) << 10n | BigInt(clockId);
	let s = '';
	for (let i = 0; i < 13; i++) {
		s = S32[Number(v & 31n)] + s;
		v >>= 5n;
	}
	return s;
};

/** Fixed timestamps: t(0) = 2026-01-01T00:00:00.000Z, one second apart. */
const t = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();

/** A valid w x h RGB PNG (file-type sniffing and the blob mime check need a real one). */
const png = (w: number, h: number, rgb: [number, number, number]): Uint8Array => {
	const chunk = (type: string, data: Buffer) => {
		const len = Buffer.alloc(4);
		len.writeUInt32BE(data.length);
		const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
		const crc = Buffer.alloc(4);
		crc.writeUInt32BE(crc32(td));
		return Buffer.concat([len, td, crc]);
	};
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(w, 0);
	ihdr.writeUInt32BE(h, 4);
	ihdr[8] = 8; // bit depth
	ihdr[9] = 2; // truecolor
	const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: w }, () => rgb).flat())]);
	const raw = Buffer.concat(Array.from({ length: h }, () => row));
	return new Uint8Array(
		Buffer.concat([
			Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
			chunk('IHDR', ihdr),
			chunk('IDAT', deflateSync(raw, { level: 9 })),
			chunk('IEND', Buffer.alloc(0)),
		]),
	);
};

// ---------------------------------------------------------------------------
// servers

const plcPort = await pickPort(2582);
const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: plcPort });
bindLoopback(plcServer.app as never);
await plcServer.start();
const plcUrl = `http://${LOOPBACK}:${plcPort}`;

const pdsPort = await pickPort(2583);
const dataDir = await mkdtemp(join(tmpdir(), 'pds-fixtures-'));
const plcRotationKey = await Secp256k1Keypair.create({ exportable: true });
const pds = await PDS.fromEnv({
	devMode: true,
	port: pdsPort,
	hostname: 'localhost', // => publicUrl http://localhost:<port>, which goes into the DID documents
	dataDirectory: dataDir,
	blobstoreDiskLocation: join(dataDir, 'blobs'),
	didPlcUrl: plcUrl,
	recoveryDidKey: (await Secp256k1Keypair.create()).did(),
	plcRotationKeyK256PrivateKeyHex: Buffer.from(await plcRotationKey.export()).toString('hex'),
	adminPassword: ADMIN_PASSWORD,
	jwtSecret: 'jwt-secret',
	serviceHandleDomains: ['.test'],
	inviteRequired: false,
	disableSsrfProtection: true,
	bskyAppViewUrl: 'https://appview.invalid',
	bskyAppViewDid: 'did:example:invalid',
	modServiceUrl: 'https://moderator.invalid',
	modServiceDid: 'did:example:invalid',
	crawlers: [],
} as never);
bindLoopback(pds.app as never);
await pds.start();
const pdsUrl = `http://${LOOPBACK}:${pdsPort}`;
const ctx = pds.ctx;

// ---------------------------------------------------------------------------
// firehose recorder: every binary frame verbatim, from cursor 0

const frames: Uint8Array[] = [];
let lastSeqSeen = 0;
const seqWaiters: Array<{ seq: number; ok: () => void }> = [];
const ws = new WebSocket(`ws://${LOOPBACK}:${pdsPort}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`);
ws.binaryType = 'arraybuffer';
ws.addEventListener('message', (ev) => {
	assert(ev.data instanceof ArrayBuffer, 'subscribeRepos sent a non-binary frame');
	const bytes = new Uint8Array(ev.data);
	frames.push(bytes);
	// Only to know when the stream has caught up; expected.json never comes from frames.
	const [header, rest] = decodeFirst(bytes) as [{ op: number; t?: string }, Uint8Array];
	if (header.op === 1) {
		const [body] = decodeFirst(rest) as [{ seq?: number }, Uint8Array];
		if (typeof body.seq === 'number') lastSeqSeen = body.seq;
	}
	for (const w of seqWaiters.splice(0)) {
		if (lastSeqSeen >= w.seq) w.ok();
		else seqWaiters.push(w);
	}
});
await new Promise<void>((ok, fail) => {
	ws.addEventListener('open', () => ok(), { once: true });
	ws.addEventListener('error', (e) => fail(new Error(`websocket error: ${String((e as ErrorEvent).message ?? e)}`)), {
		once: true,
	});
});

const waitForSeq = (seq: number, timeoutMs = 15_000) =>
	new Promise<void>((ok, fail) => {
		if (lastSeqSeen >= seq) return ok();
		const timer = setTimeout(() => fail(new Error(`timed out waiting for seq ${seq} (have ${lastSeqSeen})`)), timeoutMs);
		seqWaiters.push({
			seq,
			ok: () => {
				clearTimeout(timer);
				ok();
			},
		});
	});

// ---------------------------------------------------------------------------
// XRPC client (plain fetch) and expected-event bookkeeping

const xrpc = async (
	nsid: string,
	opts: { auth?: string; body?: unknown; params?: Record<string, string>; raw?: Uint8Array; mime?: string; post?: boolean } = {},
): Promise<any> => {
	const url = new URL(`/xrpc/${nsid}`, pdsUrl);
	for (const [k, v] of Object.entries(opts.params ?? {})) url.searchParams.set(k, v);
	const headers: Record<string, string> = {};
	if (opts.auth) headers.authorization = opts.auth;
	let body: BodyInit | undefined;
	if (opts.raw) {
		headers['content-type'] = opts.mime ?? 'application/octet-stream';
		body = opts.raw;
	} else if (opts.body !== undefined) {
		headers['content-type'] = 'application/json';
		body = JSON.stringify(opts.body);
	}
	const res = await fetch(url, { method: body === undefined && !opts.post ? 'GET' : 'POST', headers, body });
	const text = await res.text();
	if (!res.ok) throw new Error(`${nsid} -> HTTP ${res.status}: ${text}`);
	return text ? JSON.parse(text) : null;
};
const adminAuth = 'Basic ' + Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64');

interface ExpectedOp {
	action: 'create' | 'update' | 'delete';
	path: string;
	cid: string | null;
	prev?: string;
	record?: Json;
}
type Expected =
	| { seq: number; type: '#commit'; did: string; step: string; commit: string; rev: string; since: string | null; ops: ExpectedOp[] }
	| { seq: number; type: '#sync'; did: string; step: string; commit: string; rev: string }
	| { seq: number; type: '#identity'; did: string; step: string; handle?: string }
	| { seq: number; type: '#account'; did: string; step: string; active: boolean; status?: string };
type Pending = Expected extends infer E ? (E extends Expected ? Omit<E, 'seq' | 'step'> : never) : never;

const expected: Expected[] = [];
const stepNames: string[] = [];
/** Current rev per DID, as the PDS APIs reported it (for `since`). */
const revOf = new Map<string, string | null>();
/** Current cid per record path per DID, from API responses (for `prev`). */
const cidOf = new Map<string, string>();

/**
 * Runs one action, then assigns seqs to the events it is expected to emit:
 * the PDS sequencer's seq advanced by exactly that many (asserted), and the
 * events take the new seqs in the order the PDS sequences them.
 */
const step = async (name: string, action: () => Promise<Pending[]>) => {
	const before = (await ctx.sequencer.curr()) ?? 0;
	const evts = await action();
	const after = (await ctx.sequencer.curr()) ?? 0;
	assert.equal(after - before, evts.length, `step "${name}": expected ${evts.length} events, sequencer advanced ${after - before}`);
	evts.forEach((e, i) => expected.push({ seq: before + 1 + i, step: name, ...e } as Expected));
	stepNames.push(name);
	if (after > 0) await waitForSeq(after);
	console.log(`${String(before + 1).padStart(3)}..${String(after).padEnd(3)} ${name}`);
};

interface Account {
	name: string;
	did: string;
	handle: string;
	auth: string;
}

const latestCommit = async (did: string) => {
	const r = await xrpc('com.atproto.sync.getLatestCommit', { params: { did } });
	return { cid: r.cid as string, rev: r.rev as string };
};

const commitEvt = (did: string, commit: { cid: string; rev: string }, ops: ExpectedOp[]): Pending => {
	const since = revOf.get(did) ?? null;
	revOf.set(did, commit.rev);
	for (const op of ops) {
		if (op.cid) cidOf.set(`${did}/${op.path}`, op.cid);
		else cidOf.delete(`${did}/${op.path}`);
	}
	return { type: '#commit', did, commit: commit.cid, rev: commit.rev, since, ops };
};

const pathOf = (uri: string) => uri.split('/').slice(3).join('/');

const createAccount = async (name: string): Promise<[Account, Pending[]]> => {
	const handle = `${name}.test`;
	const r = await xrpc('com.atproto.server.createAccount', {
		body: { handle, email: `${name}@example.com`, password: `${name}-password` },
	});
	const acct: Account = { name, did: r.did, handle: r.handle, auth: `Bearer ${r.accessJwt}` };
	const head = await latestCommit(acct.did);
	// PDS sequences account creation atomically: identity, account, initial (empty) commit, sync.
	return [
		acct,
		[
			{ type: '#identity', did: acct.did, handle },
			{ type: '#account', did: acct.did, active: true },
			commitEvt(acct.did, head, []),
			{ type: '#sync', did: acct.did, commit: head.cid, rev: head.rev },
		],
	];
};

const createRecord = async (a: Account, collection: string, rkey: string, record: Record<string, Json>) => {
	const r = await xrpc('com.atproto.repo.createRecord', {
		auth: a.auth,
		body: { repo: a.did, collection, rkey, record },
	});
	assert.equal(r.uri, `at://${a.did}/${collection}/${rkey}`);
	return { uri: r.uri as string, cid: r.cid as string, evt: commitEvt(a.did, r.commit, [{ action: 'create', path: `${collection}/${rkey}`, cid: r.cid, record }]) };
};

// ---------------------------------------------------------------------------
// the scenario

let alice!: Account, bob!: Account, carol!: Account;
await step('createAccount alice.test', async () => {
	const [a, evts] = await createAccount('alice');
	alice = a;
	return evts;
});
await step('createAccount bob.test', async () => {
	const [a, evts] = await createAccount('bob');
	bob = a;
	return evts;
});
await step('createAccount carol.test', async () => {
	const [a, evts] = await createAccount('carol');
	carol = a;
	return evts;
});

const uploadBlob = async (a: Account, bytes: Uint8Array, mime: string) =>
	(await xrpc('com.atproto.repo.uploadBlob', { auth: a.auth, raw: bytes, mime })).blob as Json;

let avatar!: Json, photo!: Json;
await step('uploadBlob x2 (alice; no events)', async () => {
	avatar = await uploadBlob(alice, png(4, 4, [0xf0, 0x82, 0x8d]), 'image/png');
	photo = await uploadBlob(alice, png(8, 6, [0x20, 0x60, 0xc0]), 'image/png');
	return [];
});

let profile = {} as { cid: string; record: Record<string, Json> };
await step('alice createRecord app.bsky.actor.profile/self (avatar blob)', async () => {
	const record = {
		$type: 'app.bsky.actor.profile',
		displayName: 'Alice',
		description: 'fixture account one',
		avatar,
		createdAt: t(0),
	};
	const r = await createRecord(alice, 'app.bsky.actor.profile', 'self', record);
	profile = { cid: r.cid, record };
	return [r.evt];
});

let post1 = { uri: '', cid: '' };
await step('alice createRecord post (link facet, langs)', async () => {
	const text = 'hello firehose https://example.com';
	const start = Buffer.byteLength('hello firehose ');
	const record = {
		$type: 'app.bsky.feed.post',
		text,
		langs: ['en'],
		facets: [
			{
				index: { byteStart: start, byteEnd: Buffer.byteLength(text) },
				features: [{ $type: 'app.bsky.richtext.facet#link', uri: 'https://example.com' }],
			},
		],
		createdAt: t(1),
	};
	const r = await createRecord(alice, 'app.bsky.feed.post', tid(t(1)), record);
	post1 = { uri: r.uri, cid: r.cid };
	return [r.evt];
});

let post2 = { uri: '', cid: '' };
await step('alice createRecord post (image embed blob)', async () => {
	const record = {
		$type: 'app.bsky.feed.post',
		text: 'a picture',
		embed: {
			$type: 'app.bsky.embed.images',
			images: [{ image: photo, alt: 'blue rectangle', aspectRatio: { width: 8, height: 6 } }],
		},
		createdAt: t(2),
	};
	const r = await createRecord(alice, 'app.bsky.feed.post', tid(t(2)), record);
	post2 = { uri: r.uri, cid: r.cid };
	return [r.evt];
});

await step('bob createRecord post (reply to alice, unicode text)', async () => {
	const ref = { uri: post1.uri, cid: post1.cid };
	const record = {
		$type: 'app.bsky.feed.post',
		text: 'réponse ✨ 日本語 🦋',
		reply: { root: ref, parent: ref },
		createdAt: t(3),
	};
	return [(await createRecord(bob, 'app.bsky.feed.post', tid(t(3)), record)).evt];
});

let bobLikePath = '';
await step('bob createRecord like (alice post)', async () => {
	const record = { $type: 'app.bsky.feed.like', subject: { uri: post1.uri, cid: post1.cid }, createdAt: t(4) };
	const r = await createRecord(bob, 'app.bsky.feed.like', tid(t(4)), record);
	bobLikePath = pathOf(r.uri);
	return [r.evt];
});

await step('bob createRecord follow (alice)', async () => {
	const record = { $type: 'app.bsky.graph.follow', subject: alice.did, createdAt: t(5) };
	return [(await createRecord(bob, 'app.bsky.graph.follow', tid(t(5)), record)).evt];
});

await step('alice createRecord follow (bob)', async () => {
	const record = { $type: 'app.bsky.graph.follow', subject: bob.did, createdAt: t(6) };
	return [(await createRecord(alice, 'app.bsky.graph.follow', tid(t(6)), record)).evt];
});

await step('carol createRecord custom collection ($bytes, $link, nested, empty values)', async () => {
	const record = {
		$type: 'com.example.fixture.record',
		// 5 bytes: unpadded base64 (the data-model JSON form) "AAEC/f8" would need "=" when padded
		payload: { $bytes: Buffer.from([0x00, 0x01, 0x02, 0xfd, 0xff]).toString('base64').replace(/=+$/, '') },
		empty: { $bytes: '' },
		link: { $link: post1.cid },
		nested: { list: [1, -2, 9007199254740991, true, false, null, 'x', {}, []], deeper: { k: 'v' } },
		createdAt: t(7),
	};
	return [(await createRecord(carol, 'com.example.fixture.record', tid(t(7)), record)).evt];
});

await step('alice putRecord app.bsky.actor.profile/self (update)', async () => {
	const record = { ...profile.record, displayName: 'Alice (updated)', description: 'fixture account one, edited' };
	const r = await xrpc('com.atproto.repo.putRecord', {
		auth: alice.auth,
		body: { repo: alice.did, collection: 'app.bsky.actor.profile', rkey: 'self', record, swapRecord: profile.cid },
	});
	const op: ExpectedOp = { action: 'update', path: 'app.bsky.actor.profile/self', cid: r.cid, prev: profile.cid, record };
	profile = { cid: r.cid, record };
	return [commitEvt(alice.did, r.commit, [op])];
});

await step('bob deleteRecord like', async () => {
	const [collection, rkey] = bobLikePath.split('/');
	const prev = cidOf.get(`${bob.did}/${bobLikePath}`)!;
	const r = await xrpc('com.atproto.repo.deleteRecord', { auth: bob.auth, body: { repo: bob.did, collection, rkey } });
	return [commitEvt(bob.did, r.commit, [{ action: 'delete', path: bobLikePath, cid: null, prev }])];
});

await step('alice applyWrites: 3 creates + 1 delete in one commit', async () => {
	const posts = [10, 11, 12].map((i) => ({
		collection: 'app.bsky.feed.post',
		rkey: tid(t(i)),
		value: { $type: 'app.bsky.feed.post', text: `batch post ${i - 9} of 3`, createdAt: t(i) } as Json,
	}));
	const writes = [
		...posts.map((p) => ({ $type: 'com.atproto.repo.applyWrites#create', ...p })),
		{ $type: 'com.atproto.repo.applyWrites#delete', collection: 'app.bsky.feed.post', rkey: pathOf(post2.uri).split('/')[1] },
	];
	const r = await xrpc('com.atproto.repo.applyWrites', { auth: alice.auth, body: { repo: alice.did, writes } });
	assert.equal(r.results.length, 4);
	const ops: ExpectedOp[] = posts.map((p, i) => {
		assert.equal(r.results[i].uri, `at://${alice.did}/${p.collection}/${p.rkey}`);
		return { action: 'create', path: `${p.collection}/${p.rkey}`, cid: r.results[i].cid, record: p.value };
	});
	ops.push({ action: 'delete', path: pathOf(post2.uri), cid: null, prev: post2.cid });
	// The PDS lists a commit's ops in the order of the request's writes.
	return [commitEvt(alice.did, r.commit, ops)];
});

await step('bob applyWrites with no writes (empty commit)', async () => {
	const r = await xrpc('com.atproto.repo.applyWrites', { auth: bob.auth, body: { repo: bob.did, writes: [] } });
	return [commitEvt(bob.did, r.commit, [])];
});

await step('alice updateHandle alice.test -> alice-renamed.test', async () => {
	await xrpc('com.atproto.identity.updateHandle', { auth: alice.auth, body: { handle: 'alice-renamed.test' } });
	alice.handle = 'alice-renamed.test';
	return [{ type: '#identity', did: alice.did, handle: alice.handle }];
});

await step('bob deactivateAccount', async () => {
	await xrpc('com.atproto.server.deactivateAccount', { auth: bob.auth, body: {} });
	return [{ type: '#account', did: bob.did, active: false, status: 'deactivated' }];
});

await step('bob activateAccount', async () => {
	await xrpc('com.atproto.server.activateAccount', { auth: bob.auth, post: true });
	const head = await latestCommit(bob.did);
	// PDS sequences activation atomically: account, identity, sync (current repo head).
	return [
		{ type: '#account', did: bob.did, active: true },
		{ type: '#identity', did: bob.did, handle: bob.handle },
		{ type: '#sync', did: bob.did, commit: head.cid, rev: head.rev },
	];
});

const repoRef = (did: string) => ({ $type: 'com.atproto.admin.defs#repoRef', did });
await step('admin takedown carol (updateSubjectStatus)', async () => {
	await xrpc('com.atproto.admin.updateSubjectStatus', {
		auth: adminAuth,
		body: { subject: repoRef(carol.did), takedown: { applied: true, ref: 'fixture-takedown' } },
	});
	return [{ type: '#account', did: carol.did, active: false, status: 'takendown' }];
});

await step('admin reverse takedown carol', async () => {
	await xrpc('com.atproto.admin.updateSubjectStatus', {
		auth: adminAuth,
		body: { subject: repoRef(carol.did), takedown: { applied: false } },
	});
	return [{ type: '#account', did: carol.did, active: true }];
});

await step('carol createRecord post (after reinstatement)', async () => {
	const record = { $type: 'app.bsky.feed.post', text: 'still here', createdAt: t(20) };
	return [(await createRecord(carol, 'app.bsky.feed.post', tid(t(20)), record)).evt];
});

await step('admin deleteAccount carol', async () => {
	await xrpc('com.atproto.admin.deleteAccount', { auth: adminAuth, body: { did: carol.did } });
	return [{ type: '#account', did: carol.did, active: false, status: 'deleted' }];
});

// ---------------------------------------------------------------------------
// DID documents (final state, straight from the PLC)

const didDocs: Record<string, Json> = {};
for (const a of [alice, bob, carol]) {
	const res = await fetch(`${plcUrl}/${a.did}`);
	assert(res.ok, `PLC lookup of ${a.did}: HTTP ${res.status}`);
	didDocs[a.did] = (await res.json()) as Json;
}

// Let any straggling frames arrive, then stop.
await new Promise((r) => setTimeout(r, 300));
ws.close();
await pds.destroy();
await plcServer.destroy();
await rm(dataDir, { recursive: true, force: true });

// ---------------------------------------------------------------------------
// write fixtures

await mkdir(OUT_DIR, { recursive: true });
const lenPrefixed = Buffer.concat(
	frames.flatMap((f) => {
		const len = Buffer.alloc(4);
		len.writeUInt32LE(f.length);
		return [len, f];
	}),
);
await writeFile(join(OUT_DIR, 'frames.bin'), lenPrefixed);
await writeFile(join(OUT_DIR, 'did_docs.json'), JSON.stringify(didDocs, null, '\t') + '\n');
const expectedDoc = {
	generator: 'tools/pds-fixtures/generate.ts',
	pdsVersion: PDS_VERSION,
	generatedAt: new Date().toISOString(),
	accounts: Object.fromEntries([alice, bob, carol].map((a) => [a.name, { did: a.did, handle: a.handle }])),
	frameCount: frames.length,
	events: expected,
};
await writeFile(join(OUT_DIR, 'expected.json'), JSON.stringify(expectedDoc, null, '\t') + '\n');
await writeFile(join(OUT_DIR, 'README.md'), readme());

function readme(): string {
	const nameOf = new Map([alice, bob, carol].map((a) => [a.did, a.name]));
	const rows = expected.map((e) => {
		let detail = '';
		if (e.type === '#commit') detail = e.ops.length ? e.ops.map((o) => `${o.action} ${o.path.split('/')[0]}`).join(', ') : '(no ops)';
		else if (e.type === '#identity') detail = `handle ${e.handle}`;
		else if (e.type === '#account') detail = e.active ? 'active' : `inactive, ${e.status}`;
		else detail = `rev ${e.rev}`;
		return `| ${e.seq} | \`${e.type}\` | ${nameOf.get(e.did)} | ${e.type === '#commit' ? e.ops.length : ''} | ${detail} | ${e.step} |`;
	});
	const date = new Date().toISOString().slice(0, 10);
	return `# PDS firehose fixtures

Real \`com.atproto.sync.subscribeRepos\` frames from a real local PDS. **Generated, do not edit by hand.**

- Generated by \`tools/pds-fixtures/generate.ts\` on ${date}, with \`@atproto/pds\` ${PDS_VERSION}
  and \`@did-plc/server\` ${PLC_VERSION} (in-memory PLC), Node ${process.version}, in one process on loopback.
- The script subscribed to the PDS's own firehose from cursor 0 *before* doing anything, so every
  event arrived live; then it drove three accounts (alice, bob, carol) through the steps below.

## Regenerate

\`\`\`sh
cd tools/pds-fixtures && npm ci && node generate.ts
\`\`\`

(Node 24 first on PATH; here \`npm_config_nodedir=<node 24 dir> npm ci\` so better-sqlite3 builds for Node 24.)
It overwrites the four files here and then decodes \`frames.bin\` and checks it against
\`expected.json\`, exiting non-zero on any difference. Regenerating gives the same frames in the same
order with the same types, DIDs' roles, handles, paths (record keys come from fixed timestamps) and
record values; DIDs, keys, signatures, revs and commit CIDs differ on every run (and so do the CIDs of
records that mention a DID or another CID). The PDS listens on 2583 and the PLC on 2582 when free, so
the \`serviceEndpoint\` in the DID documents is normally \`http://localhost:2583\`.

## Files

- \`frames.bin\`: every websocket message, verbatim, as \`[u32 little-endian length][frame bytes]\`
  repeated (the format of the relay corpus in shared/). Each frame is a DAG-CBOR header
  (\`{t, op: 1}\`) followed by a DAG-CBOR body; \`#commit\` and \`#sync\` bodies carry a CAR in \`blocks\`.
- \`expected.json\`: \`{generator, pdsVersion, generatedAt, accounts, frameCount, events}\`. \`events\`
  is in seq order, one per frame, built from what the script sent and what the PDS/PLC APIs answered,
  never from the frames:
  - all: \`seq\`, \`type\` (\`#commit\`/\`#sync\`/\`#identity\`/\`#account\`), \`did\`, \`step\` (the action).
  - \`#commit\`: \`commit\` (commit CID), \`rev\`, \`since\` (the repo's previous rev, null for the first
    commit), \`ops\`: \`[{action, path, cid, prev?, record?}]\` in the order the PDS lists them (the order
    of the request's writes). \`cid\` is null for deletes; \`prev\` is the record's previous CID for
    updates and deletes; \`record\` is the record value for creates and updates as data-model JSON
    (CID links as \`{"$link": ...}\`, bytes as \`{"$bytes": <base64, no padding>}\`, blobs as
    \`{"$type": "blob", "ref": {"$link": ...}, "mimeType", "size"}\`).
  - \`#sync\`: \`commit\` (the CAR root, the repo's head commit) and \`rev\`.
  - \`#identity\`: \`handle\`. \`#account\`: \`active\`, and \`status\` when inactive.
- \`did_docs.json\`: DID -> DID document, from the PLC at the end of the run (alice's shows her new
  handle; carol's is still there: the PDS does not tombstone a deleted account's DID).

## Frames

| seq | type | account | ops | detail | step |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

## Notes

- Account creation is sequenced by the PDS as four events at once: \`#identity\`, \`#account\`
  (active), the repo's first \`#commit\` (no ops, \`since\` null) and a \`#sync\` of that commit.
  Activation is \`#account\` (active), \`#identity\`, \`#sync\` (current head, no new commit).
  This PDS has no XRPC method that emits a \`#sync\` alone (only its rebuild-repo / rotate-keys
  admin scripts do), so these are the fixture's \`#sync\` frames.
- The empty commit (\`applyWrites\` with \`writes: []\`) is a real signed commit with a new rev and
  no ops.
- \`#commit\` bodies also carry the deprecated \`rebase: false\`, \`tooBig: false\`, \`blobs: []\`,
  plus \`prevData\` (except the first commit) and \`time\`.
- When an account is deleted the PDS deletes that DID's older events from its sequencer, so a
  replay from cursor 0 after the run would show carol only as her final \`#account\` (deleted).
  These frames were recorded live and include all of them.
- The records in \`com.example.fixture.record\` (an unknown collection, stored unvalidated) exist to
  put \`$bytes\` (5 bytes and empty), a \`$link\`, a 2^53-1 integer, nulls, booleans and empty
  maps/lists into a real commit.
`;
}

// ---------------------------------------------------------------------------
// self-check: decode the recorded frames and compare with expected.json

const problems: string[] = [];
const check = (cond: boolean, msg: string) => {
	if (!cond) problems.push(msg);
};
const toJson = (v: unknown): Json => JSON.parse(JSON.stringify(v));
check(frames.length === expected.length, `frame count ${frames.length} != expected events ${expected.length}`);
for (let i = 0; i < Math.min(frames.length, expected.length); i++) {
	const exp = expected[i];
	const [header, rest] = decodeFirst(frames[i]) as [{ op: number; t: string }, Uint8Array];
	const [body, tail] = decodeFirst(rest) as [Record<string, any>, Uint8Array];
	const where = `frame ${i} (seq ${exp.seq}, ${exp.type})`;
	check(tail.length === 0, `${where}: trailing bytes`);
	check(header.op === 1 && header.t === exp.type, `${where}: header ${JSON.stringify(header)}`);
	check(body.seq === exp.seq, `${where}: seq ${body.seq}`);
	check((body.repo ?? body.did) === exp.did, `${where}: did ${body.repo ?? body.did}`);
	if (exp.type === '#commit' || exp.type === '#sync') {
		const car = readCar(body.blocks.buf ?? body.blocks);
		const blocks = new Map<string, Uint8Array>();
		for (const e of car) blocks.set(cidToString(e.cid), e.bytes);
		check(body.rev === exp.rev, `${where}: rev ${body.rev} != ${exp.rev}`);
		const root = car.roots[0]?.$link;
		check(root === exp.commit, `${where}: CAR root ${root} != ${exp.commit}`);
		if (exp.type === '#commit') {
			check(body.commit.$link === exp.commit, `${where}: commit ${body.commit.$link}`);
			check(body.since === exp.since, `${where}: since ${body.since} != ${exp.since}`);
			const ops = (body.ops as any[]).map((o) => ({ action: o.action, path: o.path, cid: o.cid?.$link ?? null, ...(o.prev ? { prev: o.prev.$link } : {}) }));
			const expOps = exp.ops.map(({ record: _r, ...o }) => o);
			check(JSON.stringify(ops) === JSON.stringify(expOps), `${where}: ops ${JSON.stringify(ops)} != ${JSON.stringify(expOps)}`);
			for (const op of exp.ops) {
				if (!op.record || !op.cid) continue;
				const block = blocks.get(op.cid);
				check(!!block, `${where}: record block ${op.cid} missing from CAR`);
				if (block) {
					const got = toJson(decodeFirst(block)[0]);
					check(JSON.stringify(got) === JSON.stringify(sortKeys(op.record)), `${where}: record ${op.path} differs:\n  got ${JSON.stringify(got)}\n  exp ${JSON.stringify(sortKeys(op.record))}`);
				}
			}
		}
	} else if (exp.type === '#identity') {
		check(body.handle === exp.handle, `${where}: handle ${body.handle}`);
	} else if (exp.type === '#account') {
		check(body.active === exp.active && body.status === exp.status, `${where}: active ${body.active} status ${body.status}`);
	}
}

/** DAG-CBOR map key order (length, then bytewise), so decoded and sent records compare as strings. */
function sortKeys(v: Json): Json {
	if (Array.isArray(v)) return v.map(sortKeys);
	if (v && typeof v === 'object') {
		const keys = Object.keys(v).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
		return Object.fromEntries(keys.map((k) => [k, sortKeys((v as Record<string, Json>)[k])]));
	}
	return v;
}

console.log(`\n${frames.length} frames, ${lenPrefixed.length} bytes -> ${OUT_DIR}`);
if (problems.length) {
	console.error(`SELF-CHECK FAILED (${problems.length}):\n` + problems.join('\n'));
	process.exit(1);
}
console.log('self-check: frames match expected.json');
process.exit(0);
