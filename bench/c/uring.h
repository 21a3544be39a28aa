/*
 * A minimal io_uring ring over the raw syscalls (no liburing), for the load generator: queue
 * SQEs, submit them all and wait for completions in one io_uring_enter, then walk the CQEs.
 *
 *   SQ: sq_local_tail ──(published on enter)──> *sq_tail; the kernel consumes up to it (*sq_head)
 *   CQ: the kernel posts at *cq_tail; we consume from *cq_head
 *
 * Invariants: sq_local_tail - *sq_head <= sq_entries (uring_sqe returns NULL when full);
 * sq_array is the identity map, set once. Single-threaded: one ring, one task.
 *
 * A provided-buffer ring (struct uring_bufs) feeds multishot receives: the kernel picks a free
 * buffer for each completion and names it in the CQE; the caller hands it back with
 * uring_bufs_recycle once the bytes are used, and uring_bufs_publish makes the returns visible.
 */
#ifndef BENCH_URING_H
#define BENCH_URING_H

#include <errno.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct uring {
  int fd;
  unsigned sq_entries;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned sq_local_tail;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  unsigned features;
};

struct uring_bufs {
  struct io_uring_buf_ring *ring;
  unsigned char *base;
  unsigned entries; /* a power of two */
  unsigned size;    /* bytes per buffer */
  uint16_t group;
  uint16_t tail; /* local tail, published by uring_bufs_publish */
};

static int sys_io_uring_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, const void *arg,
                              size_t argsz) {
  return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
}

/* Sets up a ring with sq_entries SQEs and cq_entries CQEs, asking for the cheapest task-work
 * mode the kernel has. Returns 0, or -1 with errno when io_uring cannot be used here. */
static int uring_init(struct uring *r, unsigned sq_entries, unsigned cq_entries) {
  static const unsigned kFlagSets[] = {
      IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
      IORING_SETUP_CQSIZE,
  };
  struct io_uring_params p;
  int fd = -1;
  for (size_t i = 0; i < sizeof kFlagSets / sizeof kFlagSets[0] && fd < 0; i++) {
    memset(&p, 0, sizeof p);
    p.flags = kFlagSets[i];
    p.cq_entries = cq_entries;
    fd = sys_io_uring_setup(sq_entries, &p);
    if (fd < 0 && errno != EINVAL) return -1;
  }
  if (fd < 0) return -1;
  if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_EXT_ARG) ||
      !(p.features & IORING_FEAT_NODROP)) {
    close(fd);
    errno = ENOTSUP;
    return -1;
  }
  size_t sq_bytes = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_bytes = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  size_t ring_bytes = sq_bytes > cq_bytes ? sq_bytes : cq_bytes;
  char *ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (ring == MAP_FAILED) {
    close(fd);
    return -1;
  }
  struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) {
    close(fd);
    return -1;
  }
  r->fd = fd;
  r->sq_entries = p.sq_entries;
  r->sq_head = (unsigned *)(ring + p.sq_off.head);
  r->sq_tail = (unsigned *)(ring + p.sq_off.tail);
  r->sq_mask = (unsigned *)(ring + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)(ring + p.sq_off.array);
  r->sq_local_tail = *r->sq_tail;
  r->cq_head = (unsigned *)(ring + p.cq_off.head);
  r->cq_tail = (unsigned *)(ring + p.cq_off.tail);
  r->cq_mask = (unsigned *)(ring + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(ring + p.cq_off.cqes);
  r->sqes = sqes;
  r->features = p.features;
  for (unsigned i = 0; i < p.sq_entries; i++) r->sq_array[i] = i;
  return 0;
}

/* Submits every queued SQE and waits for at least min_complete CQEs or timeout_ns. Returns 0, or
 * -1 with errno (ETIME on timeout, EINTR; EBUSY/EAGAIN when the kernel wants the CQ drained). */
static int uring_enter(struct uring *r, unsigned min_complete, uint64_t timeout_ns) {
  __atomic_store_n(r->sq_tail, r->sq_local_tail, __ATOMIC_RELEASE);
  unsigned to_submit = r->sq_local_tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
  struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000ull),
                                 .tv_nsec = (long long)(timeout_ns % 1000000000ull)};
  struct io_uring_getevents_arg arg = {.ts = (uint64_t)(uintptr_t)&ts};
  int n = sys_io_uring_enter(r->fd, to_submit, min_complete, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg,
                             sizeof arg);
  return n < 0 ? -1 : 0;
}

/* The next free SQE, zeroed, or NULL when the SQ is full (call uring_enter first). */
static struct io_uring_sqe *uring_sqe(struct uring *r) {
  unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
  if (r->sq_local_tail - head >= r->sq_entries) return NULL;
  struct io_uring_sqe *sqe = &r->sqes[r->sq_local_tail & *r->sq_mask];
  r->sq_local_tail++;
  memset(sqe, 0, sizeof *sqe);
  return sqe;
}

/* Calls fn(ctx, cqe) for every posted CQE, then releases them. Returns how many it saw. */
static unsigned uring_drain(struct uring *r, void (*fn)(void *, const struct io_uring_cqe *), void *ctx) {
  unsigned head = *r->cq_head;
  unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
  unsigned seen = 0;
  for (; head != tail; head++, seen++) {
    fn(ctx, &r->cqes[head & *r->cq_mask]);
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
  }
  return seen;
}

/* Registers `entries` (a power of two, at most 32768) buffers of `size` bytes as buffer group
 * `group`, all free. Returns 0, or -1 with errno when the kernel has no buffer rings. */
static int uring_bufs_init(struct uring *r, struct uring_bufs *b, uint16_t group, unsigned entries, unsigned size) {
  size_t ring_bytes = entries * sizeof(struct io_uring_buf);
  void *ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring == MAP_FAILED) return -1;
  unsigned char *base = malloc((size_t)entries * size);
  if (!base) return -1;
  struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)ring, .ring_entries = entries, .bgid = group};
  if (syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_PBUF_RING, &reg, 1) != 0) {
    munmap(ring, ring_bytes);
    free(base);
    return -1;
  }
  *b = (struct uring_bufs){.ring = ring, .base = base, .entries = entries, .size = size, .group = group, .tail = 0};
  for (unsigned i = 0; i < entries; i++) {
    struct io_uring_buf *buf = &b->ring->bufs[b->tail++ & (entries - 1)];
    buf->addr = (uint64_t)(uintptr_t)(base + (size_t)i * size);
    buf->len = size;
    buf->bid = (uint16_t)i;
  }
  __atomic_store_n(&b->ring->tail, b->tail, __ATOMIC_RELEASE);
  return 0;
}

/* The bytes of buffer `bid`, as named by a CQE's flags >> IORING_CQE_BUFFER_SHIFT. */
static unsigned char *uring_bufs_at(const struct uring_bufs *b, unsigned bid) {
  return b->base + (size_t)bid * b->size;
}

/* Gives buffer `bid` back to the kernel (visible after uring_bufs_publish). */
static void uring_bufs_recycle(struct uring_bufs *b, unsigned bid) {
  struct io_uring_buf *buf = &b->ring->bufs[b->tail++ & (b->entries - 1)];
  buf->addr = (uint64_t)(uintptr_t)uring_bufs_at(b, bid);
  buf->len = b->size;
  buf->bid = (uint16_t)bid;
}

static void uring_bufs_publish(struct uring_bufs *b) { __atomic_store_n(&b->ring->tail, b->tail, __ATOMIC_RELEASE); }

#endif
