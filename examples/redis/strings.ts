/**
 * The keyspace commands: strings (GET, SET with its options, MSET, MGET, INCR and friends), keys
 * (DEL, EXISTS, TYPE, KEYS, DBSIZE, FLUSHALL, FLUSHDB) and expiry (EXPIRE, PEXPIRE, TTL, PTTL,
 * PERSIST), with the replies and error texts of Redis 7.0. Values are strings only, so no command
 * here can meet another type (Redis's WRONGTYPE).
 *
 * Expiry times given to the keyspace are absolute on its clock; relative TTLs come from the
 * request, and EXAT/PXAT unix times are turned into clock times through Date.now().
 */
import { Buffer } from 'node:buffer';
import { parseInt64 } from './resp.js';
import { Err, type CommandContext, type CommandSpec } from './spec.js';
import { kStringValueMaxBytes } from './store.js';

const kInt64Max = 9223372036854775807n;
const kInt64Min = -9223372036854775808n;
/** LLONG_MAX as a double, for the overflow checks Redis makes on expire times. */
const kInt64MaxMs = 2 ** 63;

const kSetNx = 1;
const kSetXx = 2;
const kSetGet = 4;
const kSetKeepTtl = 8;
const kSetEx = 16;
const kSetPx = 32;
const kSetExAt = 64;
const kSetPxAt = 128;
const kSetAnyExpire = kSetEx | kSetPx | kSetExAt | kSetPxAt;

function spec(
  name: string,
  arity: number,
  flags: string[],
  keys: [number, number, number],
  run: (ctx: CommandContext) => void,
): CommandSpec {
  return { name, arity, flags, keys, run };
}

/**
 * Reads argument `i` as an expire time for `cmd`: relative ms from now, or null after writing the
 * error. `unitMs` is 1000 for seconds; `absolute` for a unix time (EXAT, PXAT).
 */
function expireArg(ctx: CommandContext, i: number, unitMs: number, absolute: boolean, cmd: string): number | null {
  const v = ctx.args.int(i);
  if (v === null) {
    ctx.out.error(Err.notInteger);
    return null;
  }
  const n = Number(v);
  const unixNow = Date.now();
  if (n <= 0 || n * unitMs > kInt64MaxMs || (!absolute && n * unitMs + unixNow > kInt64MaxMs)) {
    ctx.out.error(Err.invalidExpire(cmd));
    return null;
  }
  return absolute ? n * unitMs - unixNow : n * unitMs;
}

function get({ args, out, loop }: CommandContext): void {
  const v = loop.keyspace.get(args.str(1));
  if (v === undefined) out.nullBulk();
  else out.value(v);
}

/** SET key value [NX | XX] [GET] [EX s | PX ms | EXAT unix-s | PXAT unix-ms | KEEPTTL] */
function set(ctx: CommandContext): void {
  const { args, out, loop } = ctx;
  const ks = loop.keyspace;
  let flags = 0;
  let expireAt = -1;
  for (let j = 3; j < args.argc; j++) {
    const hasNext = j + 1 < args.argc;
    let f = 0;
    if (args.is(j, 'nx') && !(flags & kSetXx)) f = kSetNx;
    else if (args.is(j, 'xx') && !(flags & kSetNx)) f = kSetXx;
    else if (args.is(j, 'get')) f = kSetGet;
    else if (args.is(j, 'keepttl') && !(flags & kSetAnyExpire)) f = kSetKeepTtl;
    else if (hasNext && !(flags & (kSetKeepTtl | kSetAnyExpire))) {
      if (args.is(j, 'ex')) f = kSetEx;
      else if (args.is(j, 'px')) f = kSetPx;
      else if (args.is(j, 'exat')) f = kSetExAt;
      else if (args.is(j, 'pxat')) f = kSetPxAt;
      if (f !== 0) expireAt = ++j;
    }
    if (f === 0) {
      out.error(Err.syntax);
      return;
    }
    flags |= f;
  }
  let at: number | null | undefined = flags & kSetKeepTtl ? null : undefined;
  if (expireAt >= 0) {
    const unitMs = flags & (kSetEx | kSetExAt) ? 1000 : 1;
    const ms = expireArg(ctx, expireAt, unitMs, (flags & (kSetExAt | kSetPxAt)) !== 0, 'set');
    if (ms === null) return;
    at = ks.now() + ms;
  }
  const key = args.str(1);
  if (flags === 0) {
    ks.set(key, args.value(2, kStringValueMaxBytes));
    out.ok();
    return;
  }
  const old = flags & (kSetGet | kSetNx | kSetXx) ? ks.get(key) : undefined;
  if (flags & kSetGet) {
    if (old === undefined) out.nullBulk();
    else out.value(old);
  }
  if ((flags & kSetNx && old !== undefined) || (flags & kSetXx && old === undefined)) {
    if (!(flags & kSetGet)) out.nullBulk();
    return;
  }
  ks.set(key, args.value(2, kStringValueMaxBytes), at);
  if (!(flags & kSetGet)) out.ok();
}

