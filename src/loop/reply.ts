/**
 * Normalizes what user callbacks return (nothing, bytes, an Action, or `{ out, action, opts }`)
 * into output bytes and an action. Strings are encoded as UTF-8; any ArrayBuffer or view of one
 * (Buffer, a typed array, a DataView) is written as the bytes it covers, without a copy.
 *
 * Anything else is refused with InvalidArgumentError, never dropped: an array, a Map, a class
 * instance. A Promise (an `async` handler) is the one exception, and the loop settles it apart:
 * see isThenable().
 */
import { GeventError, HandlerError, InvalidArgumentError } from '../errors.js';
import { Action, type ConnOptions } from '../events.js';

/** What every write path accepts, in the words of an error message. */
const kBytesExpected = 'a Uint8Array, an ArrayBuffer or a view of one, or a string';

/** Encodes an Output as bytes; throws InvalidArgumentError naming the value otherwise. */
export function toBytes(what: string, out: unknown): Uint8Array {
  if (out instanceof Uint8Array) return out;
  if (typeof out === 'string') return Buffer.from(out, 'utf8');
  if (ArrayBuffer.isView(out)) return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  if (out instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && out instanceof SharedArrayBuffer))
    return new Uint8Array(out);
  throw new InvalidArgumentError(what, out, kBytesExpected);
}

/** The parts of a callback's return value. */
export interface ParsedReply {
  out: Uint8Array | null;
  action: Action;
  opts: ConnOptions | null;
}

const kNone: ParsedReply = Object.freeze({ out: null, action: Action.None, opts: null }) as ParsedReply;

/** Checks an action value returned by `handler`; throws InvalidArgumentError naming it otherwise. */
export function checkAction(handler: string, action: unknown): Action {
  if (action === undefined || action === null) return Action.None;
  if (action === Action.None || action === Action.Close || action === Action.Shutdown) return action;
  throw new InvalidArgumentError(
    `the action returned by ${handler}`,
    action,
    'Action.None, Action.Close or Action.Shutdown',
  );
}

/** True for a Promise or any other thenable: what an `async` handler returns. */
export function isThenable(r: unknown): r is PromiseLike<unknown> {
  return typeof r === 'object' && r !== null && typeof (r as { then?: unknown }).then === 'function';
}

/**
 * Parses a Reply/OpenedReply; throws InvalidArgumentError for a value of the wrong shape. A
 * getter of the returned object that throws is let through: the caller wraps it (asHandlerError).
 */
export function parseReply(handler: string, r: unknown): ParsedReply {
  if (r === undefined || r === null) return kNone;
  if (typeof r === 'number') return { out: null, action: checkAction(handler, r), opts: null };
  if (typeof r === 'string' || r instanceof Uint8Array || ArrayBuffer.isView(r) || r instanceof ArrayBuffer) {
    return { out: toBytes(handler, r), action: Action.None, opts: null };
  }
  if (typeof r === 'object' && isPlainObject(r)) {
    const o = r as { out?: unknown; action?: unknown; opts?: unknown };
    const out = o.out === undefined || o.out === null ? null : toBytes(`the out returned by ${handler}`, o.out);
    const action = checkAction(handler, o.action);
    const opts = o.opts;
    if (opts !== undefined && opts !== null && (typeof opts !== 'object' || Array.isArray(opts))) {
      throw new InvalidArgumentError(`the opts returned by ${handler}`, opts, 'an object such as { tcpKeepAlive }');
    }
    return { out, action, opts: (opts as ConnOptions | undefined) ?? null };
  }
  if (isThenable(r)) {
    throw new InvalidArgumentError(
      `the value returned by ${handler}`,
      r,
      'nothing, bytes, a string, an Action or { out, action }; a Promise is not awaited for its value: an async handler must write with c.send() or c.write()',
    );
  }
  throw new InvalidArgumentError(
    `the value returned by ${handler}`,
    r,
    'nothing, bytes, a string, an Action or { out, action }',
  );
}

/**
 * Checks what an async handler's promise resolved to: nothing is fine; anything else would be a
 * reply that is never written (the loop moved on when the handler returned), so it is an error
 * telling the user to write with c.send()/c.write().
 */
export function checkSettledValue(handler: string, v: unknown): void {
  if (v === undefined || v === null) return;
  throw new InvalidArgumentError(
    `the value an async ${handler} handler resolved to`,
    v,
    'nothing: the loop does not wait for an async handler, so its value is never written; write with c.send() or c.write() instead',
  );
}

/**
 * Watches the promise an async callback returned, which the loop does not wait for: `onFail` gets
 * a HandlerError when it rejects, or the InvalidArgumentError of checkSettledValue() when it
 * resolves to a value (a reply that would never be written). Nothing happens when it resolves to
 * nothing.
 */
export function watchSettled(handler: string, p: PromiseLike<unknown>, onFail: (err: Error) => void): void {
  Promise.resolve(p).then(
    (v) => {
      try {
        checkSettledValue(handler, v);
      } catch (err) {
        onFail(err as Error);
      }
    },
    (err: unknown) => onFail(new HandlerError(handler, err)),
  );
}

/** A value thrown while running or reading `handler`'s result, as the error its connection gets. */
export function asHandlerError(handler: string, err: unknown): Error {
  return isGeventError(err) ? err : new HandlerError(handler, err);
}

/** `err instanceof GeventError`, false for a value that cannot be inspected (a revoked Proxy). */
function isGeventError(err: unknown): err is GeventError {
  try {
    return err instanceof GeventError;
  } catch {
    return false;
  }
}

/** An object literal or Object.create(null): the only objects read as `{ out, action, opts }`. */
function isPlainObject(o: object): boolean {
  const proto: unknown = Object.getPrototypeOf(o);
  return proto === Object.prototype || proto === null;
}
