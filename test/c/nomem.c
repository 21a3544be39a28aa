/*
 * Out of memory in the core. build.sh links this program with malloc, calloc and realloc wrapped
 * (-Wl,--wrap), so any allocation of native/ can be made to fail on demand. No failure may abort:
 * the core closes only the connection concerned, with ENOMEM and a GEV_NOMEM_* code in its CLOSE,
 * loses no record, and serves every other connection on. Exits 0 when every case held:
 *   1. output copy: the copy of a write the kernel did not take fails; that connection closes with
 *      ENOMEM/QUEUE, and a second connection on the same loop is still written to and read from;
 *   2. dirty list: it cannot grow; every connection's QUEUED report still goes out (table scan);
 *   3. pending list: it cannot grow; a QUEUED report with no room closes its connection with
 *      ENOMEM/REPORT, and the CLOSE record of every other connection still arrives, once;
 *   4. new connections: the pending reserve or the table cannot grow; gev_conn_add returns ENOMEM,
 *      so does a dial (gev_conn_connect, its socket closed), a listener reports ACCEPT_ERROR ENOMEM
 *      and closes that fd, and accepts again afterwards;
 *   5. random failures (one allocation in four, in bursts) under random writes, watches, pauses,
 *      ends and closes: every connection closes exactly once, and every peer reads a prefix of
 *      what was written to it, in order;
 *   6. PROXY listeners: the header state (at accept) or the header buffer (at the first read)
 *      cannot be allocated; the connection is refused as PROXY_E_CLOSED, its client sees the close,
 *      and the next connection opens.
 */
#include "harness.h"

#include <sys/resource.h>

enum { A_MALLOC = 1, A_CALLOC = 2, A_REALLOC = 4, A_ALL = 7 };

static int g_fail_kinds;       /* which calls fail; 0 = none */
static long g_fail_skip;       /* calls of those kinds that still succeed before failures start */
static uint32_t g_fail_one_in; /* random mode: a call fails with probability 1/g_fail_one_in */
static long g_failures;        /* failures injected so far */

static uint32_t rnd(void) {
  static uint64_t s = 0x2545f4914f6cdd1dull;
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return (uint32_t)s;
}

