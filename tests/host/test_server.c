// SPDX-License-Identifier: MIT
/*
 * End to end without QEMU: run the real hmirror-dev binary (HMDEV_BIN) on a
 * temp socket and RAM file, and play QEMU's ivshmem-doorbell client.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hmirror_dev.h"
#include "ivshmem_server.h"
#include "kselftest_harness.h"

#ifndef HMDEV_BIN_DEFAULT
#define HMDEV_BIN_DEFAULT "hmirror-dev"
#endif
#define READY_FD	9
#define NVEC		HMIRROR_NUM_VECTORS
#define TMO_MS		5000

static const char *hmdev_bin(void)
{
	const char *b = getenv("HMDEV_BIN");

	return b && *b ? b : HMDEV_BIN_DEFAULT;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Spawn hmirror-dev with @args (NULL terminated); stderr goes to @log. */
static pid_t spawn(const char *log, const char *const *args, int *ready_rd)
{
	const char *argv[32];
	int p[2], n = 0, fd;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	argv[n++] = hmdev_bin();
	while (*args && n < 30)
		argv[n++] = *args++;
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		dup2(p[1], READY_FD);	/* dup2 clears close-on-exec */
		execv(argv[0], (char **)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if (ready_rd)
		*ready_rd = p[0];
	else
		close(p[0]);
	return pid;
}

/* Exit status of @pid, or -1 if it did not exit within @ms (then killed). */
static int wait_exit(pid_t pid, unsigned ms)
{
	int st;
	unsigned t;

	for (t = 0; t < ms; t += 5) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0)
			return -1;
		sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static void read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/*
 * Does the log at @path hold @needle within @ms?  The model writes its log
 * from a writer thread: a line logged is in the file a little later.
 */
static bool log_has(const char *path, const char *needle, unsigned ms,
		    char *buf, size_t len)
{
	unsigned t;

	for (t = 0;; t += 5) {
		read_file(path, buf, len);
		if (strstr(buf, needle))
			return true;
		if (t >= ms)
			return false;
		sleep_ms(5);
	}
}

static int wait_efd(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, ms) != 1)
		return -1;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	return 0;
}

static int ring(int fd)
{
	uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
}

