/**
 * Turns a ListenSpec's host into the numeric address to bind, for both backends.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ListenSpec } from '../addr.js';
import { ListenError } from '../errors.js';

/** The numeric host to bind: '' stays '' (every interface, chosen by family); names are resolved. */
export async function resolveHost(spec: ListenSpec): Promise<string> {
  if (spec.host === '' || isIP(spec.host) !== 0) return spec.host;
  try {
    const r = await lookup(spec.host, { family: spec.family === 0 ? 0 : spec.family });
    return r.address;
  } catch (err) {
    throw new ListenError(
      spec.text,
      (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND',
      `cannot resolve host ${spec.host}`,
      err,
    );
  }
}