static int inject(int kind) {
  if (!(g_fail_kinds & kind)) return 0;
  if (g_fail_one_in != 0) {
    if (rnd() % g_fail_one_in != 0) return 0;
  } else if (g_fail_skip > 0) {
    g_fail_skip--;
    return 0;
  }
  g_failures++;
  return 1;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { return inject(A_MALLOC) ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return inject(A_CALLOC) ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return inject(A_REALLOC) ? NULL : __real_realloc(p, n); }

static void fail_after(int kinds, long skip) {
  g_fail_kinds = kinds;
  g_fail_skip = skip;
  g_fail_one_in = 0;
  g_failures = 0;
}

/* Registers a dup of `fd` as a connection; the dup is closed again if the core refuses it. */
static int add_dup(gev_loop *loop, int fd, uint32_t *id) {
  int d = dup(fd);
  CHECK(d >= 0, "dup: %s", strerror(errno));
  int rc = gev_conn_add(loop, d, 0, 1, id);
  if (rc != 0) close(d);
  return rc;
}

static void fail_never(void) { g_fail_kinds = 0; }

/* What the records said about one connection. */
typedef struct {
  uint32_t id;
  int closes;
  uint32_t err;
  uint32_t what;
  int queued;
  uint64_t last_queued;
  size_t data;
} seen;

typedef struct {
  seen *conns;
  int n;
  int accept_errors;
  uint32_t accept_errno;
  int opens;
} tally;

static void on_record(const uint32_t *r, void *arg) {
  tally *t = arg;
  if (r[0] == GEV_REC_ACCEPT_ERROR) {
    t->accept_errors++;
    t->accept_errno = r[2];
    return;
  }
  if (r[0] == GEV_REC_OPEN) t->opens++;
  for (int i = 0; i < t->n; i++) {
    seen *s = &t->conns[i];
    if (r[1] != s->id) continue;
    if (r[0] == GEV_REC_CLOSE) {
      s->closes++;
      s->err = r[2];
      s->what = r[3];
    } else if (r[0] == GEV_REC_QUEUED) {
      CHECK(s->closes == 0, "no QUEUED after a connection's CLOSE");
      s->queued++;
      s->last_queued = (uint64_t)r[2] | ((uint64_t)r[3] << 32);
    } else if (r[0] == GEV_REC_DATA) {
      s->data += r[3];
    }
  }
}

/* Delivers what is pending through fills (handling their events too) until nothing is left. */
static void pump(gev_loop *loop, tally *t) {
  for (int i = 0; i < 10000; i++) {
    uint32_t n = gev_loop_fill(loop);
    h_each_record(h_arena_records(loop), n, on_record, t);
    if (n == 0 && loop->pending.n == 0) return;
  }
  CHECK(0, "the pending list drained");
}

/* Pumps until `*count` reaches `want`, for up to 5 s (loopback delivers at once; this is slack). */
static void pump_until(gev_loop *loop, tally *t, const int *count, int want) {
  for (int i = 0; i < 500 && *count < want; i++) {
    pump(loop, t);
    if (*count < want) usleep(10000);
  }
}

/* Reads the pending list in place (the records a flush left for the next fill). */
static void scan_pending(gev_loop *loop, tally *t) {
  h_each_record(loop->pending.slots, loop->pending.n, on_record, t);
}

static char g_big[1 << 20];

static void flush_ext(gev_loop *loop) {
  struct iovec ext = {g_big, sizeof g_big};
  gev_flush(loop, &ext, 1);
}

/* `n` connections whose peers do not read, on small socket buffers, so a 1 MiB write queues. */
static seen *slow_conns(gev_loop *loop, int n, int *peers) {
  seen *s = calloc((size_t)n, sizeof *s);
  CHECK(s != NULL, "calloc");
  for (int i = 0; i < n; i++) {
    int mine;
    h_tcp_pair(&mine, &peers[i], 4096, 4096);
    CHECK(gev_conn_add(loop, mine, 0, 1, &s[i].id) == 0, "gev_conn_add %d", i);
  }
  return s;
}

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++) close(fds[i]);
}

static void output_copy(void) {
  gev_loop *loop = h_loop_new();
  int mine, peer_a, peer_b;
  seen s[2] = {{0}, {0}};
  tally t = {s, 2, 0, 0, 0};
  h_tcp_pair(&mine, &peer_a, 4096, 4096);
  CHECK(gev_conn_add(loop, mine, 0, 1, &s[0].id) == 0, "add A");
  h_tcp_pair(&mine, &peer_b, 0, 0);
  CHECK(gev_conn_add(loop, mine, 0, 1, &s[1].id) == 0, "add B");

  fail_after(A_ALL, 0);
  h_command(loop, GEV_OP_WRITE_EXT, s[0].id, NULL, sizeof g_big, 0);
  flush_ext(loop);
  CHECK(g_failures == 1, "the queue's copy was refused (%ld failures)", g_failures);
  CHECK(gev_conn_get(loop, s[0].id) == NULL, "A is closed");
  CHECK(loop->live == 1, "B is still open");

  /* B is served while allocations still fail: a send the kernel takes whole allocates nothing. */
  h_command(loop, GEV_OP_WRITE, s[1].id, "hello", 5, 0);
  gev_flush(loop, NULL, 0);
  char buf[16];
  CHECK(recv(peer_b, buf, sizeof buf, 0) == 5 && memcmp(buf, "hello", 5) == 0, "B's peer got its bytes");
  CHECK(send(peer_b, "ping", 4, 0) == 4, "send");
  for (int i = 0; i < 500 && s[1].data < 4; i++) {
    pump(loop, &t);
    if (s[1].data < 4) usleep(10000);
  }
  fail_never();
  CHECK(s[0].closes == 1 && s[0].err == ENOMEM && s[0].what == GEV_NOMEM_QUEUE,
        "A's CLOSE carries ENOMEM/QUEUE (closes %d, errno %u, what %u)", s[0].closes, s[0].err, s[0].what);
  CHECK(s[0].queued == 0, "no QUEUED for A");
  CHECK(s[1].closes == 0 && s[1].data == 4, "B stays open and its input arrives (%zu bytes)", s[1].data);
  ssize_t r;
  size_t got = 0;
  while ((r = recv(peer_a, g_big, sizeof g_big, 0)) > 0) got += (size_t)r;
  CHECK(got < sizeof g_big, "A's peer got what the kernel took (%zu bytes), then the close", got);
  printf("output copy: closed with ENOMEM/QUEUE after %zu bytes; the other connection served on\n", got);
  close(peer_a);
  close(peer_b);
  h_loop_free(loop);
}

