/**
 * Chooses and creates the backend for a loop: native where the addon loads, portable otherwise.
 * Under Bun and Deno, 'auto' is portable without a warning (the addon cannot run there), and
 * 'native' is refused by loadAddon() with a BackendUnavailableError that names the runtime.
 */
import { BackendUnavailableError } from '../errors.js';
import { foreignRuntime, nativeAvailable, loadAddon } from './addon.js';
import type { Backend, BackendOptions } from './backend.js';
import { PortableBackend } from './portable.js';

export type BackendKind = 'native' | 'portable' | 'auto';

let warned = false;

/** The backend 'auto' stands for here: native when the addon loads (warning once when it does not, but under Bun or Deno). */
export function resolveBackendKind(kind: BackendKind): 'native' | 'portable' {
  if (kind !== 'auto') return kind;
  if (foreignRuntime() !== null) return 'portable';
  if (nativeAvailable()) return 'native';
  if (!warned && process.platform === 'linux') {
    warned = true;
    let why = '';
    try {
      loadAddon();
    } catch (err) {
      why = `: ${(err as Error).message}`;
    }
    process.emitWarning(`gevent: the native backend is unavailable, using the portable backend${why}`, {
      code: 'GEVENT_PORTABLE_FALLBACK',
    });
  }
  return 'portable';
}

/** Creates a backend of the given kind; 'auto' picks native when it is available. */
export async function createBackend(kind: BackendKind, opts: BackendOptions): Promise<Backend> {
  const k = resolveBackendKind(kind);
  if (k === 'portable') return new PortableBackend(opts);
  if (!nativeAvailable()) {
    try {
      loadAddon();
    } catch (err) {
      throw err instanceof BackendUnavailableError ? err : new BackendUnavailableError(String(err), { cause: err });
    }
  }
  const { NativeBackend } = await import('./native.js');
  return new NativeBackend(opts);
}
