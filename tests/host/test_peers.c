// SPDX-License-Identifier: MIT
/*
 * Hostile peers and a hostile guest against the real hmirror-dev binary
 * (HMDEV_BIN) on real sockets, and the log against a reset storm: a peer
 * that shrinks BAR2, connects and goes away, stays silent, runs as another
 * uid; stop signals; guest RAM truncated under the model; bytes logged per
 * 10,000 reset + error cycles; a log output that never drains.
 */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hmirror_dev.h"
#include "ivshmem_server.h"
#include "log.h"
#include "kselftest_harness.h"

#ifndef HMDEV_BIN_DEFAULT
#define HMDEV_BIN_DEFAULT "hmirror-dev"
#endif
#define READY_FD	9
#define NVEC		HMIRROR_NUM_VECTORS
#define TMO_MS		5000
#define NOBODY		65534
#define STORM_CYCLES	10000
#define STORM_ERRORS	32	/* bad commands per reset: hmdev's old log cap */
/* Longest line the storm makes the model log, and the "suppressed" note. */
#define STORM_LINE_MAX	128
#define NOTE_MAX	256

static const char *hmdev_bin(void)
{
	const char *b = getenv("HMDEV_BIN");

	return b && *b ? b : HMDEV_BIN_DEFAULT;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Exit status of @pid (128 + signal if killed), or -1 after @ms (killed). */
static int wait_exit(pid_t pid, unsigned ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000;
	int st;

	do {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0)
			return -1;
		sleep_ms(2);
	} while (now_ns() < end);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* The whole file (NUL terminated, malloc'd), or NULL. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r;

	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			char *nb = realloc(buf, 2 * cap + 1);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/*
 * The next @needle in @hay, or NULL.  (Not strstr: under ASan each call
 * checks the whole rest of the string, and the logs here are megabytes.)
 */
static const char *find(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (*hay == *needle && !strncmp(hay, needle, n))
			return hay;
	return NULL;
}

static unsigned count_of(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (hay = find(hay, needle); hay; hay = find(hay + 1, needle))
		n++;
	return n;
}

/* Wait until @path holds @needle at least @times times. */
static int wait_log(const char *path, const char *needle, unsigned times)
{
	uint64_t end = now_ns() + (uint64_t)TMO_MS * 1000000;
	unsigned n;

	do {
		char *log = slurp(path, NULL);

		n = log ? count_of(log, needle) : 0;
		free(log);
		if (n >= times)
			return 0;
		sleep_ms(5);
	} while (now_ns() < end);
	return -1;
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

/* The server has sent something on @fd (not read). */
static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/* Read and discard until EOF: 0, or -1 if no EOF within TMO_MS. */
static int drain_to_eof(int fd)
{
	int64_t msg;
	int got, r;

	do {
		r = ivsh_recv_msg(fd, &msg, &got, TMO_MS);
		if (got >= 0)
			close(got);
	} while (r == 1);
	return r == 0 ? 0 : -1;
}

struct client {
	int sock;
	int shm_fd;
	int dev_efd[NVEC];	/* peer 0: we ring these */
	int own_efd[NVEC];	/* peer 1: the device signals these */
	uint8_t *bar;
	size_t bar_size;
	struct hmirror_header hdr;
};

/* One model and its files, one client. */
struct model {
	char dir[64];
	char sock[128], ram[128], log[128];
	pid_t pid;
	struct client c;
};

static void model_init(struct __test_metadata *_metadata, struct model *self)
{
	int fd, i;

	self->pid = -1;
	self->c.sock = self->c.shm_fd = -1;
	for (i = 0; i < NVEC; i++)
		self->c.dev_efd[i] = self->c.own_efd[i] = -1;
	strcpy(self->dir, "/tmp/hmpeer.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
	snprintf(self->ram, sizeof(self->ram), "%s/ram", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/log", self->dir);
	fd = open(self->ram, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 4 << 20));
	close(fd);
}

static void client_close(struct client *c)
{
	int i;

	if (c->bar)
		munmap(c->bar, c->bar_size);
	c->bar = NULL;
	for (i = 0; i < NVEC; i++) {
		if (c->dev_efd[i] >= 0)
			close(c->dev_efd[i]);
		if (c->own_efd[i] >= 0)
			close(c->own_efd[i]);
		c->dev_efd[i] = c->own_efd[i] = -1;
	}
	if (c->sock >= 0)
		close(c->sock);
	if (c->shm_fd >= 0)
		close(c->shm_fd);
	c->sock = c->shm_fd = -1;
}

static void model_fini(struct model *self)
{
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	client_close(&self->c);
	unlink(self->sock);
	unlink(self->ram);
	unlink(self->log);
	rmdir(self->dir);
}

FIXTURE(peers) {
	struct model m;
};

FIXTURE_SETUP(peers)
{
	model_init(_metadata, &self->m);
}

FIXTURE_TEARDOWN(peers)
{
	model_fini(&self->m);
}

/*
 * Start the model (umask 0: the socket's mode must not depend on the
 * caller's umask) with extra @args; ASSERTs it reports ready.
 */
static void start(struct __test_metadata *_metadata, struct model *self,
		  const char *const *extra)
{
	const char *argv[32] = {
		hmdev_bin(), "--socket", self->sock, "--ram", self->ram,
		"--ready-fd", "9",
	};
	char buf[16] = "";
	unsigned n = 7;
	int p[2], fd;

	while (extra && *extra && n < 30)
		argv[n++] = *extra++;
	argv[n] = NULL;
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	self->pid = fork();
	ASSERT_LE(0, self->pid);
	if (self->pid == 0) {
		umask(0);
		fd = open(self->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		dup2(p[1], READY_FD);	/* clears close-on-exec */
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(p[1]);
	ASSERT_TRUE(readable(p[0], 10000)) TH_LOG("no ready message");
	EXPECT_EQ(6, read(p[0], buf, sizeof(buf) - 1));
	close(p[0]);
	ASSERT_STREQ("ready\n", buf);
}

/* Be QEMU: connect and read the whole setup, map BAR2. */
static void handshake(struct __test_metadata *_metadata, struct model *self)
{
	struct client *c = &self->c;
	struct stat st;
	int64_t msg;
	int fd, v;

	c->sock = connect_to(self->sock);
	ASSERT_LE(0, c->sock);
	ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS)) TH_LOG("no setup");
	ASSERT_EQ(IVSH_PROTOCOL_VERSION, msg);
	ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
	ASSERT_EQ(IVSH_GUEST_PEER, msg);
	ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
	ASSERT_EQ(-1, msg);
	ASSERT_LE(0, fd);
	c->shm_fd = fd;
	for (v = 0; v < NVEC; v++) {
		ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
		ASSERT_EQ(IVSH_DEV_PEER, msg);
		ASSERT_LE(0, fd);
		c->dev_efd[v] = fd;
	}
	for (v = 0; v < NVEC; v++) {
		ASSERT_EQ(1, ivsh_recv_msg(c->sock, &msg, &fd, TMO_MS));
		ASSERT_EQ(IVSH_GUEST_PEER, msg);
		ASSERT_LE(0, fd);
		c->own_efd[v] = fd;
	}
	ASSERT_EQ(0, fstat(c->shm_fd, &st));
	c->bar_size = (size_t)st.st_size;
	c->bar = mmap(NULL, c->bar_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->shm_fd, 0);
	ASSERT_NE(MAP_FAILED, c->bar);
	memcpy(&c->hdr, c->bar, sizeof(c->hdr));
	ASSERT_EQ(HMIRROR_MAGIC, c->hdr.magic);
}

static struct hmirror_regs *regs(struct client *c)
{
	return (struct hmirror_regs *)(c->bar + HMIRROR_REGS_OFF);
}

static struct hmirror_queue_regs *qregs(struct client *c, unsigned q)
{
	return (struct hmirror_queue_regs *)(c->bar + HMIRROR_QUEUES_OFF) + q;
}

static int ring(int fd)
{
	uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
}

/*
 * Wait until *@p == @want: 0, or -1 after TMO_MS.  Sleeps on eventfd @irq
 * (the interrupt that comes with the change; -1: none) or 1 ms at most.
 */
static int wait_u32(const uint32_t *p, uint32_t want, int irq)
{
	uint64_t end = now_ns() + (uint64_t)TMO_MS * 1000000, cnt;
	struct pollfd pfd = { .fd = irq, .events = POLLIN };

	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != want) {
		if (now_ns() > end)
			return -1;
		if (poll(&pfd, 1, 1) == 1 && read(irq, &cnt, sizeof(cnt)) < 0)
			return -1;
	}
	return 0;
}

/*
 * The driver's side of a reset, as its probe does it: queue indices to 0,
 * bus mastering on, new generations, CTRL; both acknowledged.
 */
static int reset(struct client *c)
{
	struct hmirror_regs *r = regs(c);
	uint32_t gen = __atomic_load_n(&r->dev_reset_ack, __ATOMIC_ACQUIRE) + 1;
	uint32_t cgen = __atomic_load_n(&r->dev_ctrl_ack, __ATOMIC_ACQUIRE) + 1;
	unsigned q;

	for (q = 0; q < c->hdr.num_queues; q++) {
		qregs(c, q)->sq_tail = 0;
		qregs(c, q)->cq_head = 0;
	}
	__atomic_store_n(&r->drv_ctrl, HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER,
			 __ATOMIC_RELEASE);
	__atomic_store_n(&r->drv_ctrl_gen, cgen, __ATOMIC_RELEASE);
	__atomic_store_n(&r->drv_reset_gen, gen, __ATOMIC_RELEASE);
	if (ring(c->dev_efd[HMIRROR_VEC_CTRL]))
		return -1;
	if (wait_u32(&r->dev_reset_ack, gen, c->own_efd[HMIRROR_VEC_CTRL]))
		return -1;
	return wait_u32(&r->dev_ctrl_ack, cgen, c->own_efd[HMIRROR_VEC_CTRL]);
}

/* Right after a reset: @n commands of @opcode on queue 1, all completed. */
static int run_cmds(struct client *c, uint8_t opcode, unsigned n)
{
	struct hmirror_queue_regs *qr = qregs(c, 1);
	struct hmirror_cmd *sq = (void *)(c->bar + hmirror_sq_off(&c->hdr, 1));
	unsigned i;

	for (i = 0; i < n; i++) {
		struct hmirror_cmd cmd = {
			.opcode = opcode, .seqno = i + 1,
			.tag = i & (c->hdr.sq_entries - 1),
		};

		sq[i] = cmd;
	}
	__atomic_store_n(&qr->sq_tail, n, __ATOMIC_RELEASE);
	if (ring(c->dev_efd[HMIRROR_VEC_CQ]))
		return -1;
	if (wait_u32(&qr->cq_tail, n, c->own_efd[HMIRROR_VEC_CQ]))
		return -1;
	__atomic_store_n(&qr->cq_head, n, __ATOMIC_RELEASE);
	return 0;
}

/* The model serves this client: a reset and commands complete. */
static void serves(struct __test_metadata *_metadata, struct model *self)
{
	ASSERT_EQ(0, reset(&self->c)) TH_LOG("reset not acknowledged");
	ASSERT_EQ(0, run_cmds(&self->c, HMIRROR_OP_NOP, 8)) TH_LOG("NOPs not completed");
	EXPECT_EQ(0, regs(&self->c)->err_count);
	EXPECT_EQ(0, waitpid(self->pid, NULL, WNOHANG));
}

TEST_F(peers, bar2_cannot_be_resized)
{
	struct model *m = &self->m;
	uint64_t hb;
	int seals;

	start(_metadata, m, NULL);
	handshake(_metadata, m);
	ASSERT_EQ(-1, ftruncate(m->c.shm_fd, 0)) TH_LOG("a peer shrank BAR2");
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(-1, ftruncate(m->c.shm_fd, (off_t)m->c.bar_size * 2));
	EXPECT_EQ(EPERM, errno);
	seals = fcntl(m->c.shm_fd, F_GET_SEALS);
	EXPECT_EQ(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, seals);
	EXPECT_EQ(-1, fcntl(m->c.shm_fd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_EQ(EPERM, errno);
	/* the heartbeat (a BAR2 store every 50 ms) goes on */
	hb = __atomic_load_n(&regs(&m->c)->heartbeat, __ATOMIC_ACQUIRE);
	ASSERT_EQ(0, wait_u32((const uint32_t *)&regs(&m->c)->heartbeat,
			      (uint32_t)hb + 3, -1));
	serves(_metadata, m);
}

TEST_F(peers, early_closers_do_not_stop_the_model)
{
	struct model *m = &self->m;
	int64_t msg;
	int s, fd, half;

	start(_metadata, m, NULL);
	/* connect and close at once */
	s = connect_to(m->sock);
	ASSERT_LE(0, s);
	close(s);
	/* read one message of the setup, close with the rest unread */
	s = connect_to(m->sock);
	ASSERT_LE(0, s);
	ASSERT_EQ(1, ivsh_recv_msg(s, &msg, &fd, TMO_MS));
	close(s);
	/* half-close, keep the socket open */
	half = connect_to(m->sock);
	ASSERT_LE(0, half);
	ASSERT_TRUE(readable(half, TMO_MS));
	ASSERT_EQ(0, shutdown(half, SHUT_WR));
	ASSERT_EQ(0, wait_log(m->log, "closed before completing its handshake", 3))
		TH_LOG("three early closers not dropped");
	EXPECT_EQ(0, drain_to_eof(half));
	close(half);
	EXPECT_EQ(0, waitpid(m->pid, NULL, WNOHANG)) TH_LOG("the model exited");
	handshake(_metadata, m);
	serves(_metadata, m);
}

TEST_F(peers, silent_peer_does_not_keep_qemu_out)
{
	struct model *m = &self->m;
	int silent;

	start(_metadata, m, NULL);
	silent = connect_to(m->sock);
	ASSERT_LE(0, silent);
	ASSERT_TRUE(readable(silent, TMO_MS));	/* it got the setup, reads nothing */
	handshake(_metadata, m);
	serves(_metadata, m);
	/* the one that completed its handshake won: the silent one is closed */
	EXPECT_EQ(0, drain_to_eof(silent));
	close(silent);
	EXPECT_EQ(0, wait_log(m->log, "other connections in their handshake closed", 1));
}

TEST_F(peers, silent_peers_time_out)
{
	struct model *m = &self->m;
	const char *const extra[] = { "--handshake-timeout", "300", NULL };
	int silent[IVSH_MAX_PENDING], i;

	start(_metadata, m, extra);
	/* as many silent peers as the server keeps in their handshake */
	for (i = 0; i < IVSH_MAX_PENDING; i++) {
		silent[i] = connect_to(m->sock);
		ASSERT_LE(0, silent[i]);
		ASSERT_TRUE(readable(silent[i], TMO_MS));
	}
	/*
	 * QEMU waits in the backlog until one times out, then is served (the
	 * silent ones still there when it completes its handshake are closed).
	 */
	handshake(_metadata, m);
	serves(_metadata, m);
	EXPECT_EQ(0, wait_log(m->log, "did not read its setup within 300 ms", 1));
	for (i = 0; i < IVSH_MAX_PENDING; i++) {
		EXPECT_EQ(0, drain_to_eof(silent[i]));
		close(silent[i]);
	}
}

/* In a child running as nobody: connect; 0 if refused as @expect says. */
static int nobody_connects(const char *path, int expect_eacces)
{
	pid_t pid = fork();
	int64_t msg;
	int s, fd, r;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(10);
		s = connect_to(path);
		if (expect_eacces)
			_exit(s < 0 && errno == EACCES ? 0 : 11);
		if (s < 0)
			_exit(12);
		/* connected (the mode was loosened): closed without a word */
		r = ivsh_recv_msg(s, &msg, &fd, TMO_MS);
		_exit(r == 0 ? 0 : 13);
	}
	return wait_exit(pid, 2 * TMO_MS);
}

TEST_F(peers, other_uid_refused)
{
	struct model *m = &self->m;
	struct stat st;

	if (geteuid() != 0)
		SKIP(return, "needs root to run a peer as another uid (nobody)");
	start(_metadata, m, NULL);
	ASSERT_EQ(0, lstat(m->sock, &st));
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777) TH_LOG("socket mode %o", st.st_mode & 07777);
	EXPECT_EQ(geteuid(), st.st_uid);
	ASSERT_EQ(0, chmod(m->dir, 0711));	/* nobody may reach the socket */
	EXPECT_EQ(0, nobody_connects(m->sock, 1)) TH_LOG("mode 0600 let nobody in");
	/* even with the mode loosened, SO_PEERCRED keeps other uids out */
	ASSERT_EQ(0, chmod(m->sock, 0666));
	EXPECT_EQ(0, nobody_connects(m->sock, 0)) TH_LOG("uid nobody got the setup");
	EXPECT_EQ(0, wait_log(m->log, "refusing a connection from uid 65534", 1));
	handshake(_metadata, m);
	serves(_metadata, m);
}

/* The options this file's features added: out-of-range values refused. */
TEST_F(peers, new_options_checked)
{
	static const struct { const char *opt, *val; } bad[] = {
		{ "--handshake-timeout", "0" },
		{ "--handshake-timeout", "3600001" },
		{ "--log-rate", "1000001" },
		{ "--log-rate", "-1" },
	};
	struct model *m = &self->m;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = { hmdev_bin(), "--socket", m->sock, "--ram",
				       m->ram, bad[i].opt, bad[i].val, NULL };
		char *log;
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0) {
			int fd = open(m->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			if (fd >= 0)
				dup2(fd, 2);
			execv(argv[0], (char **)argv);
			_exit(127);
		}
		EXPECT_EQ(1, wait_exit(pid, TMO_MS)) TH_LOG("%s %s", bad[i].opt, bad[i].val);
		log = slurp(m->log, NULL);
		ASSERT_NE(NULL, log);
		EXPECT_NE(NULL, find(log, bad[i].opt)) TH_LOG("%s", log);
		free(log);
	}
}

FIXTURE(stop) {
	struct model m;
};

FIXTURE_VARIANT(stop) {
	int sig;
};

FIXTURE_VARIANT_ADD(stop, sighup) { .sig = SIGHUP };
FIXTURE_VARIANT_ADD(stop, sigquit) { .sig = SIGQUIT };
FIXTURE_VARIANT_ADD(stop, sigterm) { .sig = SIGTERM };

FIXTURE_SETUP(stop)
{
	model_init(_metadata, &self->m);
}

FIXTURE_TEARDOWN(stop)
{
	model_fini(&self->m);
}

TEST_F(stop, signal_sets_gone_and_unlinks)
{
	struct model *m = &self->m;
	struct stat st;
	char want[32];

	start(_metadata, m, NULL);
	handshake(_metadata, m);
	ASSERT_EQ(0, reset(&m->c));
	ASSERT_EQ(0, kill(m->pid, variant->sig));
	EXPECT_EQ(0, wait_exit(m->pid, TMO_MS));
	m->pid = -1;
	EXPECT_TRUE(regs(&m->c)->dev_status & HMIRROR_DEV_GONE);
	EXPECT_EQ(-1, lstat(m->sock, &st));
	EXPECT_EQ(ENOENT, errno);
	snprintf(want, sizeof(want), "signal %d", variant->sig);
	EXPECT_EQ(0, wait_log(m->log, want, 1));
}

/*
 * Guest RAM truncated under the model: the next walk of a page table in it
 * must end the model cleanly (GONE, CTRL irq, log, socket gone, status 1).
 */
TEST_F(peers, ram_shrink_is_gone_not_sigbus)
{
	struct model *m = &self->m;
	struct hmirror_ctx_entry *ctx;
	struct hmirror_queue_regs *qr;
	struct hmirror_cmd *sq;
	uint64_t drained;
	struct stat st;
	char *log;
	int fd;

	start(_metadata, m, NULL);
	handshake(_metadata, m);
	ASSERT_EQ(0, reset(&m->c));
	/* a context whose top table is at 1 MiB in guest RAM */
	ctx = (struct hmirror_ctx_entry *)(m->c.bar + HMIRROR_CTX_OFF) + 1;
	__atomic_store_n(&ctx->pt_root, 1ull << 20, __ATOMIC_RELEASE);
	__atomic_store_n(&ctx->flags, HMIRROR_CTX_VALID, __ATOMIC_RELEASE);
	fd = open(m->ram, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 0));
	close(fd);
	/* forget the CTRL interrupts so far (the reset's) */
	if (read(m->c.own_efd[HMIRROR_VEC_CTRL], &drained, sizeof(drained)) < 0)
		drained = 0;
	qr = qregs(&m->c, 1);
	sq = (void *)(m->c.bar + hmirror_sq_off(&m->c.hdr, 1));
	sq[0] = (struct hmirror_cmd){ .opcode = HMIRROR_OP_READ, .ctx = 1,
				      .seqno = 1, .src = 0x400000, .len = 64 };
	__atomic_store_n(&qr->sq_tail, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(0, ring(m->c.dev_efd[HMIRROR_VEC_CQ]));
	EXPECT_EQ(1, wait_exit(m->pid, TMO_MS)) TH_LOG("not a clean exit");
	m->pid = -1;
	EXPECT_TRUE(regs(&m->c)->dev_status & HMIRROR_DEV_GONE);
	EXPECT_TRUE(readable(m->c.own_efd[HMIRROR_VEC_CTRL], 0)) TH_LOG("no CTRL irq");
	EXPECT_EQ(-1, lstat(m->sock, &st));
	EXPECT_EQ(0, wait_log(m->log, "shrank under the model", 1));
	log = slurp(m->log, NULL);
	ASSERT_NE(NULL, log);
	EXPECT_EQ(NULL, strstr(log, "Sanitizer")) TH_LOG("%s", log);
	free(log);
}

/*
 * Bytes the model logs for 10,000 cycles of a reset followed by 32 bad
 * commands (each an error): what a guest can make it write.  The bound is
 * the limit's own arithmetic over the measured run time, so it does not
 * depend on how fast this machine is.
 */
TEST_F_TIMEOUT(peers, reset_storm_log_is_bounded, 300)
{
	struct model *m = &self->m;
	uint64_t t0, t1, lines_max, bytes_max;
	unsigned i;
	size_t len;
	char *log;

	t0 = now_ns();
	start(_metadata, m, NULL);
	handshake(_metadata, m);
	for (i = 0; i < STORM_CYCLES; i++) {
		ASSERT_EQ(0, reset(&m->c)) TH_LOG("cycle %u: reset", i);
		ASSERT_EQ(0, run_cmds(&m->c, 0xff, STORM_ERRORS)) TH_LOG("cycle %u", i);
	}
	EXPECT_EQ(STORM_ERRORS, regs(&m->c)->err_count);
	ASSERT_EQ(0, kill(m->pid, SIGTERM));
	EXPECT_EQ(0, wait_exit(m->pid, 30000));
	m->pid = -1;
	t1 = now_ns();
	log = slurp(m->log, &len);
	ASSERT_NE(NULL, log);
	/* every line the bucket can have let through, each after a note */
	lines_max = HM_LOG_BURST + HM_LOG_RATE * ((t1 - t0) / 1000000000ull + 1);
	bytes_max = lines_max * (STORM_LINE_MAX + NOTE_MAX);
	TH_LOG("%u reset + %u error cycles in %.2f s: %zu bytes, %u lines logged (bound %llu bytes)",
	       STORM_CYCLES, STORM_ERRORS, (t1 - t0) / 1e9, len,
	       count_of(log, "\n"), (unsigned long long)bytes_max);
	EXPECT_GE(bytes_max, len);
	EXPECT_LE(1, count_of(log, "lines suppressed"));
	EXPECT_LE(1, count_of(log, "signal 15"));	/* the last line is there */
	free(log);
}

/*
 * The protocol primitive the fake clients use: a receive that fails
 * (ECONNRESET) must not take an fd out of the stale control buffer of the
 * previous receive and close it -- that closed someone else's fd.
 */
TEST(recv_error_closes_nothing)
{
	int sv[2], keep, got, other;
	int64_t msg;
	char byte = 0;
	int r;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	other = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, ivsh_send_msg(sv[1], 7, other));
	close(other);
	/* the other end goes with our byte unread: ECONNRESET after the msg */
	ASSERT_EQ(1, send(sv[0], &byte, 1, MSG_NOSIGNAL));
	close(sv[1]);
	/* back to back, so that the second finds the first's control buffer */
	ASSERT_EQ(1, ivsh_recv_msg(sv[0], &msg, &keep, TMO_MS));
	r = ivsh_recv_msg(sv[0], &msg, &got, TMO_MS);
	ASSERT_LE(0, keep);
	EXPECT_EQ(-1, r);
	EXPECT_EQ(-1, got);
	EXPECT_LE(0, fcntl(keep, F_GETFD)) TH_LOG("the fd received before was closed");
	close(keep);
	close(sv[0]);
}

/* ---- the log, in process ---------------------------------------------- */

/* (a fixture only for TEST_F_TIMEOUT: each test forks its own logger) */
FIXTURE(log) {
	int unused;
};

FIXTURE_SETUP(log)
{
}

FIXTURE_TEARDOWN(log)
{
}

struct storm_arg {
	unsigned cycles;
	unsigned id;
};

/* What an engine thread logs in a reset storm. */
static void *storm_thread(void *p)
{
	const struct storm_arg *a = p;
	unsigned i, e;

	for (i = 0; i < a->cycles; i++) {
		hm_log("reset %u: %u queues enabled", i, 3);
		for (e = 0; e < STORM_ERRORS; e++)
			hm_log("error %u on queue %u index %u info 0x%llx", 1, a->id,
			       e, 0xffull);
	}
	return NULL;
}

/* Sum of the N in every "N <what>" of the log. */
static unsigned long long sum_counts(const char *log, const char *what)
{
	unsigned long long sum = 0;
	const char *p;

	for (p = find(log, what); p; p = find(p + 1, what)) {
		const char *q = p;

		while (q > log && q[-1] == ' ')
			q--;
		while (q > log && q[-1] >= '0' && q[-1] <= '9')
			q--;
		sum += strtoull(q, NULL, 10);
	}
	return sum;
}

/*
 * Two threads log like engines in a 10,000 cycle reset storm: the output
 * stays within the limit, and every line is accounted for (written, or
 * counted in a "suppressed"/"dropped" note; the last note at exit).
 */
TEST_F_TIMEOUT(log, storm_in_process, 120)
{
	char path[] = "/tmp/hmlog.XXXXXX";
	struct storm_arg a[2] = { { STORM_CYCLES / 2, 1 }, { STORM_CYCLES / 2, 2 } };
	unsigned long long total = STORM_CYCLES * (1ull + STORM_ERRORS), seen;
	uint64_t t0, t1, lines_max;
	pid_t pid;
	size_t len;
	char *log;
	int fd;

	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	t0 = now_ns();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pthread_t t[2];

		hm_log_file = fdopen(fd, "w");
		if (!hm_log_file)
			_exit(2);
		pthread_create(&t[0], NULL, storm_thread, &a[0]);
		pthread_create(&t[1], NULL, storm_thread, &a[1]);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
		exit(0);	/* atexit: the log is flushed */
	}
	close(fd);
	ASSERT_EQ(0, wait_exit(pid, 120000));
	t1 = now_ns();
	log = slurp(path, &len);
	unlink(path);
	ASSERT_NE(NULL, log);
	lines_max = HM_LOG_BURST + HM_LOG_RATE * ((t1 - t0) / 1000000000ull + 1);
	seen = count_of(log, "reset ") + count_of(log, "error 1 on") +
	       sum_counts(log, "lines suppressed") + sum_counts(log, "lines dropped");
	TH_LOG("%llu lines in %.2f s: %zu bytes, %u written", total, (t1 - t0) / 1e9,
	       len, count_of(log, "\n"));
	EXPECT_GE(lines_max * (STORM_LINE_MAX + NOTE_MAX), len);
	EXPECT_EQ(total, seen);
	free(log);
}

/*
 * A log output nobody reads (a pipe shrunk to one page) must not block
 * hm_log(): the caller is an engine thread holding its queue's lock.
 */
TEST_F_TIMEOUT(log, never_blocks_on_a_stuck_output, 120)
{
	char big[900];
	pid_t pid;
	int p[2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ASSERT_EQ(0, pipe(p));
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned i;

		close(p[0]);
		hm_log_file = fdopen(p[1], "w");
		if (!hm_log_file)
			_exit(2);
		/* far more than the pipe, the buffer and the burst hold */
		for (i = 0; i < 5000; i++)
			hm_log("line %u %s", i, big);
		_exit(0);	/* got here: no call blocked */
	}
	close(p[1]);
	/* blocked callers would never return: this is not a race */
	EXPECT_EQ(0, wait_exit(pid, 60000)) TH_LOG("hm_log() blocked on its output");
	close(p[0]);
}

TEST_HARNESS_MAIN
