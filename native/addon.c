/*
 * Node-API glue: every js_* function is called by src/backend/native.ts on the loop's own thread,
 * except js_wake (any thread). Arguments were validated in TypeScript; these functions only check
 * types and return -errno numbers for system failures. The typed surface is
 * src/backend/addon-types.ts.
 *
 * A loop is a napi external. It is freed once it is both closed (its uv_poll handle finished
 * closing) and finalized (JS dropped it). An env cleanup hook closes loops still open when the
 * environment (a worker thread, say) goes away, so no fd outlives it.
 */
#include "gev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct gev_instance {
  uint32_t live_loops;
} gev_instance;

#define ARGS(n)                                                                         \
  size_t argc = (n);                                                                    \
  napi_value argv[(n) > 0 ? (n) : 1];                                                   \
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

static gev_loop *arg_loop(napi_env env, napi_value v) {
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
  size_t unit = (type == napi_uint32_array || type == napi_int32_array || type == napi_float32_array) ? 4
                : (type == napi_float64_array || type == napi_bigint64_array || type == napi_biguint64_array) ? 8
                : (type == napi_uint16_array || type == napi_int16_array) ? 2 : 1;
  *bytes = length * unit;
  return data;
}

static void release_js(gev_loop *loop) {
  napi_env env = loop->env;
  if (loop->js_released) return;
  loop->js_released = 1;
  napi_ref *refs[] = {&loop->cb_ref, &loop->resource_ref, &loop->in_ref, &loop->out_ref, &loop->close_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i] != NULL) napi_delete_reference(env, *refs[i]);
    *refs[i] = NULL;
  }
  if (loop->actx != NULL) napi_async_destroy(env, loop->actx);
  loop->actx = NULL;
}

static void loop_cleanup(void *arg);

static void free_loop(gev_loop *loop) { free(loop); }

static void maybe_free(gev_loop *loop) {
  if (loop->closed && loop->finalized) free(loop);
}

static void on_loop_closed(gev_loop *loop) {
  gev_instance *inst = NULL;
  napi_env env = loop->env;
  loop->closed = 1;
  if (!loop->env_gone) {
    napi_get_instance_data(env, (void **)&inst);
    if (inst != NULL) inst->live_loops--;
    napi_remove_env_cleanup_hook(env, loop_cleanup, loop);
    if (loop->close_ref != NULL) {
      napi_handle_scope scope;
      napi_value cb, recv, result;
      napi_open_handle_scope(env, &scope);
      if (napi_get_reference_value(env, loop->close_ref, &cb) == napi_ok && cb != NULL) {
        if (loop->resource_ref == NULL || napi_get_reference_value(env, loop->resource_ref, &recv) != napi_ok) {
          napi_get_global(env, &recv);
        }
        napi_status st = loop->actx != NULL ? napi_make_callback(env, loop->actx, recv, cb, 0, NULL, &result)
                                            : napi_call_function(env, recv, cb, 0, NULL, &result);
        if (st == napi_pending_exception) {
          napi_value err;
          if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
        }
      }
      napi_close_handle_scope(env, scope);
    }
    release_js(loop);
  }
  maybe_free(loop);
}

static void begin_close(gev_loop *loop) {
  if (loop->closing) return;
  loop->closing = 1;
  gev_loop_close(loop, on_loop_closed);
}

/* Environment teardown: close without calling into JS again. */
static void loop_cleanup(void *arg) {
  gev_loop *loop = arg;
  loop->env_gone = 1;
  begin_close(loop);
}

static void loop_finalize(napi_env env, void *data, void *hint) {
  gev_loop *loop = data;
  (void)env;
  (void)hint;
  loop->finalized = 1;
  if (!loop->closing) begin_close(loop);
  else maybe_free(loop);
}

static void instance_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static int pin_arraybuffer(napi_env env, napi_value v, napi_ref *ref, void **data, size_t *len) {
  bool is_ab = false;
  if (napi_is_arraybuffer(env, v, &is_ab) != napi_ok || !is_ab) return -EINVAL;
  if (napi_get_arraybuffer_info(env, v, data, len) != napi_ok) return -EINVAL;
  return napi_create_reference(env, v, 1, ref) == napi_ok ? 0 : -EINVAL;
}

