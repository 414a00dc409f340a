// The real Ozone of test/support/ozone.ts (tools/peers/ozone.ts) does what the
// `atkafka ozone-events` tests rely on: every event kind through the PDS's proxy,
// queryEvents ascending with Ozone's <ms>::<id> cursor, who is refused, and the
// failures its control server creates (expired tokens, revoked sessions, events
// sharing a millisecond or committed late, Ozone or PDS down, rate limits), each
// answered the way tools/peers/README.md records.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  eventKinds,
  repoRef,
  strongRef,
  startOzone,
  XrpcError,
  type ModEventView,
  type OzonePeer,
  type Session,
} from '../support/ozone.ts';

const HOUR = 3_600_000;
const COMMENT = 'tools.ozone.moderation.defs#modEventComment';

/** The XrpcError a call rejects with (fails the test when it resolves). */
async function xrpcError(p: Promise<unknown>): Promise<XrpcError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof XrpcError) return err;
    throw err;
  }
  assert.fail('expected an XRPC error');
}
/** The error fetch rejects with when nothing listens. */
async function connectError(url: string): Promise<string | undefined> {
  try {
    await fetch(url);
  } catch (err) {
    return ((err as Error).cause as { code?: string })?.code;
  }
  assert.fail(`${url} answered`);
}
const rateLimitHeaders = (h: Headers) => Object.fromEntries([...h].filter(([k]) => /^(ratelimit-|retry-after$)/.test(k)));

