// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the model's ivshmem server (ivshmem_server.c) with
 * hostile peers: the input is a program of connects, reads of part or all
 * of the setup, writes of any length, SCM_RIGHTS floods, half-closes,
 * closes, attempts to resize the shared memory, doorbells, interrupts,
 * time passing, and a peer of another uid.  The server runs in process on
 * a real listening unix socket, driven the way main.c drives it (accept,
 * poll on every tick, client events), with the clock in the input, so a
 * run is deterministic.
 *
 * Besides the sanitizers the target checks: the pending set and the client
 * are well formed (every fd open and distinct, eventfds for exactly nvec
 * vectors); a connection becomes the client only once it has read its
 * whole setup; refused connections never get anything; the shared memory
 * can be neither shrunk nor grown nor unsealed; nothing leaks an fd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "ivshmem_server.h"
#include "log.h"

#define SHM_SIZE	(64 * 1024)
#define MAX_PEERS	8
#define MAX_HELD	(3 + 2 * IVSH_MAX_VECTORS)	/* fds of one setup */

struct peer {
	int fd;			/* -1: slot free */
	int held[MAX_HELD];	/* fds received (setup order) */
	unsigned nheld;
	unsigned msgs;		/* messages received */
};

static struct ivsh_server srv;
static struct peer peers[MAX_PEERS];
static uint64_t now;
static int shm_fd, null_fd;
static char dir[64], path[128];
static unsigned base_fds;
static int verbose;		/* FUZZ_VERBOSE=1: the model's log, each step */

/* Input reader: bytes run out as zeros. */
struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint16_t u16(struct in *in)
{
	uint16_t lo = u8(in);

	return (uint16_t)(lo | u8(in) << 8);
}

static void fatal(const char *what)
{
	fprintf(stderr, "fuzz_server: invariant broken: %s\n", what);
	abort();
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		abort();
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

static int is_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

/* ---- invariants ------------------------------------------------------ */

static void check_fd_set(const int *dev, const int *guest, int want, int *seen,
			 unsigned *nseen)
{
	unsigned v;

	for (v = 0; v < IVSH_MAX_VECTORS; v++) {
		int on = want && v < srv.nvec;

		if (on != (dev[v] >= 0) || on != (guest[v] >= 0))
			fatal("eventfds do not match the vector count");
		if (!on)
			continue;
		if (!is_open(dev[v]) || !is_open(guest[v]))
			fatal("a closed eventfd is still referenced");
		seen[(*nseen)++] = dev[v];
		seen[(*nseen)++] = guest[v];
	}
}

static void check_server(void)
{
	int seen[2 + (IVSH_MAX_PENDING + 1) * (1 + 2 * IVSH_MAX_VECTORS)];
	unsigned n = 0, i, j;

	if (srv.npending > IVSH_MAX_PENDING)
		fatal("too many pending connections");
	if (srv.client_fd >= 0 && srv.npending)
		fatal("pending connections next to a client");
	if (srv.listen_fd >= 0)
		seen[n++] = srv.listen_fd;
	if (srv.client_fd >= 0) {
		if (!is_open(srv.client_fd))
			fatal("client fd closed");
		seen[n++] = srv.client_fd;
	}
	check_fd_set(srv.dev_efd, srv.guest_efd, srv.client_fd >= 0, seen, &n);
	for (i = 0; i < IVSH_MAX_PENDING; i++) {
		const struct ivsh_pending *p = &srv.pending[i];
		int live = i < srv.npending;

		if (live != (p->fd >= 0))
			fatal("pending slots out of order");
		if (live) {
			if (!is_open(p->fd))
				fatal("pending fd closed");
			seen[n++] = p->fd;
		}
		check_fd_set(p->dev_efd, p->guest_efd, live, seen, &n);
	}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (seen[i] == seen[j])
				fatal("one fd in two places");
}

/* ---- peers ----------------------------------------------------------- */

static void peer_close(struct peer *p)
{
	unsigned i;

	if (p->fd >= 0)
		close(p->fd);
	for (i = 0; i < p->nheld; i++)
		close(p->held[i]);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

static void peer_connect(struct peer *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	peer_close(p);
	p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->fd < 0)
		abort();
	strcpy(sa.sun_path, path);
	/* a full backlog (EAGAIN) or no server: the peer is just closed */
	if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)))
		peer_close(p);
}

/* Read up to @max setup messages; keep their fds. */
static void peer_read(struct peer *p, unsigned max)
{
	int64_t msg;
	int fd;

	while (p->fd >= 0 && max--) {
		if (ivsh_recv_msg(p->fd, &msg, &fd, 0) != 1)
			return;
		p->msgs++;
		if (fd < 0)
			continue;
		if (p->nheld == MAX_HELD)
			fatal("more fds than one setup holds");
		p->held[p->nheld++] = fd;
	}
}