static int fd_is(int fd, const char *what)
{
	char link[64], target[256];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	return strstr(target, what) != NULL;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct client {
	int sock;
	int shm_fd;
	int dev_efd[NVEC];	/* peer 0: we ring these */
	int own_efd[NVEC];	/* peer 1: the device signals these */
	uint8_t *bar;
	size_t bar_size;
	struct hmirror_header hdr;
	uint32_t sq_tail[HMIRROR_MAX_QUEUES];
};

FIXTURE(srv) {
	char dir[64];
	char sock[128], ram[128], log[128], other[128];
	pid_t pid;
	int ready;
	struct client c;
};

FIXTURE_SETUP(srv)
{
	int fd, i;

	self->pid = -1;
	self->ready = -1;
	self->c.sock = self->c.shm_fd = -1;
	for (i = 0; i < NVEC; i++)
		self->c.dev_efd[i] = self->c.own_efd[i] = -1;
	strcpy(self->dir, "/tmp/hmsrv.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
	snprintf(self->ram, sizeof(self->ram), "%s/ram", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/log", self->dir);
	snprintf(self->other, sizeof(self->other), "%s/other", self->dir);
	fd = open(self->ram, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 4 << 20));
	close(fd);
}

FIXTURE_TEARDOWN(srv)
{
	char p[160];
	int i;

	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	if (self->c.bar)
		munmap(self->c.bar, self->c.bar_size);
	for (i = 0; i < NVEC; i++) {
		if (self->c.dev_efd[i] >= 0)
			close(self->c.dev_efd[i]);
		if (self->c.own_efd[i] >= 0)
			close(self->c.own_efd[i]);
	}
	if (self->c.sock >= 0)
		close(self->c.sock);
	if (self->c.shm_fd >= 0)
		close(self->c.shm_fd);
	unlink(self->sock);
	unlink(self->ram);
	unlink(self->log);
	unlink(self->other);
	snprintf(p, sizeof(p), "%s/log2", self->dir);
	unlink(p);
	rmdir(self->dir);
}

/* Start the server with extra args; ASSERTs it reports ready. */
static void start(struct __test_metadata *_metadata, FIXTURE_DATA(srv) *self,
		  const char *const *extra)
{
	char ready_fd[16], buf[16] = "";
	const char *args[32] = {
		"--socket", self->sock, "--ram", self->ram, "--ready-fd", ready_fd,
	};
	struct pollfd p;
	unsigned n = 6;
	ssize_t r;

	snprintf(ready_fd, sizeof(ready_fd), "%d", READY_FD);
	while (extra && *extra && n < 30)
		args[n++] = *extra++;
	args[n] = NULL;
	self->pid = spawn(self->log, args, &self->ready);
	ASSERT_LT(0, self->pid);
	p.fd = self->ready;
	p.events = POLLIN;
	ASSERT_EQ(1, poll(&p, 1, 10000)) TH_LOG("no ready message");
	r = read(self->ready, buf, sizeof(buf) - 1);
	if (r != 6) {
		char log[2048];

		read_file(self->log, log, sizeof(log));
		TH_LOG("server log: %s", log);
	}
	ASSERT_EQ(6, r);
	EXPECT_STREQ("ready\n", buf);
	/* the fd was closed after the message */
	EXPECT_EQ(0, read(self->ready, buf, sizeof(buf)));
	close(self->ready);
	self->ready = -1;
}

/* Connect and check the whole setup sequence, exactly. */
static void handshake(struct __test_metadata *_metadata, FIXTURE_DATA(srv) *self)
{
	struct client *c = &self->c;
	struct stat st;
	int64_t msg;
	int fd, v;

	c->sock = connect_to(self->sock);
	ASSERT_LE(0, c->sock);
	ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
	EXPECT_EQ(0, msg);		/* protocol version */
	ASSERT_EQ(-1, fd);
	ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
	EXPECT_EQ(1, msg);		/* our peer id */
	ASSERT_EQ(-1, fd);
	ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
	EXPECT_EQ(-1, msg);		/* shared memory */
	ASSERT_LE(0, fd);
	c->shm_fd = fd;
	EXPECT_TRUE(fd_is(fd, "memfd:"));
	for (v = 0; v < NVEC; v++) {
		ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
		EXPECT_EQ(0, msg) TH_LOG("peer-0 vector %d", v);
		ASSERT_LE(0, fd);
		c->dev_efd[v] = fd;
		EXPECT_TRUE(fd_is(fd, "eventfd"));
	}
	for (v = 0; v < NVEC; v++) {
		ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
		EXPECT_EQ(1, msg) TH_LOG("peer-1 vector %d", v);
		ASSERT_LE(0, fd);
		c->own_efd[v] = fd;
		EXPECT_TRUE(fd_is(fd, "eventfd"));
	}
	/* nothing more */
	EXPECT_EQ(-1, ivsh_recv_msg(c->sock, &msg, &fd, 100));

	ASSERT_EQ(0, fstat(c->shm_fd, &st));
	c->bar_size = (size_t)st.st_size;
	EXPECT_EQ(1u << 20, c->bar_size);
	c->bar = mmap(NULL, c->bar_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->shm_fd, 0);
	ASSERT_NE(MAP_FAILED, c->bar);
	memcpy(&c->hdr, c->bar, sizeof(c->hdr));
	EXPECT_EQ(HMIRROR_MAGIC, c->hdr.magic);
	EXPECT_EQ(HMIRROR_VERSION, c->hdr.version);
	EXPECT_EQ(c->bar_size, c->hdr.bar_size);
	EXPECT_LE(hmirror_layout_end(&c->hdr), c->bar_size);
}

static struct hmirror_regs *regs(struct client *c)
{
	return (struct hmirror_regs *)(c->bar + c->hdr.regs_off);
}

static struct hmirror_queue_regs *qregs(struct client *c, unsigned q)
{
	return (struct hmirror_queue_regs *)(c->bar + c->hdr.queues_off) + q;
}

/* The driver's probe: bus mastering on and a reset, one CTRL doorbell. */
static void reset(struct __test_metadata *_metadata, struct client *c)
{
	struct hmirror_regs *r = regs(c);
	uint32_t gen = __atomic_load_n(&r->dev_reset_ack, __ATOMIC_ACQUIRE) + 1;
	uint32_t cgen = __atomic_load_n(&r->dev_ctrl_ack, __ATOMIC_ACQUIRE) + 1;
	unsigned t;

	__atomic_store_n(&r->drv_ctrl, HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER,
			 __ATOMIC_RELEASE);
	__atomic_store_n(&r->drv_ctrl_gen, cgen, __ATOMIC_RELEASE);
	__atomic_store_n(&r->drv_reset_gen, gen, __ATOMIC_RELEASE);
	ASSERT_EQ(0, ring(c->dev_efd[HMIRROR_VEC_CTRL]));
	ASSERT_EQ(0, wait_efd(c->own_efd[HMIRROR_VEC_CTRL], TMO_MS)) TH_LOG("no CTRL irq");
	/*
	 * The irq may come between the two acknowledgements (an engine
	 * thread raises what is pending): poll both, as the driver does.
	 */
	for (t = 0; t < TMO_MS &&
	     (__atomic_load_n(&r->dev_reset_ack, __ATOMIC_ACQUIRE) != gen ||
	      __atomic_load_n(&r->dev_ctrl_ack, __ATOMIC_ACQUIRE) != cgen); t++)
		sleep_ms(1);
	EXPECT_EQ(gen, __atomic_load_n(&r->dev_reset_ack, __ATOMIC_ACQUIRE));
	EXPECT_EQ(cgen, __atomic_load_n(&r->dev_ctrl_ack, __ATOMIC_ACQUIRE));
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED, r->dev_status);
}

static void nops(struct __test_metadata *_metadata, struct client *c,
		 unsigned q, unsigned n, uint64_t seq0)
{
	struct hmirror_queue_regs *qr = qregs(c, q);
	struct hmirror_cmd *sq = (void *)(c->bar + hmirror_sq_off(&c->hdr, q));
	struct hmirror_cpl *cq = (void *)(c->bar + hmirror_cq_off(&c->hdr, q));
	uint32_t first = c->sq_tail[q], mask = c->hdr.sq_entries - 1, i;
	unsigned t;

	for (i = 0; i < n; i++) {
		struct hmirror_cmd cmd = { .opcode = HMIRROR_OP_NOP, .seqno = seq0 + i,
					   .tag = (uint16_t)((first + i) & mask) };

		sq[(first + i) & mask] = cmd;
	}
	c->sq_tail[q] = first + n;
	__atomic_store_n(&qr->sq_tail, c->sq_tail[q], __ATOMIC_RELEASE);
	ASSERT_EQ(0, ring(c->dev_efd[HMIRROR_VEC_CQ]));
	ASSERT_EQ(0, wait_efd(c->own_efd[HMIRROR_VEC_CQ], TMO_MS)) TH_LOG("no CQ irq");
	/* the irq comes after the batch; all n are in one batch or more */
	for (t = 0; t < TMO_MS &&
	     __atomic_load_n(&qr->cq_tail, __ATOMIC_ACQUIRE) != first + n; t++)
		sleep_ms(1);
	ASSERT_EQ(first + n, __atomic_load_n(&qr->cq_tail, __ATOMIC_ACQUIRE));
	EXPECT_EQ(first + n, qr->sq_head);
	EXPECT_EQ(seq0 + n - 1, qr->completed_seqno);
	for (i = 0; i < n; i++) {
		struct hmirror_cpl *cpl = &cq[(first + i) & (c->hdr.cq_entries - 1)];

		EXPECT_EQ(seq0 + i, cpl->seqno);
		EXPECT_EQ((first + i) & mask, cpl->tag);
		EXPECT_EQ(HMIRROR_ST_OK, cpl->status);
		EXPECT_EQ(q, cpl->queue);
		EXPECT_LE(cpl->t_submit, cpl->t_done);
	}
	__atomic_store_n(&qr->cq_head, first + n, __ATOMIC_RELEASE);
}

TEST_F(srv, protocol_reset_and_nops)
{
	struct hmirror_regs *r;
	unsigned t;

	start(_metadata, self, NULL);
	handshake(_metadata, self);
	r = regs(&self->c);
	EXPECT_EQ(3, self->c.hdr.num_queues);
	EXPECT_EQ(48, self->c.hdr.va_bits);
	/* 64 MiB of device memory by default */
	EXPECT_EQ(0xff, self->c.hdr.features);
	EXPECT_EQ(64 * 256, self->c.hdr.vram_pages);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_DMA_OFF, r->dev_status);
	reset(_metadata, &self->c);
	nops(_metadata, &self->c, 1, 5, 1000);
	nops(_metadata, &self->c, 0, 3, 2000);
	nops(_metadata, &self->c, 2, 200, 3000);
	nops(_metadata, &self->c, 1, 256, 4000);	/* a full ring */
	EXPECT_EQ(5 + 3 + 200 + 256, r->cnt_commands);
	EXPECT_EQ(0, r->err_count);
	EXPECT_LE(4, r->irq_sent[HMIRROR_VEC_CQ]);
	/*
	 * An engine thread may complete commands before the event loop has
	 * read their doorbell (a heartbeat kicked it): wait for the count.
	 */
	for (t = 0; t < TMO_MS && __atomic_load_n(&r->doorbells_seen,
						  __ATOMIC_ACQUIRE) < 4; t++)
		sleep_ms(1);
	EXPECT_LE(4, r->doorbells_seen);
}