describe('startOzone: a real Ozone behind a real PDS', () => {
  let oz: OzonePeer;
  let mod: Session;
  before(async () => {
    oz = await startOzone();
    mod = await oz.login(oz.moderator.handle, oz.moderator.password);
  });
  after(async () => {
    await oz?.[Symbol.asyncDispose]();
  });

  it('ready line: loopback URLs, the Ozone service DID the PDS proxies to, accounts and posts', async () => {
    for (const url of [oz.pdsUrl, oz.plcUrl, oz.appviewUrl, oz.ozoneUrl, oz.controlUrl]) assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(oz.ozoneDid, /^did:plc:[a-z2-7]{24}$/);
    assert.equal(oz.proxyHeader, `${oz.ozoneDid}#atproto_labeler`);
    // The PDS finds Ozone through the service DID's document in the PLC.
    const doc = (await (await fetch(`${oz.plcUrl}/${oz.ozoneDid}`)).json()) as { service: { id: string; serviceEndpoint: string }[] };
    const labeler = doc.service.find((s) => s.id === '#atproto_labeler');
    assert.equal(labeler?.serviceEndpoint, `http://localhost:${new URL(oz.ozoneUrl).port}`);
    assert.equal(oz.users.length, 5);
    for (const u of oz.users) {
      assert.match(u.did, /^did:plc:/);
      assert.equal(u.posts.length, 3);
      for (const p of u.posts) {
        assert.ok(p.uri.startsWith(`at://${u.did}/app.bsky.feed.post/`));
        assert.match(p.cid, /^bafyrei/);
      }
    }
    assert.equal(mod.did, oz.moderator.did);
    assert.deepEqual(oz.rateLimits, { enabled: true, bypassHeader: 'x-ratelimit-bypass', bypassKey: 'peers-ratelimit-bypass' });
    assert.equal(oz.versions['@atproto/ozone'], '0.4.2');
    assert.equal(oz.versions['@atproto/dev-env'], '0.6.7');
  });

  it('the moderator emits every event kind through the PDS; queryEvents pages them back ascending with <ms>::<id> cursors', async () => {
    const before = await oz.queryAll();
    const account = repoRef(oz.users[4]!.did); // erin: taken down and restored; nobody logs in as her
    const record = strongRef(oz.users[3]!.posts[0]!);
    const emitted: ModEventView[] = [];
    for (const kind of eventKinds) {
      for (const s of kind.subjects) {
        const subject = s === 'account' ? account : record;
        const view = await oz.emit(mod, kind.event, subject).catch((err) => assert.fail(`${kind.name} on ${s}: ${err.message}`));
        assert.equal(view.event.$type, kind.event.$type);
        assert.equal(view.createdBy, oz.moderator.did);
        assert.deepEqual(view.subject, subject.$type === 'com.atproto.admin.defs#repoRef' ? { did: subject.did, $type: subject.$type } : subject);
        emitted.push(view);
      }
    }
    // A report by an ordinary user through the PDS (createReport goes to the PDS's mod service: this Ozone).
    const alice = await oz.login(oz.users[0]!.handle, oz.users[0]!.password);
    const report = await oz.report(alice, strongRef(oz.users[1]!.posts[1]!), 'com.atproto.moderation.defs#reasonRude', 'not nice');
    assert.equal(report.reportedBy, oz.users[0]!.did);

    const all = await oz.queryAll();
    const ids = all.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ascending by id');
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.createdAt <= all[i]!.createdAt, 'createdAt never goes back');
    const byId = new Map(all.map((e) => [e.id, e]));
    for (const e of before) assert.deepEqual(byId.get(e.id), e, 'earlier events unchanged');
    // Every emitted event comes back as emitEvent returned it, plus the handles Ozone looks up.
    const purged = emitted.find((e) => e.event.$type.endsWith('#ageAssuranceEvent'))!;
    for (const e of emitted) {
      if (e === purged) continue;
      const got = byId.get(e.id);
      assert.ok(got, `event ${e.id} (${e.event.$type}) is listed`);
      const { creatorHandle, subjectHandle, ...rest } = got;
      assert.deepEqual(rest, e);
      assert.equal(creatorHandle, oz.moderator.handle);
    }
    // ageAssurancePurgeEvent deleted the subject's ageAssuranceEvent rows: gone from the history.
    assert.equal(byId.get(purged.id), undefined);
    // The first event on a subject brings Ozone's own modEventTag (createdBy = the service DID) in the same transaction.
    const auto = all.filter((e) => e.createdBy === oz.ozoneDid);
    assert.ok(auto.length >= 2);
    for (const e of auto) assert.equal(e.event.$type, 'tools.ozone.moderation.defs#modEventTag');
    const rep = all.find((e) => e.createdBy === oz.users[0]!.did && e.event.$type.endsWith('#modEventReport'));
    assert.equal(rep?.event.reportType, 'com.atproto.moderation.defs#reasonRude');
    assert.equal(rep?.event.comment, 'not nice');

    // Paging by hand with a small limit: the cursor is `${Date.parse(createdAt)}::${id}` of the page's last event,
    // present on every non-empty page (the last one too), absent on the empty one after it.
    const paged: ModEventView[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await oz.queryEvents(mod, { sortDirection: 'asc', limit: 7, cursor });
      if (page.events.length === 0) {
        assert.equal(page.cursor, undefined);
        break;
      }
      const last = page.events.at(-1)!;
      assert.match(page.cursor!, /^\d+::\d+$/);
      assert.equal(page.cursor, `${Date.parse(last.createdAt)}::${last.id}`);
      paged.push(...page.events);
      cursor = page.cursor;
    }
    assert.deepEqual(paged, all);
    // Default order is descending.
    const desc = await oz.queryEvents(mod, { limit: 3 });
    assert.deepEqual(desc.events.map((e) => e.id), ids.slice(-3).reverse());
  });

  it('the non-moderator is refused by Ozone: 401 AuthenticationRequired "not a moderator account"', async () => {
    const s = await oz.login(oz.nonModerator.handle, oz.nonModerator.password);
    // (one call at a time: a second rejected promise nobody awaits yet would be an unhandled rejection)
    for (const call of [
      () => oz.queryEvents(s, { sortDirection: 'asc' }),
      () => oz.emit(s, { $type: COMMENT, comment: 'x' }, repoRef(oz.users[0]!.did)),
    ]) {
      const err = await xrpcError(call());
      assert.equal(err.status, 401);
      assert.deepEqual(err.body, { error: 'AuthenticationRequired', message: 'not a moderator account' });
    }
  });

  it('the proxy header: optional for this PDS (its mod service is this Ozone); a wrong one is refused by the PDS', async () => {
    const params = { sortDirection: 'asc', limit: 5 };
    const withHeader = await oz.queryEvents(mod, params);
    const without = await oz.xrpc('tools.ozone.moderation.queryEvents', { auth: mod, params, bypassRateLimit: true });
    assert.deepEqual(without, withHeader);
    const wrong = async (header: string) =>
      xrpcError(oz.xrpc('tools.ozone.moderation.queryEvents', { auth: mod, params, proxy: header, bypassRateLimit: true }));
    const unknownDid = await wrong('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto_labeler');
    assert.equal(unknownDid.status, 400);
    assert.deepEqual(unknownDid.body, { error: 'InvalidRequest', message: 'could not resolve proxy did' });
    const noServiceId = await wrong(oz.ozoneDid);
    assert.equal(noServiceId.status, 400);
    assert.deepEqual(noServiceId.body, { error: 'InvalidRequest', message: 'no service id specified in proxy header' });
    // #atproto_pds of the service DID is this PDS (dev-env moved that account here): the PDS
    // forwards to itself with a service JWT, which its own auth refuses.
    const pdsItself = await wrong(`${oz.ozoneDid}#atproto_pds`);
    assert.equal(pdsItself.status, 400);
    assert.deepEqual(pdsItself.body, { error: 'InvalidToken', message: 'Token could not be verified' });
  });

  it('auth-clock 3 h ahead: the access token answers 400 ExpiredToken; refreshSession gives one that works', async () => {
    const s = await oz.login(oz.moderator.handle, oz.moderator.password);
    await oz.queryEvents(s, { limit: 1 });
    await oz.authClock(3 * HOUR);
    try {
      const err = await xrpcError(oz.queryEvents(s, { limit: 1 }));
      assert.equal(err.status, 400);
      assert.deepEqual(err.body, { error: 'ExpiredToken', message: 'Token has expired' });
      // emitEvent too, and the same from the PDS's own methods.
      assert.equal((await xrpcError(oz.emit(s, { $type: COMMENT }, repoRef(oz.users[0]!.did)))).error, 'ExpiredToken');
      assert.equal((await xrpcError(oz.xrpc('com.atproto.server.getSession', { auth: s }))).error, 'ExpiredToken');
      const r = await oz.refresh(s.refreshJwt);
      assert.equal(r.did, oz.moderator.did);
      assert.ok((await oz.queryEvents(r, { limit: 1 })).events.length === 1);
      // A new createSession works as well.
      const again = await oz.login(oz.moderator.handle, oz.moderator.password);
      await oz.queryEvents(again, { limit: 1 });
    } finally {
      await oz.authClock(0);
    }
    await oz.queryEvents(s, { limit: 1 }); // the old token is valid again on the real clock
  });

  it('revoke-sessions: refreshSession answers 400 ExpiredToken "Token has been revoked"; createSession works', async () => {
    const s = await oz.login(oz.moderator.handle, oz.moderator.password);
    const r = await oz.refresh(s.refreshJwt); // a rotated chain counts too
    // Until revoked, a used refresh token still works for a while (the PDS's 2 h grace) and rotates to the same next token id.
    const again = await oz.refresh(s.refreshJwt);
    const jti = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti;
    assert.equal(jti(again.refreshJwt), jti(r.refreshJwt));
    assert.ok((await oz.revokeSessions(oz.moderator.did)) >= 2);
    for (const jwt of [s.refreshJwt, r.refreshJwt]) {
      const err = await xrpcError(oz.refresh(jwt));
      assert.equal(err.status, 400);
      assert.deepEqual(err.body, { error: 'ExpiredToken', message: 'Token has been revoked' });
    }
    // Access tokens are JWTs the PDS does not look up: they work until they expire.
    await oz.queryEvents(r, { limit: 1 });
    const fresh = await oz.login(oz.moderator.handle, oz.moderator.password);
    await oz.queryEvents(fresh, { limit: 1 });
    await oz.refresh(fresh.refreshJwt);
    assert.equal(await oz.revokeSessions('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'), 0);
  });

  it('set-created-at: events sharing one millisecond come back by id, across pages; a late commit lands behind a cursor', async () => {
    const subject = repoRef(oz.users[2]!.did);
    const first = await oz.emit(mod, { $type: COMMENT, comment: 'warm-up' }, subject); // the auto tag comes with the first event
    const [a, b, c] = [
      await oz.emit(mod, { $type: COMMENT, comment: 'tie a' }, subject),
      await oz.emit(mod, { $type: COMMENT, comment: 'tie b' }, subject),
      await oz.emit(mod, { $type: COMMENT, comment: 'tie c' }, subject),
    ] as ModEventView[];
    const tieMs = Date.parse(c!.createdAt) + 1;
    const tie = new Date(tieMs).toISOString();
    assert.equal(await oz.setCreatedAt([c!.id, a!.id, b!.id], tie), 3);
    const all = await oz.queryAll();
    const tied = all.filter((e) => e.createdAt === tie).map((e) => e.id);
    assert.deepEqual(tied, [a!.id, b!.id, c!.id]);
    assert.ok(all.findIndex((e) => e.id === first.id) < all.findIndex((e) => e.id === a!.id));
    // limit 1 across the tie: the cursor's id part keeps the three apart, none skipped or repeated.
    const beforeTie = all[all.findIndex((e) => e.id === a!.id) - 1]!;
    let cursor = `${Date.parse(beforeTie.createdAt)}::${beforeTie.id}`;
    const walked: number[] = [];
    for (let i = 0; i < 3; i++) {
      const page = await oz.queryEvents(mod, { sortDirection: 'asc', limit: 1, cursor });
      walked.push(page.events[0]!.id);
      assert.equal(page.cursor, `${tieMs}::${page.events[0]!.id}`);
      cursor = page.cursor!;
    }
    assert.deepEqual(walked, [a!.id, b!.id, c!.id]);

    // The late-commit race: an event becomes visible after a reader's cursor passed its createdAt.
    const seenAll = await oz.queryAll();
    const last = seenAll.at(-1)!;
    const readerCursor = `${Date.parse(last.createdAt)}::${last.id}`;
    const late = await oz.emit(mod, { $type: COMMENT, comment: 'committed late' }, subject);
    const lateAt = new Date(Date.parse(a!.createdAt) - 1).toISOString();
    assert.equal(await oz.setCreatedAt([late.id], lateAt), 1);
    const after = await oz.queryEvents(mod, { sortDirection: 'asc', limit: 100, cursor: readerCursor });
    assert.deepEqual(after.events, [], 'behind the cursor: a reader that only follows the cursor never sees it');
    const now = await oz.queryAll();
    const idx = now.findIndex((e) => e.id === late.id);
    assert.equal(now[idx]!.createdAt, lateAt);
    assert.equal(now[idx + 1]!.id, a!.id, 'listed before the tied events, id notwithstanding');
    assert.ok(late.id > c!.id);
    // Bad input is refused.
    await assert.rejects(oz.setCreatedAt([late.id], 'not a date'), /HTTP 400/);
  });

  it('Ozone down: the PDS answers 502 UpstreamFailure, Ozone refuses connections; up again on the same port, same events', async () => {
    const beforeDown = await oz.queryAll();
    await oz.ozoneUp(false);
    try {
      assert.equal(await connectError(`${oz.ozoneUrl}/xrpc/_health`), 'ECONNREFUSED');
      for (const call of [() => oz.queryEvents(mod, { limit: 1 }), () => oz.emit(mod, { $type: COMMENT }, repoRef(oz.users[0]!.did))]) {
        const err = await xrpcError(call());
        assert.equal(err.status, 502);
        assert.deepEqual(err.body, { error: 'UpstreamFailure', message: 'Upstream service unreachable' });
      }
      // The PDS itself is fine.
      assert.equal((await fetch(`${oz.pdsUrl}/xrpc/_health`)).status, 200);
    } finally {
      await oz.ozoneUp(true);
    }
    assert.equal((await fetch(`${oz.ozoneUrl}/xrpc/_health`)).status, 200);
    assert.deepEqual(await oz.queryAll(), beforeDown);
  });

  it('PDS down: connection refused; up again on the same port with the same accounts, sessions and events', async () => {
    const beforeDown = await oz.queryAll();
    const s = await oz.login(oz.moderator.handle, oz.moderator.password);
    await oz.pdsUp(false);
    try {
      assert.equal(await connectError(`${oz.pdsUrl}/xrpc/_health`), 'ECONNREFUSED');
      const err = await oz.queryEvents(s, { limit: 1 }).then(
        () => assert.fail('answered while down'),
        (e: Error) => e,
      );
      assert.ok(!(err instanceof XrpcError));
      assert.equal((err.cause as { code?: string }).code, 'ECONNREFUSED');
      assert.equal((await fetch(`${oz.ozoneUrl}/xrpc/_health`)).status, 200, 'Ozone is fine');
    } finally {
      await oz.pdsUp(true);
    }
    assert.deepEqual(await oz.queryAll(), beforeDown);
    await oz.queryEvents(s, { limit: 1 });
    await oz.refresh(s.refreshJwt);
  });

  it('rate limits: the PDS answers 429 RateLimitExceeded with RateLimit-* and Retry-After headers; reset and exhaust', async () => {
    const bob = oz.users[1]!;
    let n = 0;
    let limited: XrpcError | undefined;
    while (!limited && n < 40) {
      n++;
      await oz.login(bob.handle, bob.password, { bypassRateLimit: false }).catch((err) => {
        if (err instanceof XrpcError && err.status === 429) limited = err;
        else throw err;
      });
    }
    assert.ok(limited, 'createSession was never limited');
    assert.equal(n, 31, 'createSession: 30 per 5 minutes per identifier and IP');
    assert.deepEqual(limited.body, { error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' });
    const h = rateLimitHeaders(limited.headers);
    assert.equal(h['ratelimit-limit'], '30');
    assert.equal(h['ratelimit-remaining'], '0');
    assert.equal(h['ratelimit-policy'], '30;w=300');
    assert.match(h['ratelimit-reset']!, /^\d{10}$/);
    assert.ok(Number(h['retry-after']) > 0 && Number(h['retry-after']) <= 300);
    // The bypass header the helpers send gets through; another identifier is not limited.
    await oz.login(bob.handle, bob.password);
    await oz.login(oz.users[0]!.handle, oz.users[0]!.password, { bypassRateLimit: false });
    assert.ok((await oz.resetRateLimits()) > 0);
    await oz.login(bob.handle, bob.password, { bypassRateLimit: false });

    // Every call from 127.0.0.1 limited for 1.5 s (the global 3000 per 5 minutes used up), queryEvents included.
    await oz.exhaustRateLimit(1500);
    const err = await xrpcError(oz.queryEvents(mod, { limit: 1 }, { bypassRateLimit: false }));
    assert.equal(err.status, 429);
    assert.deepEqual(err.body, { error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' });
    const g = rateLimitHeaders(err.headers);
    assert.equal(g['ratelimit-limit'], '3000');
    assert.equal(g['ratelimit-remaining'], '0');
    assert.equal(g['ratelimit-policy'], '3000;w=300');
    assert.ok(['1', '2'].includes(g['retry-after']!));
    await new Promise((ok) => setTimeout(ok, 1600));
    const ok = await oz.xrpc('tools.ozone.moderation.queryEvents', { auth: mod, proxy: true, params: { limit: 1 } });
    assert.equal(ok.events.length, 1);
  });
});