#define K 100

static void dirty_list(void) {
  gev_loop *loop = h_loop_new();
  int peers[K];
  seen *s = slow_conns(loop, K, peers);
  tally t = {s, K, 0, 0, 0};
  CHECK(gev_loop_reserve(loop, 4 * K) == 0, "room for every report");
  uint32_t pending_cap = loop->pending.cap;

  fail_after(A_REALLOC, 0);
  for (int i = 0; i < K; i++) h_command(loop, GEV_OP_WRITE_EXT, s[i].id, NULL, sizeof g_big, 0);
  flush_ext(loop);
  fail_never();
  CHECK(g_failures > 0 && loop->dirty.ids == NULL, "the dirty list never grew");
  CHECK(loop->pending.cap == pending_cap, "the pending list did not need to grow");
  scan_pending(loop, &t);
  for (int i = 0; i < K; i++) {
    gev_conn *c = gev_conn_get(loop, s[i].id);
    CHECK(c != NULL && s[i].closes == 0, "connection %d open", i);
    CHECK(c->qbytes > 0 && s[i].queued == 1 && s[i].last_queued == c->qbytes,
          "connection %d: one QUEUED of its %zu queued bytes (%d reports)", i, c->qbytes, s[i].queued);
  }
  pump(loop, &t);
  printf("dirty list: %d QUEUED reports without it\n", K);
  close_all(peers, K);
  free(s);
  h_loop_free(loop);
}

static void pending_list(void) {
  gev_loop *loop = h_loop_new();
  int peers[K];
  seen *s = slow_conns(loop, K, peers);
  tally t = {s, K, 0, 0, 0};

  fail_after(A_REALLOC, 0);
  for (int i = 0; i < K; i++) h_command(loop, GEV_OP_WRITE_EXT, s[i].id, NULL, sizeof g_big, 0);
  flush_ext(loop);
  scan_pending(loop, &t);
  int reported = 0, refused = 0;
  for (int i = 0; i < K; i++) {
    if (s[i].queued == 1 && s[i].closes == 0) reported++;
    if (s[i].queued == 0 && s[i].closes == 1 && s[i].err == ENOMEM && s[i].what == GEV_NOMEM_REPORT) refused++;
  }
  CHECK(reported + refused == K && reported > 0 && refused > 0,
        "each connection was either reported or closed with ENOMEM/REPORT (%d + %d of %d)", reported, refused, K);
  CHECK(loop->live == (uint32_t)reported, "the reported ones stay open");

  /* Still no memory: closing every other connection loses no CLOSE record. */
  for (int i = 0; i < K; i++) h_command(loop, GEV_OP_CLOSE, s[i].id, NULL, 0, 0);
  gev_flush(loop, NULL, 0);
  CHECK(loop->live == 0, "all closed");
  memset(&t, 0, sizeof t);
  for (int i = 0; i < K; i++) {
    s[i].closes = 0;
    s[i].queued = 0;
  }
  t.conns = s;
  t.n = K;
  scan_pending(loop, &t);
  for (int i = 0; i < K; i++) CHECK(s[i].closes == 1, "connection %d: one CLOSE in the pending list", i);
  fail_never();

  for (int i = 0; i < K; i++) s[i].closes = 0;
  pump(loop, &t);
  for (int i = 0; i < K; i++) CHECK(s[i].closes == 1, "connection %d: its CLOSE reached the arena once", i);
  printf("pending list: %d reported, %d closed with ENOMEM/REPORT, %d CLOSE records kept\n", reported, refused, K);
  close_all(peers, K);
  free(s);
  h_loop_free(loop);
}

