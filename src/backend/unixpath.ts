/**
 * Unix socket files: a stale file left by a dead server is removed before binding; a file that a
 * live server answers on, or a path that is not a socket, is refused.
 */
import { promises as fs } from 'node:fs';
import { connect } from 'node:net';
import { ListenError } from '../errors.js';

/** Removes `path` when it is a socket file nobody listens on; rejects with a ListenError otherwise. */
export async function removeStaleSocket(address: string, path: string): Promise<void> {
  let st;
  try {
    st = await fs.lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ListenError(address, (err as NodeJS.ErrnoException).code ?? 'EIO', 'cannot inspect the socket path', err);
  }
  if (!st.isSocket()) throw new ListenError(address, 'EADDRINUSE', 'the path exists and is not a socket');
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw new ListenError(address, 'EADDRINUSE', 'a server is listening on that socket');
  await fs.unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT')
      throw new ListenError(address, err.code ?? 'EIO', 'cannot remove the stale socket file', err);
  });
}

/** Removes a socket file this process created, if it is still there. */
export async function unlinkSocket(path: string): Promise<void> {
  await fs.unlink(path).catch(() => undefined);
}
