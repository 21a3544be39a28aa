/*
 * Node-API glue: every js_* function is called by src/backend/native.ts on the loop's own thread.
 * Arguments were validated in TypeScript; these functions only check types and return -errno
 * numbers for system failures. The typed surface is src/backend/addon-types.ts; the protocol
 * constants (gev_proto.h) are exported at load as the frozen object `constants`.
 *
 * This is the only file that knows Node-API and libuv, and it sees the core only through its public
 * API (gev.h). A loop is a napi external over a gev_node: a pointer to the core's opaque gev_loop
 * plus what ties it to this thread's Node environment, namely the uv_poll watching the loop's fd,
 * the batch callback and the references pinning the arenas. A wake-up runs
 * gev_loop_fill, crosses into JS once if records were written, then runs the command list JS left
 * (gev_flush). The gev_node is freed once it is both closed (its uv_poll handle finished closing)
 * and finalized (JS dropped it). An env cleanup hook closes loops still open when the environment
 * (a worker thread, say) goes away, so no fd outlives it.
 */
#include "gev.h"

#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct gev_node {
  gev_loop *loop; /* NULL once the uv_poll handle closed and the loop was freed */
  napi_env env;
  uv_poll_t poll;
  int poll_started;

  napi_ref cb_ref;
  napi_ref resource_ref;
  napi_ref in_ref;
  napi_ref out_ref;
  napi_ref close_ref; /* the JS function called once the loop is closed */
  napi_async_context actx;

  /* Lifetime: freed once both closed and finalized. */
  int closing; /* close began: no more fills, flushes or JS calls from on_poll */
  int closed;
  int finalized;
  int js_released;
  int env_gone; /* the napi_env is being torn down: never call into it again */

  struct iovec ext[GEV_MAX_EXT]; /* js_flush's by-reference payloads, kept here so a flush never allocates */
} gev_node;

#define ARGS(n)                       \
  size_t argc = (n);                  \
  napi_value argv[(n) > 0 ? (n) : 1]; \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static int32_t arg_i32(napi_env env, napi_value v) {
  int32_t r = 0;
  napi_get_value_int32(env, v, &r);
  return r;
}

static uint32_t arg_u32(napi_env env, napi_value v) {
  uint32_t r = 0;
  napi_get_value_uint32(env, v, &r);
  return r;
}

static gev_node *arg_node(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) {
    napi_throw_type_error(env, NULL, "gevent: expected a native loop handle");
    return NULL;
  }
  return p;
}

static int arg_string(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return -EINVAL;
  return len + 1 >= cap ? -ENAMETOOLONG : 0;
}

static void *arg_typed(napi_env env, napi_value v, size_t *bytes) {
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *data = NULL;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) return NULL;
  size_t unit = (type == napi_uint32_array || type == napi_int32_array || type == napi_float32_array)         ? 4
                : (type == napi_float64_array || type == napi_bigint64_array || type == napi_biguint64_array) ? 8
                : (type == napi_uint16_array || type == napi_int16_array)                                     ? 2
                                                                                                              : 1;
  *bytes = length * unit;
  return data;
}

/* One crossing into JS for the batch the fill just wrote. */
static void call_js(gev_node *n) {
  napi_env env = n->env;
  napi_handle_scope scope;
  napi_value cb, recv, result;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, n->cb_ref, &cb) == napi_ok &&
      napi_get_reference_value(env, n->resource_ref, &recv) == napi_ok) {
    napi_status st = napi_make_callback(env, n->actx, recv, cb, 0, NULL, &result);
    if (st == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  gev_node *n = h->data;
  (void)status;
  (void)events;
  if (n->closing) return;
  if (gev_loop_fill(n->loop) > 0) call_js(n);
  if (!n->closing && gev_loop_has_commands(n->loop)) gev_flush(n->loop, NULL, 0);
}

static void release_js(gev_node *n) {
  napi_env env = n->env;
  if (n->js_released) return;
  n->js_released = 1;
  napi_ref *refs[] = {&n->cb_ref, &n->resource_ref, &n->in_ref, &n->out_ref, &n->close_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i] != NULL) napi_delete_reference(env, *refs[i]);
    *refs[i] = NULL;
  }
  if (n->actx != NULL) napi_async_destroy(env, n->actx);
  n->actx = NULL;
}