function mset({ args, out, loop }: CommandContext): void {
  if (args.argc % 2 === 0) {
    out.error(Err.arity('mset'));
    return;
  }
  for (let i = 1; i < args.argc; i += 2) loop.keyspace.set(args.str(i), args.value(i + 1, kStringValueMaxBytes));
  out.ok();
}

function mget({ args, out, loop }: CommandContext): void {
  out.arrayHeader(args.argc - 1);
  for (let i = 1; i < args.argc; i++) {
    const v = loop.keyspace.get(args.str(i));
    if (v === undefined) out.nullBulk();
    else out.value(v);
  }
}

/** Adds `by` to the integer at args[1], keeping its TTL, and replies with the result. */
function incrBy({ args, out, loop }: CommandContext, by: number | bigint): void {
  const ks = loop.keyspace;
  const key = args.str(1);
  const cur = ks.get(key);
  const bytes = typeof cur === 'string' ? Buffer.from(cur, 'latin1') : cur;
  const old = bytes === undefined ? 0 : parseInt64(bytes, 0, bytes.length);
  if (old === null) {
    out.error(Err.notInteger);
    return;
  }
  let next: number | bigint;
  if (typeof old === 'number' && typeof by === 'number' && Number.isSafeInteger(old + by)) {
    next = old + by;
  } else {
    const big = BigInt(old) + BigInt(by);
    if (big > kInt64Max || big < kInt64Min) {
      out.error(Err.overflow);
      return;
    }
    next = Number.isSafeInteger(Number(big)) ? Number(big) : big;
  }
  ks.set(key, String(next), null);
  out.integer(next);
}

function incrByArg(ctx: CommandContext, negate: boolean): void {
  const by = ctx.args.int(2);
  if (by === null) {
    ctx.out.error(Err.notInteger);
    return;
  }
  if (!negate) incrBy(ctx, by);
  else if (by === kInt64Min) ctx.out.error('ERR decrement would overflow');
  else incrBy(ctx, -by);
}

function countKeys({ args, out, loop }: CommandContext, remove: boolean): void {
  let n = 0;
  for (let i = 1; i < args.argc; i++) {
    const key = args.str(i);
    if (remove ? loop.keyspace.delete(key) : loop.keyspace.has(key)) n++;
  }
  out.integer(n);
}

const kExpireNx = 1;
const kExpireXx = 2;
const kExpireGt = 4;
const kExpireLt = 8;

/** EXPIRE / PEXPIRE key time [NX | XX | GT | LT] */
function expire(ctx: CommandContext, unitMs: number, cmd: string): void {
  const { args, out, loop } = ctx;
  let flags = 0;
  for (let j = 3; j < args.argc; j++) {
    if (args.is(j, 'nx')) flags |= kExpireNx;
    else if (args.is(j, 'xx')) flags |= kExpireXx;
    else if (args.is(j, 'gt')) flags |= kExpireGt;
    else if (args.is(j, 'lt')) flags |= kExpireLt;
    else {
      out.error(`ERR Unsupported option ${args.str(j)}`);
      return;
    }
  }
  if (flags & kExpireNx && flags & (kExpireXx | kExpireGt | kExpireLt)) {
    out.error('ERR NX and XX, GT or LT options at the same time are not compatible');
    return;
  }
  if (flags & kExpireGt && flags & kExpireLt) {
    out.error('ERR GT and LT options at the same time are not compatible');
    return;
  }
  const v = args.int(2);
  if (v === null) {
    out.error(Err.notInteger);
    return;
  }
  const ms = Number(v) * unitMs;
  if (Math.abs(ms) > kInt64MaxMs || ms + Date.now() > kInt64MaxMs) {
    out.error(Err.invalidExpire(cmd));
    return;
  }
  const ks = loop.keyspace;
  const key = args.str(1);
  const cur = ks.expireAt(key);
  if (cur === -2) {
    out.integer(0);
    return;
  }
  const at = ks.now() + ms;
  const refused =
    (flags & kExpireNx && cur !== -1) ||
    (flags & kExpireXx && cur === -1) ||
    (flags & kExpireGt && (cur === -1 || at <= cur)) ||
    (flags & kExpireLt && cur !== -1 && at >= cur);
  if (refused) {
    out.integer(0);
    return;
  }
  ks.setExpireAt(key, at);
  out.integer(1);
}