TEST_F(srv, options_reach_the_header)
{
	const char *const extra[] = {
		"--engines", "5", "--sq-entries", "64", "--cq-entries", "1024",
		"--fault-entries", "32", "--max-contexts", "100",
		"--tlb-entries", "4096", "--lowmem", "1M", "--va-bits", "57",
		"--vram-mb", "4096", "-v", NULL,
	};

	start(_metadata, self, extra);
	handshake(_metadata, self);
	EXPECT_EQ(6, self->c.hdr.num_queues);
	EXPECT_EQ(64, self->c.hdr.sq_entries);
	EXPECT_EQ(1024, self->c.hdr.cq_entries);
	EXPECT_EQ(32, self->c.hdr.fault_entries);
	EXPECT_EQ(100, self->c.hdr.max_contexts);
	EXPECT_EQ(4096, self->c.hdr.tlb_entries);
	EXPECT_EQ(57, self->c.hdr.va_bits);
	EXPECT_TRUE(self->c.hdr.features & HMIRROR_FEAT_VRAM);
	EXPECT_EQ(4096u * 256, self->c.hdr.vram_pages);
	reset(_metadata, &self->c);
	nops(_metadata, &self->c, 5, 60, 1);
	nops(_metadata, &self->c, 5, 64, 100);	/* a full ring, wrapping */
}

