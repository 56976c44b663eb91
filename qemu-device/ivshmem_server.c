// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ivshmem_server.h"
#include "log.h"


int ivsh_send_msg(int sock, int64_t msg, int fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	/* little-endian on the wire; the host is little-endian (hmdev.c) */
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(msg) ? 0 : -1;
}

int ivsh_recv_msg(int sock, int64_t *msg, int *fd, int timeout_ms)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(*msg) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	ssize_t n;
	int r;

	*fd = -1;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int))) {
			if (*fd >= 0)
				close(*fd);
			memcpy(fd, CMSG_DATA(c), sizeof(int));
		}
	}
	if (n != (ssize_t)sizeof(*msg)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -1;
	}
	return 1;
}

static void init_fds(struct ivsh_server *s)
{
	unsigned v;

	s->listen_fd = -1;
	s->client_fd = -1;
	for (v = 0; v < IVSH_MAX_VECTORS; v++) {
		s->dev_efd[v] = -1;
		s->guest_efd[v] = -1;
	}
}

/* Is something accepting on @path?  1 yes, 0 no (stale), -1 unknown. */
static int socket_alive(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -1;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (r == 0) {
		/* tell the live server we are not QEMU, so it keeps running */
		int64_t magic = IVSH_PROBE_MAGIC;

		if (send(fd, &magic, sizeof(magic), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			hm_dbg("probe send: %s", strerror(errno));
		r = 1;
	}
	else if (errno == ECONNREFUSED)
		r = 0;
	else
		r = -1;
	close(fd);
	return r;
}

int ivsh_server_listen(struct ivsh_server *s, const char *path, int shm_fd,
		       unsigned nvec, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	memset(s, 0, sizeof(*s));
	init_fds(s);
	s->shm_fd = shm_fd;
	s->nvec = nvec;
	if (nvec < 1 || nvec > IVSH_MAX_VECTORS) {
		hm_seterr(err, errlen, "bad vector count %u", nvec);
		return -1;
	}
	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
		hm_seterr(err, errlen, "socket path %s is empty or longer than %zu bytes",
		       path ? path : "", sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, path);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			hm_seterr(err, errlen, "%s exists and is not a socket", path);
			return -1;
		}
		switch (socket_alive(&sa)) {
		case 1:
			hm_seterr(err, errlen, "%s: another server is listening there", path);
			return -1;
		case 0:
			if (unlink(path)) {
				hm_seterr(err, errlen, "cannot remove stale socket %s: %s",
				       path, strerror(errno));
				return -1;
			}
			hm_log("removed stale socket %s", path);
			break;
		default:
			hm_seterr(err, errlen, "%s exists and cannot be checked: %s",
			       path, strerror(errno));
			return -1;
		}
	}

	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0) {
		hm_seterr(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		hm_seterr(err, errlen, "cannot bind socket %s: %s%s", path, strerror(e),
		       e == ENOENT ? " (does its directory exist?)" : "");
		close(s->listen_fd);
		s->listen_fd = -1;
		return -1;
	}
	strcpy(s->path, path);
	if (listen(s->listen_fd, 4)) {
		hm_seterr(err, errlen, "listen on %s: %s", path, strerror(errno));
		ivsh_server_close(s);
		return -1;
	}
	return 0;
}

static void close_efds(struct ivsh_server *s)
{
	unsigned v;

	for (v = 0; v < IVSH_MAX_VECTORS; v++) {
		if (s->dev_efd[v] >= 0)
			close(s->dev_efd[v]);
		if (s->guest_efd[v] >= 0)
			close(s->guest_efd[v]);
		s->dev_efd[v] = s->guest_efd[v] = -1;
	}
}

void ivsh_server_drop_client(struct ivsh_server *s)
{
	if (s->client_fd >= 0)
		close(s->client_fd);
	s->client_fd = -1;
	close_efds(s);
}

static int send_setup(struct ivsh_server *s, int fd)
{
	unsigned v;

	if (ivsh_send_msg(fd, IVSH_PROTOCOL_VERSION, -1) ||
	    ivsh_send_msg(fd, IVSH_GUEST_PEER, -1) ||
	    ivsh_send_msg(fd, -1, s->shm_fd))
		return -1;
	for (v = 0; v < s->nvec; v++)
		if (ivsh_send_msg(fd, IVSH_DEV_PEER, s->dev_efd[v]))
			return -1;
	for (v = 0; v < s->nvec; v++)
		if (ivsh_send_msg(fd, IVSH_GUEST_PEER, s->guest_efd[v]))
			return -1;
	return 0;
}

/*
 * Drain what the client sent.  IVSH_NOTHING: connected, nothing sent;
 * IVSH_CLIENT_GONE: EOF/error without data; IVSH_NOT_QEMU: it sent data.
 */
static int classify(struct ivsh_server *s, int fd)
{
	char buf[256];
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			s->got_data = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (s->got_data)
			return IVSH_NOT_QEMU;
		if (n < 0 && errno == EAGAIN)
			return IVSH_NOTHING;
		return IVSH_CLIENT_GONE;
	}
}

int ivsh_server_accept(struct ivsh_server *s)
{
	unsigned v;
	int fd, r;

	fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return IVSH_NOTHING;
		hm_log("accept: %s", strerror(errno));
		return IVSH_ERROR;
	}
	if (s->client_fd >= 0) {
		s->refused++;
		hm_log("refusing a second client (one guest at a time)");
		close(fd);
		return IVSH_NOTHING;
	}
	s->client_fd = fd;
	s->got_data = 0;
	for (v = 0; v < s->nvec; v++) {
		s->dev_efd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		s->guest_efd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->dev_efd[v] < 0 || s->guest_efd[v] < 0) {
			hm_log("eventfd: %s", strerror(errno));
			ivsh_server_drop_client(s);
			return IVSH_NOTHING;
		}
	}
	if (send_setup(s, fd)) {
		int e = errno;

		r = classify(s, fd);
		if (r == IVSH_NOTHING) {
			hm_log("sending the setup to the client failed: %s",
			       strerror(e));
			r = IVSH_CLIENT_GONE;
		}
		ivsh_server_drop_client(s);
		return r;
	}
	hm_log("client connected (peer %d, %u vectors)", IVSH_GUEST_PEER, s->nvec);
	return IVSH_CLIENT_UP;
}

int ivsh_server_client_event(struct ivsh_server *s)
{
	if (s->client_fd < 0)
		return IVSH_NOTHING;
	return classify(s, s->client_fd);
}

uint64_t ivsh_server_doorbell_read(struct ivsh_server *s, unsigned v)
{
	uint64_t cnt = 0;

	if (v >= s->nvec || s->dev_efd[v] < 0)
		return 0;
	if (read(s->dev_efd[v], &cnt, sizeof(cnt)) != (ssize_t)sizeof(cnt))
		return 0;
	return cnt;
}

int ivsh_server_notify(struct ivsh_server *s, unsigned v)
{
	uint64_t one = 1;

	if (v >= s->nvec || s->guest_efd[v] < 0)
		return -1;
	/* EAGAIN only if the counter would overflow: the guest has it pending */
	if (write(s->guest_efd[v], &one, sizeof(one)) != (ssize_t)sizeof(one) &&
	    errno != EAGAIN)
		return -1;
	return 0;
}

void ivsh_server_close(struct ivsh_server *s)
{
	ivsh_server_drop_client(s);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	if (s->path[0]) {
		unlink(s->path);
		s->path[0] = '\0';
	}
}
