/**
 * The Redis example's keyspace on a virtual clock: lazy expiry is exact to the millisecond between
 * wheel ticks, SET without KEEPTTL clears a TTL, a time already past deletes, KEYS skips expired
 * keys, and FLUSHALL drops every key and TTL. Active expiry by the wheel is checked in real time
 * by redis-server.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Keyspace } from '../examples/redis/store.js';

function virtualKeyspace(): { ks: Keyspace; clock: { now: number } } {
  const clock = { now: 1000 };
  return { ks: new Keyspace({ now: () => clock.now }), clock };
}

describe('redis keyspace', () => {
  test('a key with a TTL is live until its time and gone at it, whatever the wheel has done', () => {
    const { ks, clock } = virtualKeyspace();
    ks.set('k', 'v', clock.now + 100);
    assert.equal(ks.expireAt('k'), 1100);
    clock.now = 1099.9;
    assert.equal(ks.get('k'), 'v');
    assert.equal(ks.size, 1);
    clock.now = 1100;
    assert.equal(ks.get('k'), undefined);
    assert.equal(ks.size, 0, 'the lookup removed it');
    assert.equal(ks.expireAt('k'), -2);
    ks.close();
  });

  test('SET clears a TTL, KEEPTTL (null) keeps it, and PERSIST removes it', () => {
    const { ks, clock } = virtualKeyspace();
    ks.set('a', '1', clock.now + 50);
    ks.set('a', '2', null);
    assert.equal(ks.expireAt('a'), 1050);
    ks.set('a', '3');
    assert.equal(ks.expireAt('a'), -1);
    assert.equal(ks.expiresCount, 0);
    ks.set('b', '1', clock.now + 50);
    assert.equal(ks.persist('b'), true);
    assert.equal(ks.persist('b'), false);
    clock.now += 1000;
    assert.equal(ks.get('b'), '1');
    ks.close();
  });

  test('an expire time already past deletes the key; a missing key cannot get a TTL', () => {
    const { ks, clock } = virtualKeyspace();
    ks.set('k', 'v');
    assert.equal(ks.setExpireAt('k', clock.now), true);
    assert.equal(ks.has('k'), false);
    assert.equal(ks.setExpireAt('missing', clock.now + 10), false);
    ks.set('p', 'v', clock.now - 1);
    assert.equal(ks.size, 0);
    ks.close();
  });

  test('KEYS skips expired keys, DEL counts only live ones, FLUSHALL drops keys and TTLs', () => {
    const { ks, clock } = virtualKeyspace();
    ks.set('user:1', 'a');
    ks.set('user:2', 'b', clock.now + 10);
    ks.set('order:1', 'c');
    assert.deepEqual(ks.keys('user:*').sort(), ['user:1', 'user:2']);
    clock.now += 10;
    assert.deepEqual(ks.keys('user:*'), ['user:1']);
    assert.equal(ks.delete('user:2'), false);
    assert.equal(ks.delete('user:1'), true);
    ks.set('t', 'v', clock.now + 10);
    ks.flush();
    assert.equal(ks.size, 0);
    assert.equal(ks.expiresCount, 0);
    ks.close();
  });
});