TEST_F(srv, no_device_memory)
{
	const char *const extra[] = { "--vram-mb", "0", NULL };

	start(_metadata, self, extra);
	handshake(_metadata, self);
	EXPECT_EQ(0xbf, self->c.hdr.features);
	EXPECT_EQ(0, self->c.hdr.vram_pages);
	reset(_metadata, &self->c);
	nops(_metadata, &self->c, 1, 5, 1);
}

TEST_F(srv, heartbeat)
{
	uint64_t hb, t;

	start(_metadata, self, NULL);
	handshake(_metadata, self);
	hb = __atomic_load_n(&regs(&self->c)->heartbeat, __ATOMIC_ACQUIRE);
	t = regs(&self->c)->dev_time_ns;
	sleep_ms(230);
	EXPECT_LE(hb + 2, __atomic_load_n(&regs(&self->c)->heartbeat, __ATOMIC_ACQUIRE));
	EXPECT_LT(t, regs(&self->c)->dev_time_ns);
}

TEST_F(srv, second_client_refused)
{
	int64_t msg;
	int fd, s2;
	char log[4096];

	start(_metadata, self, NULL);
	handshake(_metadata, self);
	s2 = connect_to(self->sock);
	ASSERT_LE(0, s2);
	/* closed at once, without a single message */
	EXPECT_EQ(0, ivsh_recv_msg(s2, &msg, &fd, TMO_MS));
	close(s2);
	/* the first client is unaffected */
	reset(_metadata, &self->c);
	nops(_metadata, &self->c, 1, 4, 1);
	EXPECT_TRUE(log_has(self->log, "hmirror-dev: refusing a second client",
			    TMO_MS, log, sizeof(log))) TH_LOG("log: %s", log);
}

