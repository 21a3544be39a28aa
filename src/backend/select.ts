/**
 * Chooses and creates the backend for a loop: native where the addon loads, portable otherwise.
 * Under Bun and Deno, 'auto' is portable without a warning (the addon cannot run there), and
 * 'native' is refused by loadAddon() with a BackendUnavailableError that names the runtime.
 *
 * TLS runs on the portable backend (node:tls) until the native core has a TLS layer: a server with
 * a `tls://` address on 'auto' is portable, with one process warning (GEVENT_TLS_PORTABLE) where it
 * would have been native; on 'native' it is refused.
 */
import type { ListenSpec } from '../addr.js';
import { BackendUnavailableError } from '../errors.js';
import { foreignRuntime, nativeAvailable, loadAddon } from './addon.js';
import type { Backend, BackendOptions } from './backend.js';
import { PortableBackend } from './portable.js';

export type BackendKind = 'native' | 'portable' | 'auto';

let warned = false;
let tlsWarned = false;

/**
 * The backend kind a server with these listeners asks for: `kind` itself, unless a listener is
 * TLS, which needs the portable backend (BackendUnavailableError for 'native').
 */
export function backendKindFor(kind: BackendKind, specs: readonly ListenSpec[]): BackendKind {
  const tls = specs.find((s) => s.tls);
  if (tls === undefined || kind === 'portable') return kind;
  if (kind === 'native')
    throw new BackendUnavailableError(
      `${tls.text} needs TLS, which runs on the portable backend for now (the native backend has no TLS yet): ` +
        `use backend 'portable' or 'auto'`,
    );
  if (!tlsWarned && resolveBackendKind('auto') === 'native') {
    tlsWarned = true;
    process.emitWarning(
      `gevent: ${tls.text} needs TLS, which the native backend does not run yet; this server uses the portable backend (node:tls)`,
      { code: 'GEVENT_TLS_PORTABLE' },
    );
  }
  return 'portable';
}

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
