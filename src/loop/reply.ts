/**
 * Normalizes what user callbacks return (nothing, bytes, an Action, or `{ out, action, opts }`)
 * into output bytes and an action. Strings are encoded as UTF-8.
 */
import { InvalidArgumentError } from '../errors.js';
import { Action, type ConnOptions, type Output } from '../events.js';

/** Encodes an Output as bytes; throws InvalidArgumentError naming the value otherwise. */
export function toBytes(what: string, out: unknown): Uint8Array {
  if (out instanceof Uint8Array) return out;
  if (typeof out === 'string') return Buffer.from(out, 'utf8');
  throw new InvalidArgumentError(what, out, 'a Uint8Array or a string');
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
  throw new InvalidArgumentError(`the action returned by ${handler}`, action, 'Action.None, Action.Close or Action.Shutdown');
}

/** Parses a Reply/OpenedReply; throws InvalidArgumentError for a value of the wrong shape. */
export function parseReply(handler: string, r: unknown): ParsedReply {
  if (r === undefined || r === null) return kNone;
  if (r instanceof Uint8Array || typeof r === 'string') return { out: toBytes(handler, r), action: Action.None, opts: null };
  if (typeof r === 'number') return { out: null, action: checkAction(handler, r), opts: null };
  if (typeof r === 'object') {
    const o = r as { out?: Output | null; action?: Action; opts?: ConnOptions };
    const out = o.out === undefined || o.out === null ? null : toBytes(`the out returned by ${handler}`, o.out);
    return { out, action: checkAction(handler, o.action), opts: o.opts ?? null };
  }
  throw new InvalidArgumentError(`the value returned by ${handler}`, r, 'nothing, bytes, a string, an Action or { out, action }');
}