TEST_F(srv, client_eof_exits_0)
{
	struct stat st;

	start(_metadata, self, NULL);
	handshake(_metadata, self);
	reset(_metadata, &self->c);
	close(self->c.sock);
	self->c.sock = -1;
	EXPECT_EQ(0, wait_exit(self->pid, TMO_MS));
	self->pid = -1;
	EXPECT_EQ(-1, stat(self->sock, &st));
	EXPECT_EQ(ENOENT, errno);
}

/* QEMU never writes: a connection that does is dropped, the server stays. */
TEST_F(srv, writer_is_not_qemu)
{
	int64_t msg = 1234, got;
	char log[4096];
	int s, fd, i;

	start(_metadata, self, NULL);
	for (i = 0; i < 2; i++) {
		s = connect_to(self->sock);
		ASSERT_LE(0, s);
		ASSERT_EQ(8, send(s, &msg, sizeof(msg), MSG_NOSIGNAL));
		if (i) {	/* read the setup first, then go */
			EXPECT_EQ(1, ivsh_recv_msg(s, &got, &fd, TMO_MS));
			EXPECT_EQ(0, got);
		}
		close(s);
	}
	sleep_ms(100);
	EXPECT_EQ(0, waitpid(self->pid, NULL, WNOHANG));
	handshake(_metadata, self);
	reset(_metadata, &self->c);
	nops(_metadata, &self->c, 2, 3, 9);
	EXPECT_TRUE(log_has(self->log, "not QEMU", TMO_MS, log, sizeof(log)))
		TH_LOG("log: %s", log);
}

/*
 * A peer that writes and closes before the server has sent its setup is a
 * writer all the same (the server then fails to send, but what the peer
 * wrote is there to read).  Four silent peers fill the pending slots, so
 * the writer waits in the listen backlog until it has written and closed.
 */
TEST_F(srv, writer_gone_before_its_setup_is_not_qemu)
{
	int64_t msg = 1234;
	int silent[4], s, i;
	struct pollfd p;
	char log[4096];

	start(_metadata, self, NULL);
	for (i = 0; i < 4; i++) {
		silent[i] = connect_to(self->sock);
		ASSERT_LE(0, silent[i]);
		/* accepted: its setup is there (and it reads none of it) */
		p.fd = silent[i];
		p.events = POLLIN;
		ASSERT_EQ(1, poll(&p, 1, TMO_MS));
	}
	s = connect_to(self->sock);
	ASSERT_LE(0, s);
	ASSERT_EQ(8, send(s, &msg, sizeof(msg), MSG_NOSIGNAL));
	close(s);
	close(silent[0]);	/* a slot frees: the writer is accepted */
	EXPECT_TRUE(log_has(self->log, "not QEMU", TMO_MS, log, sizeof(log)))
		TH_LOG("log: %s", log);
	EXPECT_EQ(NULL, strstr(log, "sending the setup"));
	EXPECT_EQ(0, waitpid(self->pid, NULL, WNOHANG));
	for (i = 1; i < 4; i++)
		close(silent[i]);
}