static void new_connections(void) {
  gev_loop *loop = h_loop_new();
  int mine, peer;
  uint32_t id = 0;
  h_tcp_pair(&mine, &peer, 0, 0);

  /* The pending reserve for a new connection cannot grow (the table has its first 1024 slots). */
  CHECK(add_dup(loop, mine, &id) == 0, "first add");
  fail_after(A_REALLOC, 0);
  int added = 1, rc = 0;
  while (added < 1000 && (rc = add_dup(loop, mine, &id)) == 0) added++;
  /* A dial meets the same refusal: -ENOMEM, its socket closed, no slot taken. */
  struct sockaddr_in to;
  socklen_t to_len = sizeof to;
  CHECK(getsockname(mine, (struct sockaddr *)&to, &to_len) == 0, "getsockname");
  int free_fd = dup(0);
  close(free_fd);
  uint32_t dial_id = 0;
  int dial_rc = gev_conn_connect(loop, (struct sockaddr *)&to, to_len, NULL, 0, 0, &dial_id);
  int after_fd = dup(0);
  close(after_fd);
  fail_never();
  CHECK(rc == -ENOMEM && added > 1 && loop->live == (uint32_t)added,
        "gev_conn_add refused with ENOMEM after %d (rc %d)", added, rc);
  CHECK(dial_rc == -ENOMEM && loop->live == (uint32_t)added && after_fd == free_fd,
        "a dial is refused with ENOMEM and its socket closed (rc %d)", dial_rc);
  CHECK(add_dup(loop, mine, &id) == 0, "adds again once memory is back");
  h_loop_free(loop);
  printf("new connections: pending reserve refused after %d\n", added);

  /* The table cannot grow past its first 1024 slots; a listener reports that and accepts on. */
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit");
  if (rl.rlim_cur < 1200 && rl.rlim_max >= 1200) {
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < 1200) {
    printf("new connections: table growth skipped, RLIMIT_NOFILE is %lu\n", (unsigned long)rl.rlim_cur);
  } else {
    loop = h_loop_new();
    CHECK(gev_loop_reserve(loop, 8192) == 0, "room for the records");
    CHECK(add_dup(loop, mine, &id) == 0, "first add");
    uint32_t cap = loop->conns_cap;
    fail_after(A_REALLOC, 0);
    while ((rc = add_dup(loop, mine, &id)) == 0) {}
    CHECK(rc == -ENOMEM && loop->live == cap, "the table stops at %u with ENOMEM (live %u, rc %d)", cap, loop->live,
          rc);

    int l = gev_listen_tcp(loop, 4, "127.0.0.1", 0, 0, 7);
    CHECK(l >= 0, "listen: %s", strerror(-l));
    uint32_t addr[8];
    struct sockaddr_storage ss;
    CHECK(gev_listener_sockname(loop, (uint32_t)l, addr) == 0, "sockname");
    socklen_t len = gev_addr_decode(addr, &ss);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(client, (struct sockaddr *)&ss, len) == 0, "connect: %s", strerror(errno));
    tally t = {NULL, 0, 0, 0, 0};
    pump_until(loop, &t, &t.accept_errors, 1);
    CHECK(t.accept_errors == 1 && t.accept_errno == ENOMEM && t.opens == 0, "ACCEPT_ERROR ENOMEM (%d, errno %u)",
          t.accept_errors, t.accept_errno);
    char b;
    CHECK(recv(client, &b, 1, 0) <= 0, "the refused client was closed");
    close(client);
    fail_never();
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(client, (struct sockaddr *)&ss, len) == 0, "connect: %s", strerror(errno));
    pump_until(loop, &t, &t.opens, 1);
    CHECK(t.opens == 1 && loop->conns_cap > cap, "accepted once memory is back");
    close(client);
    printf("new connections: table stopped at %u slots, ACCEPT_ERROR ENOMEM, then accepted\n", cap);
    h_loop_free(loop);
  }
  close(mine);
  close(peer);
}

#define R_SLOTS  16
#define R_ROUNDS 600
#define R_EVER   4096

typedef struct {
  int peer;
  uint64_t written;  /* bytes handed to the core, in sequence */
  uint64_t received; /* bytes the peer read, each checked against the sequence */
  int ended;
} stream;

static stream g_st[R_EVER];
static seen g_seen[R_EVER];
static int g_ever;

static uint8_t seq_byte(uint64_t i) { return (uint8_t)((i * 13u + (i >> 9)) % 253u); }