static void loop_cleanup(void *arg);

static void maybe_free(gev_node *n) {
  if (n->closed && n->finalized) free(n);
}

/* The uv_poll handle is closed: release the core loop, then tell JS (unless the env is gone). */
static void on_poll_closed(uv_handle_t *h) {
  gev_node *n = h->data;
  napi_env env = n->env;
  gev_loop_free(n->loop);
  n->loop = NULL;
  n->closed = 1;
  if (!n->env_gone) {
    napi_remove_env_cleanup_hook(env, loop_cleanup, n);
    if (n->close_ref != NULL) {
      napi_handle_scope scope;
      napi_value cb, recv, result;
      napi_open_handle_scope(env, &scope);
      if (napi_get_reference_value(env, n->close_ref, &cb) == napi_ok && cb != NULL) {
        if (n->resource_ref == NULL || napi_get_reference_value(env, n->resource_ref, &recv) != napi_ok) {
          napi_get_global(env, &recv);
        }
        napi_status st = n->actx != NULL ? napi_make_callback(env, n->actx, recv, cb, 0, NULL, &result)
                                         : napi_call_function(env, recv, cb, 0, NULL, &result);
        if (st == napi_pending_exception) {
          napi_value err;
          if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
        }
      }
      napi_close_handle_scope(env, scope);
    }
    release_js(n);
  }
  maybe_free(n);
}

/* Stops watching and closes the uv_poll handle; on_poll_closed releases everything after that. */
static void begin_close(gev_node *n) {
  if (n->closing) return;
  n->closing = 1;
  gev_loop_close_listeners(n->loop);
  if (n->poll_started) uv_poll_stop(&n->poll);
  uv_close((uv_handle_t *)&n->poll, on_poll_closed);
}

/* Environment teardown: close without calling into JS again. */
static void loop_cleanup(void *arg) {
  gev_node *n = arg;
  n->env_gone = 1;
  begin_close(n);
}

static void loop_finalize(napi_env env, void *data, void *hint) {
  gev_node *n = data;
  (void)env;
  (void)hint;
  n->finalized = 1;
  if (!n->closing) begin_close(n);
  else maybe_free(n);
}

static int pin_arraybuffer(napi_env env, napi_value v, napi_ref *ref, void **data, size_t *len) {
  bool is_ab = false;
  if (napi_is_arraybuffer(env, v, &is_ab) != napi_ok || !is_ab) return -EINVAL;
  if (napi_get_arraybuffer_info(env, v, data, len) != napi_ok) return -EINVAL;
  return napi_create_reference(env, v, 1, ref) == napi_ok ? 0 : -EINVAL;
}

/* Opens the core loop and the uv_poll over its fd. 0 or -errno (nothing left open). */
static int node_init(gev_node *n, napi_env env) {
  uv_loop_t *uvl = NULL;
  n->env = env;
  if (napi_get_uv_event_loop(env, &uvl) != napi_ok || uvl == NULL) return -ENOSYS;
  int rc = gev_loop_create(&n->loop);
  if (rc != 0) return rc;
  rc = uv_poll_init(uvl, &n->poll, gev_loop_fd(n->loop));
  if (rc != 0) {
    gev_loop_free(n->loop);
    n->loop = NULL;
    return rc;
  }
  n->poll.data = n;
  return 0;
}

/* loopCreate(inArena, inRecordSlots, outArena, outCommandSlots, tcpNoDelay, udpSlotBytes,
 * proxyHeaderTimeoutMs) */
