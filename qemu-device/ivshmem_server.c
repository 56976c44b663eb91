// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/sockios.h>

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
	/* a failed recvmsg leaves the control buffer as it was: stale */
	if (n <= 0)
		return n == 0 ? 0 : -1;
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

int ivsh_shm_create(const char *name, size_t size, char *err, size_t errlen)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0) {
		hm_seterr(err, errlen, "memfd_create: %s", strerror(errno));
		return -1;
	}
	if (ftruncate(fd, (off_t)size)) {
		hm_seterr(err, errlen, "sizing shared memory: %s", strerror(errno));
		goto fail;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		hm_seterr(err, errlen, "sealing shared memory: %s", strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void init_efds(int *dev_efd, int *guest_efd)
{
	unsigned v;

	for (v = 0; v < IVSH_MAX_VECTORS; v++)
		dev_efd[v] = guest_efd[v] = -1;
}

static void close_efds(int *dev_efd, int *guest_efd)
{
	unsigned v;

	for (v = 0; v < IVSH_MAX_VECTORS; v++) {
		close_fd(&dev_efd[v]);
		close_fd(&guest_efd[v]);
	}
}

static void init_fds(struct ivsh_server *s)
{
	unsigned i;

	s->listen_fd = -1;
	s->client_fd = -1;
	init_efds(s->dev_efd, s->guest_efd);
	for (i = 0; i < IVSH_MAX_PENDING; i++) {
		s->pending[i].fd = -1;
		init_efds(s->pending[i].dev_efd, s->pending[i].guest_efd);
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
	mode_t old_mask;
	int r;

	memset(s, 0, sizeof(*s));
	init_fds(s);
	s->shm_fd = shm_fd;
	s->nvec = nvec;
	s->uid = geteuid();
	s->handshake_ms = IVSH_HANDSHAKE_MS;
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
	/*
	 * The socket file is born 0600: connect(2) needs write permission on
	 * it.  umask is per process, but no other thread creates files.
	 */
	old_mask = umask(S_IXUSR | S_IRWXG | S_IRWXO);
	r = bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	if (r) {
		int e = errno;

		hm_seterr(err, errlen, "cannot bind socket %s: %s%s", path, strerror(e),
		       e == ENOENT ? " (does its directory exist?)" : "");
		close_fd(&s->listen_fd);
		return -1;
	}
	strcpy(s->path, path);
	if (listen(s->listen_fd, 8)) {
		hm_seterr(err, errlen, "listen on %s: %s", path, strerror(errno));
		ivsh_server_close(s);
		return -1;
	}
	return 0;
}

void ivsh_server_drop_client(struct ivsh_server *s)
{
	close_fd(&s->client_fd);
	close_efds(s->dev_efd, s->guest_efd);
}

static int send_setup(const struct ivsh_server *s, const struct ivsh_pending *p)
{
	unsigned v;

	if (ivsh_send_msg(p->fd, IVSH_PROTOCOL_VERSION, -1) ||
	    ivsh_send_msg(p->fd, IVSH_GUEST_PEER, -1) ||
	    ivsh_send_msg(p->fd, -1, s->shm_fd))
		return -1;
	for (v = 0; v < s->nvec; v++)
		if (ivsh_send_msg(p->fd, IVSH_DEV_PEER, p->dev_efd[v]))
			return -1;
	for (v = 0; v < s->nvec; v++)
		if (ivsh_send_msg(p->fd, IVSH_GUEST_PEER, p->guest_efd[v]))
			return -1;
	return 0;
}

/* Close pending peer @i and fill its slot with the last one. */
static void remove_pending(struct ivsh_server *s, unsigned i)
{
	struct ivsh_pending *p = &s->pending[i];

	close_fd(&p->fd);
	close_efds(p->dev_efd, p->guest_efd);
	s->npending--;
	if (i != s->npending) {
		*p = s->pending[s->npending];
		s->pending[s->npending].fd = -1;
		init_efds(s->pending[s->npending].dev_efd,
			  s->pending[s->npending].guest_efd);
	}
}

int ivsh_server_can_accept(const struct ivsh_server *s)
{
	return s->listen_fd >= 0 &&
	       (s->client_fd >= 0 || s->npending < IVSH_MAX_PENDING);
}

int ivsh_server_accept(struct ivsh_server *s, uint64_t now_ms)
{
	struct ivsh_pending *p;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	unsigned v;
	int fd;

	fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return IVSH_NOTHING;
		hm_log("accept: %s", strerror(errno));
		return IVSH_ERROR;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    len != sizeof(cred)) {
		s->refused_uid++;
		hm_log("refusing a connection: no peer credentials (%s)",
		       strerror(errno));
		close(fd);
		return IVSH_NOTHING;
	}
	if (cred.uid != s->uid) {
		s->refused_uid++;
		hm_log("refusing a connection from uid %u (pid %d): only uid %u may connect",
		       (unsigned)cred.uid, (int)cred.pid, (unsigned)s->uid);
		close(fd);
		return IVSH_NOTHING;
	}
	if (s->client_fd >= 0 || s->npending >= IVSH_MAX_PENDING) {
		s->refused++;
		if (s->client_fd >= 0)
			hm_log("refusing a second client (one guest at a time)");
		else
			hm_log("refusing a connection: %u others are in their handshake",
			       s->npending);
		close(fd);
		return IVSH_NOTHING;
	}
	p = &s->pending[s->npending++];
	p->fd = fd;
	p->deadline_ms = now_ms + s->handshake_ms;
	for (v = 0; v < s->nvec; v++) {
		p->dev_efd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		p->guest_efd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->dev_efd[v] < 0 || p->guest_efd[v] < 0) {
			hm_log("eventfd: %s", strerror(errno));
			remove_pending(s, s->npending - 1);
			return IVSH_NOTHING;
		}
	}
	if (send_setup(s, p)) {
		int err = errno;
		char byte;

		/*
		 * A peer that wrote and went away before we were done sending
		 * is a writer first: what it sent is still ours to read.
		 */
		if (recv(p->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
			s->not_qemu++;
			hm_log("dropped a connection that was not QEMU (it wrote to the socket)");
		} else {
			s->closed_early++;
			hm_log("a connection closed before completing its handshake (sending the setup: %s)",
			       strerror(err));
		}
		remove_pending(s, s->npending - 1);
		return IVSH_NOTHING;
	}
	hm_dbg("connection from pid %d: setup sent, waiting for it to be read",
	       (int)cred.pid);
	return IVSH_NOTHING;
}

enum { PENDING_KEEP, PENDING_DROP, PENDING_DONE };

/*
 * Has pending peer @p completed the handshake (read every setup message,
 * still connected), given up, or run out of time?
 */
static int check_pending(struct ivsh_server *s, struct ivsh_pending *p,
			 uint64_t now_ms)
{
	char byte;
	ssize_t n;
	int unread;

	n = recv(p->fd, &byte, 1, MSG_DONTWAIT);
	if (n > 0) {
		s->not_qemu++;
		hm_log("dropped a connection that was not QEMU (it wrote to the socket)");
		return PENDING_DROP;
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		s->closed_early++;
		hm_log("a connection closed before completing its handshake");
		return PENDING_DROP;
	}
	/* bytes sent and not yet read by the peer */
	if (ioctl(p->fd, SIOCOUTQ, &unread) == 0 && unread == 0)
		return PENDING_DONE;
	if (now_ms >= p->deadline_ms) {
		s->timed_out++;
		hm_log("dropped a connection that did not read its setup within %u ms",
		       s->handshake_ms);
		return PENDING_DROP;
	}
	return PENDING_KEEP;
}

/* Pending peer @i is QEMU: its fds become the client's, the others go. */
static void promote(struct ivsh_server *s, unsigned i)
{
	struct ivsh_pending *p = &s->pending[i];
	unsigned others = s->npending - 1;

	ivsh_server_drop_client(s);
	s->client_fd = p->fd;
	memcpy(s->dev_efd, p->dev_efd, sizeof(s->dev_efd));
	memcpy(s->guest_efd, p->guest_efd, sizeof(s->guest_efd));
	p->fd = -1;
	init_efds(p->dev_efd, p->guest_efd);
	remove_pending(s, i);
	while (s->npending) {
		s->refused++;
		remove_pending(s, s->npending - 1);
	}
	hm_log("client connected (peer %d, %u vectors)%s", IVSH_GUEST_PEER,
	       s->nvec, others ? "; other connections in their handshake closed" : "");
}

int ivsh_server_poll(struct ivsh_server *s, uint64_t now_ms)
{
	unsigned i = 0;

	while (i < s->npending) {
		switch (check_pending(s, &s->pending[i], now_ms)) {
		case PENDING_DONE:
			promote(s, i);
			return IVSH_CLIENT_UP;
		case PENDING_DROP:
			remove_pending(s, i);
			break;
		default:
			i++;
		}
	}
	return IVSH_NOTHING;
}

int ivsh_server_client_event(struct ivsh_server *s)
{
	char buf[64];
	ssize_t n;

	if (s->client_fd < 0)
		return IVSH_NOTHING;
	/* One read: a peer that writes without end must not keep us here. */
	n = recv(s->client_fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0) {
		s->not_qemu++;
		return IVSH_NOT_QEMU;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return IVSH_NOTHING;
	return IVSH_CLIENT_GONE;
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
	while (s->npending)
		remove_pending(s, s->npending - 1);
	close_fd(&s->listen_fd);
	if (s->path[0]) {
		unlink(s->path);
		s->path[0] = '\0';
	}
}