/* loopCreate(inArena, inRecordSlots, outArena, outCommandSlots, tcpNoDelay, udpSlotBytes) */
static napi_value js_loop_create(napi_env env, napi_callback_info info) {
  ARGS(6);
  gev_instance *inst = NULL;
  napi_get_instance_data(env, (void **)&inst);
  gev_loop *loop = calloc(1, sizeof *loop);
  if (loop == NULL) return num(env, -ENOMEM);
  void *in = NULL, *out = NULL;
  size_t in_len = 0, out_len = 0;
  uint32_t in_recs = arg_u32(env, argv[1]);
  uint32_t out_cmds = arg_u32(env, argv[3]);
  bool nodelay = false;
  napi_get_value_bool(env, argv[4], &nodelay);
  uint32_t udp_slot = arg_u32(env, argv[5]);
  int rc = gev_loop_init(loop, env);
  if (rc != 0) {
    free(loop);
    return num(env, rc);
  }
  if (pin_arraybuffer(env, argv[0], &loop->in_ref, &in, &in_len) != 0 ||
      pin_arraybuffer(env, argv[2], &loop->out_ref, &out, &out_len) != 0 ||
      ((size_t)GEV_HDR_U32 + (size_t)in_recs * 4u) * 4u >= in_len ||
      ((size_t)GEV_HDR_U32 + (size_t)out_cmds * 4u) * 4u >= out_len || udp_slot == 0) {
    release_js(loop);
    loop->closing = 1;
    gev_loop_close(loop, free_loop);
    napi_throw_range_error(env, NULL, "gevent: bad arena layout for loopCreate");
    return NULL;
  }
  loop->in32 = in;
  loop->in8 = in;
  loop->in_size = in_len;
  loop->in_rec_cap = in_recs;
  loop->in_byte_start = ((size_t)GEV_HDR_U32 + (size_t)in_recs * 4u) * 4u;
  loop->in_byte_pos = loop->in_byte_start;
  loop->out32 = out;
  loop->out8 = out;
  loop->out_size = out_len;
  loop->out_cmd_cap = out_cmds;
  loop->tcp_nodelay = nodelay;
  loop->udp_slot = udp_slot;
  napi_add_env_cleanup_hook(env, loop_cleanup, loop);
  if (inst != NULL) inst->live_loops++;
  napi_value ext;
  napi_create_external(env, loop, loop_finalize, NULL, &ext);
  return ext;
}

/* loopStart(loop, batchCallback): the callback runs once per wake-up that produced records. */
static napi_value js_loop_start(napi_env env, napi_callback_info info) {
  ARGS(2);
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  if (loop->closing || loop->cb_ref != NULL) return num(env, -EINVAL);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "gevent:loop", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &loop->cb_ref);
  napi_create_reference(env, resource, 1, &loop->resource_ref);
  napi_async_init(env, resource, name, &loop->actx);
  return num(env, gev_loop_start(loop));
}

/* listenInet(loop, udp, family 0|4|6, host, port, flags, index): flags 1 reuseport, 2 v6only,
 * 4 hand-off. Returns the listener slot or -errno. */
static napi_value js_listen_inet(napi_env env, napi_callback_info info) {
  ARGS(7);
  char host[128];
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  bool udp = false;
  napi_get_value_bool(env, argv[1], &udp);
  if (arg_string(env, argv[3], host, sizeof host) != 0) return num(env, -EINVAL);
  int family = arg_i32(env, argv[2]);
  int port = arg_i32(env, argv[4]);
  uint32_t flags = arg_u32(env, argv[5]);
  uint32_t index = arg_u32(env, argv[6]);
  int rc = udp ? gev_listen_udp(loop, family, host, port, flags & 1u, (flags & 2u) != 0, index)
               : gev_listen_tcp(loop, family, host, port, flags & 1u, (flags & 2u) != 0, index, (flags & 4u) != 0);
  return num(env, rc);
}

/* listenUnix(loop, path, flags, index): flags 4 hand-off. Returns the slot or -errno. */
static napi_value js_listen_unix(napi_env env, napi_callback_info info) {
  ARGS(4);
  char path[256];
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  int rc = arg_string(env, argv[1], path, sizeof path);
  if (rc != 0) return num(env, rc);
  return num(env, gev_listen_unix(loop, path, arg_u32(env, argv[3]), (arg_u32(env, argv[2]) & 4u) != 0));
}

/* listenerAddr(loop, slot, out Uint32Array(8)) / connAddr(loop, id, out): 0 or -errno. */
static napi_value addr_common(napi_env env, napi_callback_info info, int conn) {
  ARGS(3);
  size_t bytes = 0;
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  uint32_t *out = arg_typed(env, argv[2], &bytes);
  if (out == NULL || bytes < 8 * sizeof(uint32_t)) return num(env, -EINVAL);
  uint32_t which = arg_u32(env, argv[1]);
  return num(env, conn ? gev_conn_sockname(loop, which, out) : gev_listener_sockname(loop, which, out));
}

static napi_value js_listener_addr(napi_env env, napi_callback_info info) { return addr_common(env, info, 0); }
static napi_value js_conn_addr(napi_env env, napi_callback_info info) { return addr_common(env, info, 1); }