function ttl({ args, out, loop }: CommandContext, unitMs: number): void {
  const ks = loop.keyspace;
  const at = ks.expireAt(args.str(1));
  if (at < 0) {
    out.integer(at);
    return;
  }
  const ms = Math.max(0, Math.round(at - ks.now()));
  out.integer(unitMs === 1 ? ms : Math.floor((ms + 500) / 1000));
}

function keys({ args, out, loop }: CommandContext): void {
  const found = loop.keyspace.keys(args.str(1));
  out.arrayHeader(found.length);
  for (const k of found) out.bulkString(k);
}

function flush({ args, out, loop }: CommandContext): void {
  if (args.argc > 2 || (args.argc === 2 && !args.is(1, 'sync') && !args.is(1, 'async'))) {
    out.error(Err.syntax);
    return;
  }
  loop.keyspace.flush();
  out.ok();
}

/** The keyspace commands, for the command table. */
export const stringCommands: readonly CommandSpec[] = [
  spec('get', 2, ['readonly', 'fast'], [1, 1, 1], get),
  spec('set', -3, ['write', 'denyoom'], [1, 1, 1], set),
  spec('mset', -3, ['write', 'denyoom'], [1, -1, 2], mset),
  spec('mget', -2, ['readonly', 'fast'], [1, -1, 1], mget),
  spec('incr', 2, ['write', 'denyoom', 'fast'], [1, 1, 1], (ctx) => incrBy(ctx, 1)),
  spec('decr', 2, ['write', 'denyoom', 'fast'], [1, 1, 1], (ctx) => incrBy(ctx, -1)),
  spec('incrby', 3, ['write', 'denyoom', 'fast'], [1, 1, 1], (ctx) => incrByArg(ctx, false)),
  spec('decrby', 3, ['write', 'denyoom', 'fast'], [1, 1, 1], (ctx) => incrByArg(ctx, true)),
  spec('del', -2, ['write'], [1, -1, 1], (ctx) => countKeys(ctx, true)),
  spec('exists', -2, ['readonly', 'fast'], [1, -1, 1], (ctx) => countKeys(ctx, false)),
  spec('type', 2, ['readonly', 'fast'], [1, 1, 1], ({ args, out, loop }) =>
    out.simple(loop.keyspace.has(args.str(1)) ? 'string' : 'none'),
  ),
  spec('expire', -3, ['write', 'fast'], [1, 1, 1], (ctx) => expire(ctx, 1000, 'expire')),
  spec('pexpire', -3, ['write', 'fast'], [1, 1, 1], (ctx) => expire(ctx, 1, 'pexpire')),
  spec('ttl', 2, ['readonly', 'fast'], [1, 1, 1], (ctx) => ttl(ctx, 1000)),
  spec('pttl', 2, ['readonly', 'fast'], [1, 1, 1], (ctx) => ttl(ctx, 1)),
  spec('persist', 2, ['write', 'fast'], [1, 1, 1], ({ args, out, loop }) =>
    out.integer(loop.keyspace.persist(args.str(1)) ? 1 : 0),
  ),
  spec('keys', 2, ['readonly'], [0, 0, 0], keys),
  spec('dbsize', 1, ['readonly', 'fast'], [0, 0, 0], ({ out, loop }) => out.integer(loop.keyspace.size)),
  spec('flushall', -1, ['write'], [0, 0, 0], flush),
  spec('flushdb', -1, ['write'], [0, 0, 0], flush),
];