TEST_F(srv, sigterm_sets_gone_and_exits_0)
{
	struct hmirror_regs *r;
	struct stat st;
	char log[4096];

	start(_metadata, self, NULL);
	handshake(_metadata, self);
	reset(_metadata, &self->c);
	r = regs(&self->c);
	ASSERT_EQ(0, kill(self->pid, SIGTERM));
	EXPECT_EQ(0, wait_efd(self->c.own_efd[HMIRROR_VEC_CTRL], TMO_MS));
	EXPECT_EQ(0, wait_exit(self->pid, TMO_MS));
	self->pid = -1;
	EXPECT_TRUE(r->dev_status & HMIRROR_DEV_GONE);
	EXPECT_FALSE(r->dev_status & HMIRROR_DEV_ALIVE);
	EXPECT_FALSE(r->dev_status & HMIRROR_DEV_ENABLED);
	EXPECT_EQ(-1, stat(self->sock, &st));
	read_file(self->log, log, sizeof(log));
	EXPECT_NE(NULL, strstr(log, "signal 15"));
}

TEST_F(srv, sigint_without_client_exits_0)
{
	struct stat st;

	start(_metadata, self, NULL);
	ASSERT_EQ(0, stat(self->sock, &st));
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	ASSERT_EQ(0, kill(self->pid, SIGINT));
	EXPECT_EQ(0, wait_exit(self->pid, TMO_MS));
	self->pid = -1;
	EXPECT_EQ(-1, stat(self->sock, &st));
}

TEST_F(srv, stale_socket_replaced)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, self->sock);
	ASSERT_EQ(0, bind(s, (struct sockaddr *)&sa, sizeof(sa)));
	close(s);	/* leaves a socket file nobody listens on */
	start(_metadata, self, NULL);
	handshake(_metadata, self);
}

TEST_F(srv, log_file)
{
	char log2[160], buf[4096];
	const char *extra[] = { "--log", log2, NULL };

	snprintf(log2, sizeof(log2), "%s/log2", self->dir);
	start(_metadata, self, extra);
	read_file(log2, buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "hmirror-dev: listening on"));
	read_file(self->log, buf, sizeof(buf));
	EXPECT_EQ(NULL, strstr(buf, "listening"));
}

/* Run hmirror-dev with @args; expect exit status 1 and @msg in its stderr. */
static void expect_fail(struct __test_metadata *_metadata,
			FIXTURE_DATA(srv) *self, const char *const *args,
			const char *msg)
{
	char log[4096];
	pid_t pid = spawn(self->log, args, NULL);

	ASSERT_LT(0, pid);
	EXPECT_EQ(1, wait_exit(pid, TMO_MS)) TH_LOG("expected failure: %s", msg);
	read_file(self->log, log, sizeof(log));
	EXPECT_NE(NULL, strstr(log, msg)) TH_LOG("log: %s", log);
	EXPECT_EQ(0, strncmp(log, "hmirror-dev: ", 13)) TH_LOG("log: %s", log);
	EXPECT_EQ(NULL, strchr(log, '\n') ? strchr(strchr(log, '\n') + 1, '\n') : NULL)
		TH_LOG("more than one line: %s", log);
}

TEST_F(srv, bad_socket_dir)
{
	const char *args[] = { "--socket", "/nonexistent-hmirror-dir/sock",
			       "--ram", self->ram, NULL };

	expect_fail(_metadata, self, args, "does its directory exist");
}

TEST_F(srv, missing_ram_file)
{
	const char *args[] = { "--socket", self->sock, "--ram", self->other, NULL };
	struct stat st;

	expect_fail(_metadata, self, args, "cannot open RAM file");
	EXPECT_EQ(-1, stat(self->sock, &st));
}

