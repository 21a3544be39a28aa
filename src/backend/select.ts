/**
 * Chooses and creates the backend for a loop: native where the addon loads, portable otherwise.
 */
import { BackendUnavailableError } from '../errors.js';
import type { Backend, BackendOptions } from './backend.js';
import { PortableBackend } from './portable.js';

export type BackendKind = 'native' | 'portable' | 'auto';

/** Creates a backend of the given kind; 'auto' picks native when it is available. */
export async function createBackend(kind: BackendKind, opts: BackendOptions): Promise<Backend> {
  if (kind === 'native') throw new BackendUnavailableError('the native backend is not built in this version');
  return new PortableBackend(opts);
}