static napi_value js_loop_create(napi_env env, napi_callback_info info) {
  ARGS(7);
  gev_node *n = calloc(1, sizeof *n);
  if (n == NULL) return num(env, -ENOMEM);
  void *in = NULL, *out = NULL;
  size_t in_len = 0, out_len = 0;
  uint32_t in_recs = arg_u32(env, argv[1]);
  uint32_t out_cmds = arg_u32(env, argv[3]);
  bool nodelay = false;
  napi_get_value_bool(env, argv[4], &nodelay);
  uint32_t udp_slot = arg_u32(env, argv[5]);
  uint32_t proxy_timeout_ms = arg_u32(env, argv[6]);
  int rc = node_init(n, env);
  if (rc != 0) {
    free(n);
    return num(env, rc);
  }
  if (pin_arraybuffer(env, argv[0], &n->in_ref, &in, &in_len) != 0 ||
      pin_arraybuffer(env, argv[2], &n->out_ref, &out, &out_len) != 0 ||
      ((size_t)GEV_HDR_U32 + (size_t)in_recs * GEV_SLOT_U32) * sizeof(uint32_t) >= in_len ||
      ((size_t)GEV_HDR_U32 + (size_t)out_cmds * GEV_SLOT_U32) * sizeof(uint32_t) >= out_len || udp_slot == 0 ||
      udp_slot > GEV_UDP_SLOT || proxy_timeout_ms == 0) {
    release_js(n);
    n->env_gone = 1;
    n->finalized = 1;
    begin_close(n);
    napi_throw_range_error(env, NULL, "gevent: bad arena layout for loopCreate");
    return NULL;
  }
  gev_loop_bind_arenas(n->loop, in, in_len, in_recs, out, out_len, out_cmds);
  gev_loop_configure(n->loop, nodelay, udp_slot, proxy_timeout_ms);
  napi_add_env_cleanup_hook(env, loop_cleanup, n);
  napi_value ext;
  napi_create_external(env, n, loop_finalize, NULL, &ext);
  return ext;
}

/* loopStart(loop, batchCallback): the callback runs once per wake-up that produced records. */
static napi_value js_loop_start(napi_env env, napi_callback_info info) {
  ARGS(2);
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing || n->cb_ref != NULL) return num(env, -EINVAL);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "gevent:loop", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &n->cb_ref);
  napi_create_reference(env, resource, 1, &n->resource_ref);
  napi_async_init(env, resource, name, &n->actx);
  if (n->poll_started) return num(env, 0);
  int rc = uv_poll_start(&n->poll, UV_READABLE, on_poll);
  if (rc == 0) n->poll_started = 1;
  return num(env, rc);
}

/* listenTcp / listenUdp (loop, family 0|4|6, host, port, flags, origin): flags are GEV_LISTEN_*,
 * origin the JS listener index. Returns the listener slot or -errno. */
static napi_value listen_inet(napi_env env, napi_callback_info info, int udp) {
  ARGS(6);
  char host[128];
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  if (arg_string(env, argv[2], host, sizeof host) != 0) return num(env, -EINVAL);
  int family = arg_i32(env, argv[1]);
  int port = arg_i32(env, argv[3]);
  uint32_t flags = arg_u32(env, argv[4]);
  uint32_t origin = arg_u32(env, argv[5]);
  int rc = udp ? gev_listen_udp(n->loop, family, host, port, flags, origin)
               : gev_listen_tcp(n->loop, family, host, port, flags, origin);
  return num(env, rc);
}

static napi_value js_listen_tcp(napi_env env, napi_callback_info info) { return listen_inet(env, info, 0); }
static napi_value js_listen_udp(napi_env env, napi_callback_info info) { return listen_inet(env, info, 1); }

/* listenUnix(loop, path, flags, origin). Returns the slot or -errno. */
static napi_value js_listen_unix(napi_env env, napi_callback_info info) {
  ARGS(4);
  char path[256];
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  int rc = arg_string(env, argv[1], path, sizeof path);
  if (rc != 0) return num(env, rc);
  return num(env, gev_listen_unix(n->loop, path, arg_u32(env, argv[2]), arg_u32(env, argv[3])));
}