/* Reads what the peer has now, up to `most` bytes (all of it with `most` 0), checking each byte. */
static void peer_read(stream *st, size_t most) {
  static uint8_t buf[65536];
  for (;;) {
    size_t want = most == 0 || most > sizeof buf ? sizeof buf : most;
    ssize_t r = recv(st->peer, buf, want, MSG_DONTWAIT);
    if (r <= 0) return;
    for (ssize_t i = 0; i < r; i++) {
      CHECK(buf[i] == seq_byte(st->received), "peer read byte %llu out of sequence", (unsigned long long)st->received);
      st->received++;
    }
    CHECK(st->received <= st->written, "the peer read no more than was written");
    if (most != 0) return;
  }
}

/* A new connection for a slot of the random run; -1 when the core refused it (ENOMEM). */
static int open_stream(gev_loop *loop, int *refused) {
  int mine, peer;
  CHECK(g_ever < R_EVER, "streams");
  h_tcp_pair(&mine, &peer, 8192 << (rnd() % 4), 8192);
  int i = g_ever;
  memset(&g_st[i], 0, sizeof g_st[i]);
  memset(&g_seen[i], 0, sizeof g_seen[i]);
  int rc = gev_conn_add(loop, mine, 0, 1, &g_seen[i].id);
  if (rc != 0) {
    CHECK(rc == -ENOMEM, "gev_conn_add failed with %s", strerror(-rc));
    close(mine);
    close(peer);
    (*refused)++;
    return -1;
  }
  g_st[i].peer = peer;
  g_ever++;
  return i;
}

static void random_command(gev_loop *loop, int i) {
  static uint8_t chunk[49152];
  uint32_t dice = rnd() % 100;
  if (dice < 60) {
    uint32_t n = 1 + rnd() % sizeof chunk;
    for (uint32_t k = 0; k < n; k++) chunk[k] = seq_byte(g_st[i].written + k);
    h_command(loop, GEV_OP_WRITE, g_seen[i].id, chunk, n, 0);
    if (!g_st[i].ended) g_st[i].written += n;
  } else if (dice < 70) {
    h_command(loop, GEV_OP_WATCH, g_seen[i].id, NULL, 0, 0);
  } else if (dice < 80) {
    h_command(loop, GEV_OP_PAUSE, g_seen[i].id, NULL, 0, rnd() % 2);
  } else if (dice == 80) {
    h_command(loop, GEV_OP_END, g_seen[i].id, NULL, 0, 0);
    g_st[i].ended = 1;
  } else if (dice == 81) {
    h_command(loop, GEV_OP_CLOSE, g_seen[i].id, NULL, 0, rnd() % 2);
  }
}

/*
 * R_SLOTS connections at a time; a closed one is replaced by a new one (which the core may refuse).
 * Allocations fail in bursts: in one round of eight, each fails with probability 1/4.
 */
