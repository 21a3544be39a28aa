/**
 * The Redis server's events, in a module of their own so that several loops (worker threads) can
 * each import them and build their own keyspace. Settings arrive in the module URL's query:
 * `?loops=4`.
 */
import { createRedisServer } from './server.js';

const params = new URL(import.meta.url).searchParams;

export default createRedisServer({ numLoops: Number(params.get('loops') ?? '1') }).events;