/* The shared memory, as a peer got it, stays exactly as it is. */
static void peer_resize(struct peer *p, uint16_t len)
{
	struct stat st;

	if (!p->nheld)
		return;
	/* the third message's fd is the shared memory */
	if (fstat(p->held[0], &st) || st.st_size != SHM_SIZE)
		fatal("shared memory is not what the server was given");
	if (!ftruncate(p->held[0], len) || errno != EPERM)
		fatal("a peer resized the shared memory");
	if (!fcntl(p->held[0], F_ADD_SEALS, F_SEAL_WRITE) || errno != EPERM)
		fatal("a peer added a seal");
	if (fallocate(p->held[0], 0, 0, SHM_SIZE + 4096) == 0)
		fatal("a peer grew the shared memory");
}

static void peer_write(struct peer *p, struct in *in)
{
	uint8_t buf[4096];
	unsigned n = u8(in), i;

	if (p->fd < 0)
		return;
	if (n == 255)
		n = sizeof(buf);	/* a big one */
	for (i = 0; i < n && i < sizeof(buf); i++)
		buf[i] = in->n ? u8(in) : (uint8_t)i;
	if (send(p->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
	    errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
		fatal("peer send");
}

/* One message carrying @count fds (all the same open file). */
static void peer_flood(struct peer *p, unsigned count, unsigned times)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * 253)];
	} ctl;
	int64_t msg = IVSH_PROTOCOL_VERSION;
	struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	unsigned i;

	if (p->fd < 0)
		return;
	count = 1 + count % 253;
	memset(&ctl, 0, sizeof(ctl));
	mh.msg_control = ctl.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * count);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * count);
	for (i = 0; i < count; i++)
		memcpy(CMSG_DATA(c) + i * sizeof(int), &null_fd, sizeof(int));
	while (times--)
		if (sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			return;
}

/* Ring doorbell @v of the peer's setup (peer 0's eventfds). */
static void peer_ring(struct peer *p, unsigned v)
{
	uint64_t one = 1;

	if (p->nheld > 1 + v && write(p->held[1 + v], &one, sizeof(one)) < 0)
		fatal("ring");
}

/* ---- the server, driven like main.c ---------------------------------- */

static void client_up(void)
{
	int unread = -1;

	if (srv.client_fd < 0)
		fatal("CLIENT_UP without a client");
	if (ioctl(srv.client_fd, SIOCOUTQ, &unread) || unread)
		fatal("a client that had not read its whole setup");
}

static void poll_server(void)
{
	if (ivsh_server_poll(&srv, now) == IVSH_CLIENT_UP)
		client_up();
}

static void accept_one(int ignore_room)
{
	unsigned pending;
	int client;

	if (!ignore_room && !ivsh_server_can_accept(&srv))
		return;
	poll_server();
	pending = srv.npending;
	client = srv.client_fd;
	if (ivsh_server_accept(&srv, now) == IVSH_ERROR)
		fatal("accept failed");
	if (srv.uid != geteuid() &&
	    (srv.npending != pending || srv.client_fd != client))
		fatal("a refused uid got in");
}

static void client_event(void)
{
	switch (ivsh_server_client_event(&srv)) {
	case IVSH_CLIENT_GONE:
	case IVSH_NOT_QEMU:
		ivsh_server_drop_client(&srv);	/* main exits on GONE */
		break;
	default:
		break;
	}
}

/* ---- setup ----------------------------------------------------------- */

static void remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

static void setup_once(void)
{
	static int done;
	char err[256];
	unsigned i;

	if (done)
		return;
	done = 1;
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	hm_log_file = verbose ? stderr : fopen("/dev/null", "we");
	snprintf(dir, sizeof(dir), "/tmp/fuzz_server.%d", (int)getpid());
	if (mkdir(dir, 0700) && errno != EEXIST)
		abort();
	snprintf(path, sizeof(path), "%s/sock", dir);
	atexit(remove_dir);
	shm_fd = ivsh_shm_create("fuzz-shm", SHM_SIZE, err, sizeof(err));
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (shm_fd < 0 || null_fd < 0)
		abort();
	for (i = 0; i < MAX_PEERS; i++)
		peers[i].fd = -1;
	hm_log("fuzz_server: starting");	/* the log's writer thread, once */
	base_fds = open_fds();
}

