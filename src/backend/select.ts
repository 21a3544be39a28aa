/**
 * Chooses and creates the backend for a loop: native where the addon loads, portable otherwise.
 * Under Bun and Deno, 'auto' is portable without a warning (the addon cannot run there), and
 * 'native' is refused by loadAddon() with a BackendUnavailableError that names the runtime.
 *
 * TLS runs natively (native/tls.c) when the process has OpenSSL 3 and ServeOptions.tls asks only
 * for what the native layer supports (key, cert and alpn, see native-tls.ts); otherwise a server
 * with a `tls://` address on 'auto' is portable (node:tls), with one process warning
 * (GEVENT_TLS_PORTABLE) where it would have been native, and on 'native' it is refused.
 */
import type { ListenSpec } from '../addr.js';
import { BackendUnavailableError } from '../errors.js';
import { foreignRuntime, nativeAvailable, loadAddon } from './addon.js';
import type { Backend, BackendOptions } from './backend.js';
import { PortableBackend } from './portable.js';
import { nativeTlsUnsupported } from './native-tls.js';
import type { ServerTlsConfig } from '../tls-options.js';

export type BackendKind = 'native' | 'portable' | 'auto';

let warned = false;
let tlsWarned = false;

/**
 * The backend kind a server with these listeners and TLS settings asks for: `kind` itself, unless a
 * listener is TLS and the native layer cannot run it (an option it does not support, or no OpenSSL
 * 3 in the process): then the portable backend (BackendUnavailableError for 'native').
 */
export function backendKindFor(
  kind: BackendKind,
  specs: readonly ListenSpec[],
  tls: ServerTlsConfig | null = null,
): BackendKind {
  const spec = specs.find((s) => s.tls);
  if (spec === undefined || kind === 'portable') return kind;
  const why = nativeTlsBlocker(tls);
  if (why === null) return kind;
  if (kind === 'native')
    throw new BackendUnavailableError(
      `${spec.text}: ${why}, which runs on the portable backend only (the native backend's TLS runs key, cert and alpn): ` +
        `use backend 'portable' or 'auto'`,
    );
  if (!tlsWarned && resolveBackendKind('auto') === 'native') {
    tlsWarned = true;
    process.emitWarning(
      `gevent: ${spec.text}: ${why}, which the native backend does not run yet; this server uses the portable backend (node:tls)`,
      { code: 'GEVENT_TLS_PORTABLE' },
    );
  }
  return 'portable';
}

/** What keeps TLS with `tls` off the native backend (the option, or why OpenSSL is unusable), or null. */
function nativeTlsBlocker(tls: ServerTlsConfig | null): string | null {
  if (tls === null) return null;
  const option = nativeTlsUnsupported(tls);
  if (option !== null) return `${option} is set`;
  if (foreignRuntime() !== null || !nativeAvailable()) return null;
  const why = loadAddon().tlsAvailable();
  return why === null ? null : `TLS cannot run natively here (${why})`;
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
