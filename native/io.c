/*
 * The plain transport: a stream connection's bytes go straight to and from its socket. This is the
 * gev_io pair (internal.h) every connection starts with, with no hook; a layer that transforms the
 * bytes (tls.c) is a sibling file supplying another pair and its hooks.
 */
#include "internal.h"

static ssize_t plain_recv(gev_conn *c, void *buf, size_t len) { return sys_recv(c->fd, buf, len); }

static ssize_t plain_sendv(gev_conn *c, const struct iovec *iov, int iovcnt) { return sys_sendv(c->fd, iov, iovcnt); }

const gev_io gev_io_plain = {plain_recv, plain_sendv, NULL, NULL, NULL, NULL, NULL};
