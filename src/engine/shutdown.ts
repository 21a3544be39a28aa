/**
 * The shutdown latch: the first request to stop a server (from a callback's Action.Shutdown,
 * Server.shutdown(), an AbortSignal or a failure) wins, and the engine waits on it. Used by the
 * one-loop engine and by the multi-loop one alike, on the thread that called listen().
 */

/** A shutdown request: the error that caused it (none for an orderly stop) and the grace it asks for. */
export interface ShutdownRequest {
  readonly err: Error | undefined;
  /** undefined: the server's own grace option. */
  readonly graceMs: number | undefined;
}

/** A promise of the first shutdown request, and the function that makes one. */
export function shutdownLatch(signal: AbortSignal | undefined): {
  requested: Promise<ShutdownRequest>;
  request: (err?: Error, graceMs?: number) => void;
  dispose: () => void;
} {
  let request!: (err?: Error, graceMs?: number) => void;
  const requested = new Promise<ShutdownRequest>((resolve) => {
    request = (err?: Error, graceMs?: number) => resolve({ err, graceMs });
  });
  const onAbort = (): void => request();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) request();
  return { requested, request, dispose: () => signal?.removeEventListener('abort', onAbort) };
}