/* listenerAddr(loop, slot, out Uint32Array(8)) / connAddr(loop, id, out): 0 or -errno. */
static napi_value addr_common(napi_env env, napi_callback_info info, int conn) {
  ARGS(3);
  size_t bytes = 0;
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  uint32_t *out = arg_typed(env, argv[2], &bytes);
  if (out == NULL || bytes < GEV_ADDR_U32 * sizeof(uint32_t)) return num(env, -EINVAL);
  uint32_t which = arg_u32(env, argv[1]);
  return num(env, conn ? gev_conn_sockname(n->loop, which, out) : gev_listener_sockname(n->loop, which, out));
}

static napi_value js_listener_addr(napi_env env, napi_callback_info info) { return addr_common(env, info, 0); }
static napi_value js_conn_addr(napi_env env, napi_callback_info info) { return addr_common(env, info, 1); }

/* connRelayed(loop, id, out Float64Array(2)): [bytes relayed out of id, bytes relayed into it]; 0 or -errno. */
static napi_value js_conn_relayed(napi_env env, napi_callback_info info) {
  ARGS(3);
  size_t bytes = 0;
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  double *out = arg_typed(env, argv[2], &bytes);
  if (out == NULL || bytes < 2 * sizeof(double)) return num(env, -EINVAL);
  uint64_t rx = 0, tx = 0;
  int rc = gev_conn_relayed(n->loop, arg_u32(env, argv[1]), &rx, &tx);
  out[0] = (double)rx;
  out[1] = (double)tx;
  return num(env, rc);
}

static napi_value js_listener_close(napi_env env, napi_callback_info info) {
  ARGS(2);
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (!n->closing) gev_listener_close(n->loop, arg_u32(env, argv[1]));
  return NULL;
}

/* flush(loop, ext Uint8Array[] | null, extCount): runs the out arena's command list. */
static napi_value js_flush(napi_env env, napi_callback_info info) {
  ARGS(3);
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL || n->closing) return NULL;
  uint32_t next = arg_u32(env, argv[2]);
  if (next > GEV_MAX_EXT) next = GEV_MAX_EXT;
  struct iovec *ext = n->ext;
  for (uint32_t i = 0; i < next; i++) {
    napi_value el;
    size_t bytes = 0;
    void *p = NULL;
    if (napi_get_element(env, argv[1], i, &el) == napi_ok) p = arg_typed(env, el, &bytes);
    ext[i].iov_base = p;
    ext[i].iov_len = p ? bytes : 0;
  }
  gev_flush(n->loop, ext, next);
  return NULL;
}

/* adopt(loop, fd, origin, flags): registers an fd accepted elsewhere; OPEN follows in a batch.
 * flags: LISTEN_PROXY (an ACCEPTED record's word c) makes this loop read its PROXY header first. */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  ARGS(4);
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  uint32_t id = 0;
  int rc = gev_conn_adopt(n->loop, arg_i32(env, argv[1]), arg_u32(env, argv[2]), arg_u32(env, argv[3]), &id);
  return num(env, rc != 0 ? rc : (double)id);
}

/* connectInet / connectUdp(loop, family 4|6, host, port, localHost, localPort, origin): starts a
 * dial to a numeric host (a TCP connect, or a connected UDP socket), bound first to localHost ('' =
 * any) and localPort (0 = any). Returns its id or -errno; OPEN (origin with GEV_ORIGIN_DIAL set) or
 * CLOSE follows in a batch (see gev_conn_connect_inet and gev_conn_connect_udp in gev.h). */
static napi_value connect_common(napi_env env, napi_callback_info info, int udp) {
  ARGS(7);
  char host[128], local[128];
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  if (arg_string(env, argv[2], host, sizeof host) != 0 || arg_string(env, argv[4], local, sizeof local) != 0) {
    return num(env, -EINVAL);
  }
  uint32_t id = 0;
  int (*connect)(gev_loop *, int, const char *, int, const char *, int, uint32_t, uint32_t *) =
      udp ? gev_conn_connect_udp : gev_conn_connect_inet;
  int rc = connect(n->loop, arg_i32(env, argv[1]), host, arg_i32(env, argv[3]), local, arg_i32(env, argv[5]),
                   arg_u32(env, argv[6]), &id);
  return num(env, rc != 0 ? rc : (double)id);
}