static void random_failures(void) {
  gev_loop *loop = h_loop_new();
  int slot[R_SLOTS];
  int refused = 0;
  tally t = {g_seen, 0, 0, 0, 0};
  for (int k = 0; k < R_SLOTS; k++) slot[k] = open_stream(loop, &refused);
  fail_after(0, 0);
  for (int round = 0; round < R_ROUNDS; round++) {
    g_fail_kinds = rnd() % 8 == 0 ? A_ALL : 0;
    g_fail_one_in = 4;
    for (int k = 0; k < R_SLOTS; k++) {
      if (slot[k] >= 0 && gev_conn_get(loop, g_seen[slot[k]].id) != NULL) random_command(loop, slot[k]);
    }
    gev_flush(loop, NULL, 0);
    for (int k = 0; k < R_SLOTS; k++) {
      if (slot[k] >= 0) peer_read(&g_st[slot[k]], 1 + rnd() % 65536);
    }
    t.n = g_ever;
    uint32_t n = gev_loop_fill(loop);
    h_each_record(h_arena_records(loop), n, on_record, &t);
    for (int k = 0; k < R_SLOTS; k++) {
      if (slot[k] >= 0 && g_seen[slot[k]].closes == 0) continue;
      if (slot[k] >= 0) peer_read(&g_st[slot[k]], 0);
      slot[k] = open_stream(loop, &refused);
    }
  }
  long failures = g_failures;
  fail_never();
  t.n = g_ever;
  pump(loop, &t);
  while (gev_loop_stop_all(loop) > 0) h_each_record(h_arena_records(loop), loop->in_nrec, on_record, &t);
  int nomem = 0;
  uint64_t bytes = 0;
  for (int i = 0; i < g_ever; i++) {
    CHECK(g_seen[i].closes == 1, "connection %d closed exactly once (%d)", i, g_seen[i].closes);
    CHECK(g_seen[i].err == 0 || g_seen[i].err == ENOMEM, "connection %d closed with %s", i,
          strerror((int)g_seen[i].err));
    if (g_seen[i].err == ENOMEM) {
      CHECK(g_seen[i].what == GEV_NOMEM_QUEUE || g_seen[i].what == GEV_NOMEM_REPORT,
            "an ENOMEM close names what failed");
      nomem++;
    }
    peer_read(&g_st[i], 0);
    bytes += g_st[i].received;
    close(g_st[i].peer);
  }
  CHECK(failures > 0 && nomem > 0, "allocations failed (%ld) and closed connections (%d)", failures, nomem);
  printf("random failures: %ld allocations failed; %d connections, %d closed with ENOMEM, %d refused; "
         "%llu bytes read in order\n",
         failures, g_ever, nomem, refused, (unsigned long long)bytes);
  h_loop_free(loop);
}

/* Counts a PROXY listener's records: OPEN and PROXY_REFUSED (with its reason). */
static void on_proxy_record(const uint32_t *r, void *arg) {
  int *c = arg;
  if (r[0] == GEV_REC_OPEN) c[0]++;
  if (r[0] == GEV_REC_PROXY_REFUSED) {
    c[1]++;
    c[2] = (int)r[2];
  }
}

/* Connects a blocking client to the loopback `port`, writes `msg`, and pumps `loop` until its
 * connection opened or was refused; counts into c[0] (OPEN), c[1] (refused), c[2] (reason). */
static int proxy_client(gev_loop *loop, int port, const char *msg, int *c) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0, "socket");
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s", strerror(errno));
  CHECK(write(fd, msg, strlen(msg)) == (ssize_t)strlen(msg), "write");
  for (int i = 0; i < 50 && c[0] + c[1] == 0; i++) {
    usleep(2000);
    uint32_t n = gev_loop_fill(loop);
    h_each_record(h_arena_records(loop), n, on_proxy_record, c);
  }
  return fd;
}

static void proxy_listener(void) {
  gev_loop *loop = h_loop_new();
  int slot = gev_listen_tcp(loop, 4, "127.0.0.1", 0, GEV_LISTEN_PROXY, 0);
  CHECK(slot >= 0, "listen");
  uint32_t a[GEV_ADDR_U32];
  CHECK(gev_listener_sockname(loop, (uint32_t)slot, a) == 0, "sockname");
  const char *hdr = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
  for (int kind = A_CALLOC; kind >= A_MALLOC; kind >>= 1) {
    int c[3] = {0, 0, 0};
    fail_after(kind, 0);
    int fd = proxy_client(loop, (int)a[1], hdr, c);
    fail_never();
    CHECK(c[0] == 0 && c[1] == 1 && c[2] == GEV_PROXY_E_CLOSED, "refused as closed (open %d, refused %d, %d)", c[0],
          c[1], c[2]);
    char b;
    CHECK(recv(fd, &b, 1, 0) <= 0, "the client sees the close");
    close(fd);
    CHECK(loop->live == 0 && loop->proxy_pending == 0, "nothing left live or pending");
  }
  int c[3] = {0, 0, 0};
  int fd = proxy_client(loop, (int)a[1], hdr, c);
  CHECK(c[0] == 1 && c[1] == 0, "the next connection opens");
  close(fd);
  printf("proxy listener: header state and buffer failures refused as closed\n");
  h_loop_free(loop);
}

int main(void) {
  memset(g_big, 'x', sizeof g_big);
  proxy_listener();
  output_copy();
  dirty_list();
  pending_list();
  new_connections();
  random_failures();
  printf("no abort\n");
  return 0;
}