static napi_value js_listener_close(napi_env env, napi_callback_info info) {
  ARGS(2);
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  gev_listener_close(loop, arg_u32(env, argv[1]));
  return NULL;
}

/* flush(loop, ext Uint8Array[] | null, extCount): runs the out arena's command list. */
static napi_value js_flush(napi_env env, napi_callback_info info) {
  ARGS(3);
  struct iovec stack_ext[16];
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL || loop->closing) return NULL;
  uint32_t next = arg_u32(env, argv[2]);
  if (next > GEV_MAX_EXT) next = GEV_MAX_EXT;
  struct iovec *ext = next <= 16 ? stack_ext : malloc(next * sizeof *ext);
  if (ext == NULL) return NULL;
  for (uint32_t i = 0; i < next; i++) {
    napi_value el;
    size_t bytes = 0;
    void *p = NULL;
    if (napi_get_element(env, argv[1], i, &el) == napi_ok) p = arg_typed(env, el, &bytes);
    ext[i].iov_base = p;
    ext[i].iov_len = p ? bytes : 0;
  }
  gev_flush(loop, ext, next);
  if (ext != stack_ext) free(ext);
  return NULL;
}

/* adopt(loop, fd, listenerIndex): registers an fd accepted elsewhere; OPEN follows in a batch. */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  ARGS(3);
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  if (loop->closing) return num(env, -EBADF);
  uint32_t id = 0;
  int rc = gev_conn_adopt(loop, arg_i32(env, argv[1]), arg_u32(env, argv[2]), &id);
  return num(env, rc != 0 ? rc : (double)id);
}

/* stopAll(loop): closes listeners and connections, filling the in arena with CLOSE records.
 * Returns the record slots written; call again until it returns 0. */
static napi_value js_stop_all(napi_env env, napi_callback_info info) {
  ARGS(1);
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  if (loop->closing) return num(env, 0);
  return num(env, gev_loop_stop_all(loop));
}

/* close(loop, done): closes the uv_poll handle and every fd; done() runs once that finished. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(2);
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  if (loop->closing) return num(env, -EALREADY);
  napi_create_reference(env, argv[1], 1, &loop->close_ref);
  begin_close(loop);
  return num(env, 0);
}

static napi_value js_wake_fd(napi_env env, napi_callback_info info) {
  ARGS(1);
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  return num(env, loop->closing ? -EBADF : loop->efd);
}

/* wake(eventfd): any thread; the owning loop's next batch carries a WAKE record. */
static napi_value js_wake(napi_env env, napi_callback_info info) {
  ARGS(1);
  return num(env, gev_loop_wake_fd(arg_i32(env, argv[0])));
}

/* closeFd(fd): releases an fd from an ACCEPTED record that no loop took. */
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  ARGS(1);
  int fd = arg_i32(env, argv[0]);
  return num(env, fd >= 0 && close(fd) == 0 ? 0 : -errno);
}

/* stats(loop, out Float64Array(4)): live connections, datagrams dropped as truncated, datagrams
 * dropped on send, pending records. */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  ARGS(2);
  size_t bytes = 0;
  gev_loop *loop = arg_loop(env, argv[0]);
  if (loop == NULL) return NULL;
  double *out = arg_typed(env, argv[1], &bytes);
  if (out == NULL || bytes < 4 * sizeof(double)) return num(env, -EINVAL);
  out[0] = loop->live;
  out[1] = (double)loop->dgram_truncated;
  out[2] = (double)loop->dgram_send_dropped;
  out[3] = loop->pending.n;
  return num(env, 0);
}

static napi_value js_live_loops(napi_env env, napi_callback_info info) {
  (void)info;
  gev_instance *inst = NULL;
  napi_get_instance_data(env, (void **)&inst);
  return num(env, inst ? inst->live_loops : 0);
}

NAPI_MODULE_INIT() {
  gev_instance *inst = calloc(1, sizeof *inst);
  if (inst == NULL || napi_set_instance_data(env, inst, instance_finalize, NULL) != napi_ok) {
    free(inst);
    napi_throw_error(env, NULL, "gevent: cannot allocate addon instance data");
    return NULL;
  }
  const napi_property_descriptor fns[] = {
      {"loopCreate", NULL, js_loop_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"loopStart", NULL, js_loop_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenInet", NULL, js_listen_inet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUnix", NULL, js_listen_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenerAddr", NULL, js_listener_addr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenerClose", NULL, js_listener_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connAddr", NULL, js_conn_addr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flush", NULL, js_flush, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adopt", NULL, js_adopt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopAll", NULL, js_stop_all, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"wakeFd", NULL, js_wake_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"wake", NULL, js_wake, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, js_close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"liveLoops", NULL, js_live_loops, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}