static napi_value js_connect_inet(napi_env env, napi_callback_info info) { return connect_common(env, info, 0); }
static napi_value js_connect_udp(napi_env env, napi_callback_info info) { return connect_common(env, info, 1); }

/* connectUnix(loop, path, origin): starts a dial to a unix stream socket; its id or -errno. */
static napi_value js_connect_unix(napi_env env, napi_callback_info info) {
  ARGS(3);
  char path[256];
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  int rc = arg_string(env, argv[1], path, sizeof path);
  if (rc != 0) return num(env, rc);
  uint32_t id = 0;
  rc = gev_conn_connect_unix(n->loop, path, arg_u32(env, argv[2]), &id);
  return num(env, rc != 0 ? rc : (double)id);
}

static napi_value str(napi_env env, const char *s) {
  napi_value r;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r);
  return r;
}

/* tlsAvailable(): null when TLS can run natively in this process, else the sentence saying why not. */
static napi_value js_tls_available(napi_env env, napi_callback_info info) {
  const char *reason = NULL;
  napi_value r;
  if (gev_tls_init(&reason) == 0) {
    napi_get_null(env, &r);
    return r;
  }
  return str(env, reason != NULL ? reason : "OpenSSL is not usable here");
}

/* loopTls(loop, key Uint8Array, cert Uint8Array, alpn Uint8Array (wire format, empty for none),
 * handshakeTimeoutMs): the context of the loop's TLS listeners. 0, or [-errno, the sentence saying
 * what OpenSSL refused]. */
static napi_value js_loop_tls(napi_env env, napi_callback_info info) {
  ARGS(5);
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  size_t key_len = 0, cert_len = 0;
  const char *key = arg_typed(env, argv[1], &key_len);
  const char *cert = arg_typed(env, argv[2], &cert_len);
  size_t alpn_len = 0;
  const char *alpn = arg_typed(env, argv[3], &alpn_len);
  if (key == NULL || cert == NULL) return num(env, -EINVAL); /* an empty alpn may have no data */
  const char *reason = NULL;
  int rc = gev_loop_tls(n->loop, key, key_len, cert, cert_len, (const unsigned char *)alpn, alpn_len,
                        arg_u32(env, argv[4]), &reason);
  if (rc == 0) return num(env, 0);
  napi_value pair;
  napi_create_array_with_length(env, 2, &pair);
  napi_set_element(env, pair, 0, num(env, rc));
  napi_set_element(env, pair, 1, str(env, reason != NULL ? reason : ""));
  return pair;
}

/* connTlsInfo(loop, id): [protocol, cipher, servername ('' for none), resumed, ALPN protocol ('' for
 * none)] of an open TLS connection, or -errno. */
static napi_value js_conn_tls_info(napi_env env, napi_callback_info info) {
  ARGS(2);
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EBADF);
  gev_tls_info ti;
  int rc = gev_conn_tls_info(n->loop, arg_u32(env, argv[1]), &ti);
  if (rc != 0) return num(env, rc);
  napi_value arr, b;
  napi_create_array_with_length(env, 5, &arr);
  napi_set_element(env, arr, 0, str(env, ti.protocol != NULL ? ti.protocol : ""));
  napi_set_element(env, arr, 1, str(env, ti.cipher != NULL ? ti.cipher : ""));
  napi_set_element(env, arr, 2, str(env, ti.servername));
  napi_get_boolean(env, ti.resumed != 0, &b);
  napi_set_element(env, arr, 3, b);
  napi_set_element(env, arr, 4, str(env, ti.alpn));
  return arr;
}