/* Listening, in one of the ways it can go (the first input byte). */
static int listen_variant(uint8_t how, unsigned nvec)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ivsh_server other;
	char err[256], longp[200];
	int fd, r;

	strcpy(sa.sun_path, path);
	switch (how % 8) {
	case 1:		/* a stale socket file nobody listens on */
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
			abort();
		close(fd);
		break;
	case 2:		/* a regular file in the way */
		fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
			abort();
		close(fd);
		r = ivsh_server_listen(&srv, path, shm_fd, nvec, err, sizeof(err));
		unlink(path);
		if (!r)
			fatal("listened over a regular file");
		return -1;
	case 3:		/* another server already there */
		if (ivsh_server_listen(&other, path, shm_fd, nvec, err, sizeof(err)))
			return -1;
		if (!ivsh_server_listen(&srv, path, shm_fd, nvec, err, sizeof(err)))
			fatal("two servers on one socket");
		/* the probe it sent is a connection to drop, not QEMU */
		ivsh_server_accept(&other, now);
		ivsh_server_poll(&other, now);
		if (other.client_fd >= 0)
			fatal("the probe became the client");
		ivsh_server_close(&other);
		return -1;
	case 4:		/* a path that does not fit */
		memset(longp, 'x', sizeof(longp) - 1);
		longp[sizeof(longp) - 1] = '\0';
		if (!ivsh_server_listen(&srv, longp, shm_fd, nvec, err, sizeof(err)))
			fatal("listened on a path longer than sun_path");
		return -1;
	case 5:		/* no such directory */
		if (!ivsh_server_listen(&srv, "/nonexistent-fuzz/sock", shm_fd,
					nvec, err, sizeof(err)))
			fatal("listened in a missing directory");
		return -1;
	default:
		break;
	}
	return ivsh_server_listen(&srv, path, shm_fd, nvec, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	uint8_t how = u8(&in);
	unsigned nvec = u8(&in) % (IVSH_MAX_VECTORS + 2), steps = 0, i;
	struct stat st;

	setup_once();
	now = 0;
	if (listen_variant(how, nvec))
		goto out;
	if (nvec < 1 || nvec > IVSH_MAX_VECTORS)
		fatal("listened with a bad vector count");
	if (lstat(path, &st) || (st.st_mode & 0777) != 0600)
		fatal("socket is not 0600");
	srv.handshake_ms = 1 + u16(&in);
	while (in.n && steps++ < 256) {
		uint8_t op = u8(&in), a = u8(&in);
		struct peer *p = &peers[a % MAX_PEERS];

		if (verbose) {
			hm_log_flush(1000);
			fprintf(stderr, "step %u: op %u peer %u (fd %d): %u pending, client %d\n",
				steps, op % 18, a % MAX_PEERS, p->fd, srv.npending,
				srv.client_fd);
			for (i = 0; i < srv.npending; i++)
				fprintf(stderr, "  pending %u: fd %d efd %d..\n", i,
					srv.pending[i].fd, srv.pending[i].dev_efd[0]);
			for (i = 0; i < MAX_PEERS; i++)
				if (peers[i].fd >= 0)
					fprintf(stderr, "  peer %u: fd %d held %u\n", i,
						peers[i].fd, peers[i].nheld);
		}

		switch (op % 18) {
		case 0:
			peer_connect(p);
			break;
		case 1:
			accept_one(0);
			break;
		case 2:
			accept_one(1);
			break;
		case 3:
			poll_server();
			break;
		case 4:
			now += u16(&in);
			poll_server();
			break;
		case 5:
			peer_read(p, 1 + (a >> 3) % 4);
			break;
		case 6:
			peer_read(p, MAX_HELD);
			break;
		case 7:
			peer_write(p, &in);
			break;
		case 8:
			peer_flood(p, u8(&in), 1 + (a >> 3) % 8);
			break;
		case 9:
			if (p->fd >= 0)
				shutdown(p->fd, (a >> 3) % 3);
			break;
		case 10:
			peer_close(p);
			break;
		case 11:
			peer_resize(p, u16(&in));
			break;
		case 12:
			client_event();
			break;
		case 13:
			peer_ring(p, (a >> 3) % IVSH_MAX_VECTORS);
			ivsh_server_doorbell_read(&srv, u8(&in) % (IVSH_MAX_VECTORS + 1));
			break;
		case 14:
			ivsh_server_notify(&srv, u8(&in) % (IVSH_MAX_VECTORS + 1));
			break;
		case 15:
			ivsh_server_drop_client(&srv);
			break;
		case 16:	/* from here on, peers are of another uid */
			srv.uid = geteuid() + 1 + (a & 1);
			break;
		case 17: {	/* a partial message: 1..7 bytes */
			uint8_t part[7] = { 0 };

			if (p->fd >= 0 && send(p->fd, part, 1 + a % 7,
					       MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
			    errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
				fatal("peer send");
			break;
		}
		}
		check_server();
	}
	ivsh_server_close(&srv);
	if (!lstat(path, &st))
		fatal("socket left behind");
out:
	for (i = 0; i < MAX_PEERS; i++)
		peer_close(&peers[i]);
	unlink(path);
	if (open_fds() != base_fds)
		fatal("fd leak");
	return 0;
}
