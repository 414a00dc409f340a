import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { collectionFilter, collectionMatcher, FilterPatternError, serviceFilter, serviceMatcher } from '../../src/filter/index.ts';

describe('collection filter', () => {
  it('a namespace pattern matches the namespace itself and everything under it, nothing beside it', () => {
    const keep = collectionMatcher(collectionFilter('watched', ['app.bsky.*']));
    for (const c of ['app.bsky', 'app.bsky.feed.post', 'app.bsky.graph.follow', 'app.bsky.actor.profile']) assert.equal(keep(c), true, c);
    for (const c of ['app.bskyx.feed.post', 'app.bsk', 'com.whtwnd.blog.entry', 'app']) assert.equal(keep(c), false, c);
  });

  it('a plain NSID matches exactly (not its children, unlike a namespace)', () => {
    const keep = collectionMatcher(collectionFilter('watched', ['app.bsky.feed.post']));
    assert.equal(keep('app.bsky.feed.post'), true);
    assert.equal(keep('app.bsky.feed.postgate'), false);
    assert.equal(keep('app.bsky.feed.post.extra'), false);
    assert.equal(keep('app.bsky.feed.like'), false);
  });

  it('ignored inverts, with the same patterns', () => {
    const keep = collectionMatcher(collectionFilter('ignored', ['app.bsky.feed.like', 'chat.bsky.*']));
    assert.equal(keep('app.bsky.feed.like'), false);
    assert.equal(keep('chat.bsky.convo.message'), false);
    assert.equal(keep('app.bsky.feed.post'), true);
  });

  it('refuses malformed patterns with the pattern in the message', () => {
    for (const bad of ['*.bsky.app', 'app.bsky', '', '*', 'app..bsky.post', 'app.bsky.feed.*.x', '1app.bsky.feed', 'app.bsky.feed/post', 'app.*.feed']) {
      assert.throws(() => collectionFilter('watched', [bad]), (err: Error) => err instanceof FilterPatternError && err.message.includes(`"${bad}"`), bad);
    }
  });

  it('is plain data (it crosses into decode threads)', () => {
    const f = collectionFilter('watched', ['app.bsky.*', 'com.example.thing']);
    assert.deepEqual(structuredClone(f), f);
  });
});

describe('service filter', () => {
  it('*.host matches the host and its subdomains; a plain host the same, as the Go version', () => {
    const keep = serviceMatcher(serviceFilter('watched', ['*.bsky.network', 'pds.example.com']));
    for (const h of ['bsky.network', 'morel.us-east.host.bsky.network', 'pds.example.com', 'eu.pds.example.com']) assert.equal(keep(h), true, h);
    for (const h of ['evilbsky.network', 'bsky.network.evil.com', 'example.com', 'xpds.example.com']) assert.equal(keep(h), false, h);
  });

  it('ignored drops matches; an unknown host ("") always passes (dropping it could lose events)', () => {
    const keep = serviceMatcher(serviceFilter('ignored', ['*.bsky.network']));
    assert.equal(keep('elfcup.us-east.host.bsky.network'), false);
    assert.equal(keep('pds.example.com'), true);
    assert.equal(keep(''), true);
    assert.equal(serviceMatcher(serviceFilter('watched', ['pds.example.com']))(''), true);
  });

  it('is case-insensitive in the pattern and refuses bad ones', () => {
    assert.equal(serviceMatcher(serviceFilter('watched', ['*.BSKY.Network']))('a.bsky.network'), true);
    for (const bad of ['bad host', 'https://pds.example.com', '*', '', 'a..b', '-x.example']) {
      assert.throws(() => serviceFilter('watched', [bad]), FilterPatternError, bad);
    }
  });
});