/* tlsReason(err): OpenSSL's text for the error of a TLS_REFUSED record, or null. */
static napi_value js_tls_reason(napi_env env, napi_callback_info info) {
  ARGS(1);
  const char *reason = gev_tls_reason(arg_u32(env, argv[0]));
  if (reason != NULL) return str(env, reason);
  napi_value r;
  napi_get_null(env, &r);
  return r;
}

/* stopAll(loop): closes listeners and connections, filling the in arena with CLOSE records.
 * Returns the record slots written; call again until it returns 0. */
static napi_value js_stop_all(napi_env env, napi_callback_info info) {
  ARGS(1);
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, 0);
  return num(env, gev_loop_stop_all(n->loop));
}

/* close(loop, done): closes the uv_poll handle and every fd; done() runs once that finished. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(2);
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  if (n->closing) return num(env, -EALREADY);
  napi_create_reference(env, argv[1], 1, &n->close_ref);
  begin_close(n);
  return num(env, 0);
}

/* closeFd(fd): releases an fd from an ACCEPTED record that no loop took. */
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  ARGS(1);
  return num(env, gev_fd_close(arg_i32(env, argv[0])));
}

/* stats(loop, out Float64Array(GEV_STATS_LEN)): live connections, datagrams dropped as truncated,
 * datagrams dropped on send, pending record slots, listeners parked after an accept error. */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  ARGS(2);
  size_t bytes = 0;
  gev_node *n = arg_node(env, argv[0]);
  if (n == NULL) return NULL;
  double *out = arg_typed(env, argv[1], &bytes);
  if (out == NULL || bytes < GEV_STATS_LEN * sizeof(double)) return num(env, -EINVAL);
  if (n->loop == NULL) return num(env, -EBADF);
  gev_stats st;
  gev_loop_stats(n->loop, &st);
  out[0] = (double)st.live;
  out[1] = (double)st.dgram_truncated;
  out[2] = (double)st.dgram_send_dropped;
  out[3] = (double)st.pending_slots;
  out[4] = (double)st.listeners_parked;
  return num(env, 0);
}

/* The frozen object of every protocol constant (gev_proto.h), NAME -> number, without GEV_. */
static napi_value proto_constants(napi_env env) {
#define GEV_PROTO_ENTRY(kind, name, value) {#name, (double)(value)},
  static const struct {
    const char *name;
    double value;
  } table[] = {GEV_PROTO_CONSTANTS(GEV_PROTO_ENTRY)};
#undef GEV_PROTO_ENTRY
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (napi_set_named_property(env, obj, table[i].name, num(env, table[i].value)) != napi_ok) return NULL;
  }
  return napi_object_freeze(env, obj) == napi_ok ? obj : NULL;
}

NAPI_MODULE_INIT() {
  napi_value constants = proto_constants(env);
  if (constants == NULL) {
    napi_throw_error(env, NULL, "gevent: cannot build the protocol constants");
    return NULL;
  }
  const napi_property_descriptor fns[] = {
      {"loopCreate", NULL, js_loop_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"loopStart", NULL, js_loop_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenTcp", NULL, js_listen_tcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUdp", NULL, js_listen_udp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUnix", NULL, js_listen_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenerAddr", NULL, js_listener_addr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenerClose", NULL, js_listener_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connAddr", NULL, js_conn_addr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connRelayed", NULL, js_conn_relayed, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flush", NULL, js_flush, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adopt", NULL, js_adopt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connectInet", NULL, js_connect_inet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connectUnix", NULL, js_connect_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connectUdp", NULL, js_connect_udp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopAll", NULL, js_stop_all, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, js_close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tlsAvailable", NULL, js_tls_available, NULL, NULL, NULL, napi_enumerable, NULL},
      {"loopTls", NULL, js_loop_tls, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connTlsInfo", NULL, js_conn_tls_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tlsReason", NULL, js_tls_reason, NULL, NULL, NULL, napi_enumerable, NULL},
      {"constants", NULL, NULL, NULL, NULL, constants, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}
