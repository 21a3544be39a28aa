/**
 * The HTTP/1.1 server: /plaintext, /json, /echo and /ip, with keep-alive and pipelining.
 *   --port N (default 8080)  --loops N (default 1)  --backend native|portable|auto
 *   --proxy-protocol (every connection starts with a PROXY v1/v2 header: behind HAProxy and the like)
 *   --max-head BYTES (default 8192, else 431)  --max-body BYTES (default 1048576, else 413)
 *   --body-budget BYTES (default 67108864: request bodies held at once, else 503)
 *   --headers-timeout MS (default 60000)  --request-timeout MS (default 300000), else 408
 *   --keep-alive-timeout MS (default 5000)  --max-connections N (default 10000)
 *   --tls-cert FILE --tls-key FILE (HTTPS on tls://, ALPN http/1.1; one loop, native or portable)
 */
import { fail, kTlsFlags, parseFlags, serveUntilSignal, tlsFromFlags } from '../cli.js';
import { kDefaultBodyBudgetBytes } from './events.js';
import { kDefaultLimits } from './parser.js';
import { kDefaultTimeouts } from './timeouts.js';

/** Connections open at once, past which new ones are closed as they are accepted. */
const kDefaultMaxConnections = 10_000;
/** The longest timeout a flag takes (2^31 - 1 ms, about 24.8 days: setTimeout's limit). */
const kMaxTimeoutMs = 2 ** 31 - 1;

const { port, loops, backend, values } = parseFlags('http', 8080, {
  'max-head': { type: 'string', default: String(kDefaultLimits.maxHeadBytes) },
  'max-body': { type: 'string', default: String(kDefaultLimits.maxBodyBytes) },
  'body-budget': { type: 'string', default: String(kDefaultBodyBudgetBytes) },
  'headers-timeout': { type: 'string', default: String(kDefaultTimeouts.headersMs) },
  'request-timeout': { type: 'string', default: String(kDefaultTimeouts.requestMs) },
  'keep-alive-timeout': { type: 'string', default: String(kDefaultTimeouts.keepAliveMs) },
  'max-connections': { type: 'string', default: String(kDefaultMaxConnections) },
  'proxy-protocol': { type: 'boolean', default: false },
  ...kTlsFlags,
});
const tls = tlsFromFlags('http', values['tls-cert'], values['tls-key'], ['http/1.1']);
if (tls && values['proxy-protocol']) fail('http', '--proxy-protocol is not supported with --tls-cert yet');

/** The flag's value as an integer from `min` to `max`, or the process ends naming it. */
function integerFlag(name: keyof typeof values, min: number, max = Number.MAX_SAFE_INTEGER): string {
  const raw = values[name] as string;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    fail('http', `--${name} must be an integer from ${min} to ${max}, got ${raw}`);
  }
  return String(Number(raw));
}

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', loops);
events.searchParams.set('maxHead', integerFlag('max-head', 1));
events.searchParams.set('maxBody', integerFlag('max-body', 0));
events.searchParams.set('bodyBudget', integerFlag('body-budget', 0));
events.searchParams.set('headersTimeout', integerFlag('headers-timeout', 0, kMaxTimeoutMs));
events.searchParams.set('requestTimeout', integerFlag('request-timeout', 0, kMaxTimeoutMs));
events.searchParams.set('keepAliveTimeout', integerFlag('keep-alive-timeout', 0, kMaxTimeoutMs));
const maxConnections = Number(integerFlag('max-connections', 1));

const address = `${tls ? 'tls' : 'tcp'}://:${port}${values['proxy-protocol'] ? '?proxy=true' : ''}`;
await serveUntilSignal('http', events, backend, address, { maxConnections, ...(tls ? { tls } : {}) });