TEST_F(srv, empty_ram_file)
{
	const char *args[] = { "--socket", self->sock, "--ram", self->other, NULL };
	int fd = open(self->other, O_RDWR | O_CREAT, 0600);

	ASSERT_LE(0, fd);
	close(fd);
	expect_fail(_metadata, self, args, "is empty");
}

TEST_F(srv, socket_path_is_a_file)
{
	const char *args[] = { "--socket", self->other, "--ram", self->ram, NULL };
	int fd = open(self->other, O_RDWR | O_CREAT, 0600);
	struct stat st;

	ASSERT_LE(0, fd);
	close(fd);
	expect_fail(_metadata, self, args, "not a socket");
	EXPECT_EQ(0, stat(self->other, &st));	/* left alone */
	EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(srv, socket_in_use)
{
	const char *args[] = { "--socket", self->sock, "--ram", self->ram, NULL };
	struct stat st;

	start(_metadata, self, NULL);
	/* spawn() truncates the log: keep the first server's in the other */
	expect_fail(_metadata, self, args, "another server is listening");
	EXPECT_EQ(0, stat(self->sock, &st));	/* not unlinked */
	handshake(_metadata, self);		/* the first one still serves */
}

TEST_F(srv, bad_options)
{
	static const struct { const char *a[8]; const char *msg; } cases[] = {
		{ { "--ram", "X", NULL }, "--socket PATH is required" },
		{ { "--socket", "S", NULL }, "--ram FILE" },
		{ { "--socket", "S", "--ram", "X", "--engines", "0", NULL }, "engines" },
		{ { "--socket", "S", "--ram", "X", "--engines", "8", NULL }, "engines" },
		{ { "--socket", "S", "--ram", "X", "--sq-entries", "3", NULL }, "sq-entries" },
		{ { "--socket", "S", "--ram", "X", "--cq-entries", "abc", NULL }, "invalid number" },
		{ { "--socket", "S", "--ram", "X", "--fault-entries", "-4", NULL }, "invalid number" },
		{ { "--socket", "S", "--ram", "X", "--tlb-entries", "99999999999", NULL }, "too large" },
		{ { "--socket", "S", "--ram", "X", "--va-bits", "52", NULL }, "va-bits must be 48 or 57" },
		{ { "--socket", "S", "--ram", "X", "--va-bits", "x", NULL }, "invalid number" },
		{ { "--socket", "S", "--ram", "X", "--vram-mb", "4097", NULL },
		  "--vram-mb: must be in [0, 4096] MiB, got 4097" },
		{ { "--socket", "S", "--ram", "X", "--vram-mb", "-1", NULL }, "invalid number" },
		{ { "--socket", "S", "--ram", "X", "--vram-mb", "4294967296", NULL }, "too large" },
		{ { "--socket", "S", "--ram", "X", "--poll-max-us", "0", NULL },
		  "--poll-max-us: must be in [1, 1000000] us, got 0" },
		{ { "--socket", "S", "--ram", "X", "--poll-max-us", "1000001", NULL },
		  "--poll-max-us: must be in [1, 1000000] us" },
		{ { "--socket", "S", "--ram", "X", "--lowmem", "123", NULL }, "--lowmem" },
		{ { "--socket", "S", "--ram", "X", "--lowmem", "8G", NULL }, "--lowmem" },
		{ { "--socket", "S", "--ram", "X", "--ready-fd", "999", NULL }, "not an open file" },
		{ { "--socket", "S", "--ram", "X", "--bogus", NULL }, "unknown option --bogus" },
		{ { "--socket", "S", "--ram", "X", "extra", NULL }, "unexpected argument" },
		{ { "--socket", NULL }, "needs an argument" },
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_fail(_metadata, self, cases[i].a, cases[i].msg);
}

TEST_HARNESS_MAIN
