// SPDX-License-Identifier: MIT
/*
 * The real QEMU 7.2 ivshmem-doorbell against hmirror-dev, without a guest:
 * QEMU's qtest protocol (-qtest stdio, machine stopped with -S) lets this
 * test act as the guest CPU: PCI config cycles, BAR reads and writes, the
 * Doorbell register.  Skipped when qemu-system-x86_64 is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hmirror_dev.h"
#include "kselftest_harness.h"

#ifndef HMDEV_BIN_DEFAULT
#define HMDEV_BIN_DEFAULT "hmirror-dev"
#endif
#define QEMU		"qemu-system-x86_64"
#define PCI_DEV		4		/* 00:04.0 */
#define BAR0_ADDR	0xfe000000ull	/* ivshmem registers */
#define BAR2_ADDR	0xe0000000ull	/* shared memory */
#define IVSH_IVPOSITION	0x08
#define IVSH_DOORBELL	0x0c

static int have_qemu(void)
{
	char *path = getenv("PATH"), *copy, *dir, *save = NULL;
	char buf[512];
	int found = 0;

	if (!path)
		return 0;
	copy = strdup(path);
	for (dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", dir, QEMU);
		found = access(buf, X_OK) == 0;
	}
	free(copy);
	return found;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

FIXTURE(qt) {
	char dir[64], sock[128], ram[128], log[128], qlog[128];
	pid_t model, qemu;
	FILE *to, *from;	/* qtest protocol */
};

FIXTURE_SETUP(qt)
{
	self->model = self->qemu = -1;
	self->to = self->from = NULL;
	strcpy(self->dir, "/tmp/hmqt.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
	snprintf(self->ram, sizeof(self->ram), "%s/ram", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/model.log", self->dir);
	snprintf(self->qlog, sizeof(self->qlog), "%s/qemu.log", self->dir);
}

static int wait_pid(pid_t pid, unsigned ms)
{
	unsigned t;
	int st;

	for (t = 0; t < ms; t += 5) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

FIXTURE_TEARDOWN(qt)
{
	if (_metadata->exit_code != KSFT_PASS) {	/* show QEMU's qtest log */
		char q[16384] = "";
		int fd = open(self->qlog, O_RDONLY);

		if (fd >= 0) {
			ssize_t n = read(fd, q, sizeof(q) - 1);

			q[n > 0 ? n : 0] = '\0';
			close(fd);
		}
		TH_LOG("qemu log:\n%s", q);
	}
	if (self->to)
		fclose(self->to);
	if (self->from)
		fclose(self->from);
	if (self->qemu > 0)
		wait_pid(self->qemu, 0);
	if (self->model > 0)
		wait_pid(self->model, 0);
	unlink(self->sock);
	unlink(self->ram);
	unlink(self->log);
	unlink(self->qlog);
	rmdir(self->dir);
}

/* Send one qtest command, return the value of its "OK [value]" reply. */
static int qcmd(FIXTURE_DATA(qt) *self, uint64_t *val, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int qcmd(FIXTURE_DATA(qt) *self, uint64_t *val, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vfprintf(self->to, fmt, ap);
	va_end(ap);
	fputc('\n', self->to);
	fflush(self->to);
	for (;;) {
		if (!fgets(line, sizeof(line), self->from))
			return -1;
		if (getenv("HMTEST_QTEST_DEBUG"))
			fprintf(stderr, "# qtest: %s", line);
		if (!strncmp(line, "IRQ", 3))	/* asynchronous, ignore */
			continue;
		if (strncmp(line, "OK", 2))
			return -1;
		if (val)
			*val = strtoull(line + 2, NULL, 0);
		return 0;
	}
}

static uint32_t cfg_addr(unsigned reg)
{
	return 0x80000000u | (PCI_DEV << 11) | reg;
}

static uint64_t cfg_read(FIXTURE_DATA(qt) *self, unsigned reg)
{
	uint64_t v = ~0ull;

	qcmd(self, NULL, "outl 0xcf8 0x%x", cfg_addr(reg));
	qcmd(self, &v, "inl 0xcfc");
	return v;
}

static void cfg_write(FIXTURE_DATA(qt) *self, unsigned reg, uint32_t v)
{
	qcmd(self, NULL, "outl 0xcf8 0x%x", cfg_addr(reg));
	qcmd(self, NULL, "outl 0xcfc 0x%x", v);
}

static uint64_t rd(FIXTURE_DATA(qt) *self, unsigned bits, uint64_t addr)
{
	uint64_t v = ~0ull;

	qcmd(self, &v, "read%c 0x%llx", bits == 64 ? 'q' : 'l',
	     (unsigned long long)addr);
	return v;
}

static void wr(FIXTURE_DATA(qt) *self, unsigned bits, uint64_t addr, uint64_t v)
{
	qcmd(self, NULL, "write%c 0x%llx 0x%llx", bits == 64 ? 'q' : 'l',
	     (unsigned long long)addr, (unsigned long long)v);
}

static void start_both(struct __test_metadata *_metadata, FIXTURE_DATA(qt) *self)
{
	const char *bin = getenv("HMDEV_BIN") ? getenv("HMDEV_BIN") : HMDEV_BIN_DEFAULT;
	int rp[2], to[2], from[2], fd;
	char buf[16] = "", mem[256], chardev[160];
	struct pollfd p;

	signal(SIGPIPE, SIG_IGN);	/* a dead QEMU fails the test, not kills it */
	fd = open(self->ram, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 64 << 20));
	close(fd);

	ASSERT_EQ(0, pipe2(rp, O_CLOEXEC));
	self->model = fork();
	if (self->model == 0) {
		fd = open(self->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		dup2(rp[1], 9);
		execl(bin, bin, "--socket", self->sock, "--ram", self->ram,
		      "--ready-fd", "9", "-v", (char *)NULL);
		_exit(127);
	}
	close(rp[1]);
	p.fd = rp[0];
	p.events = POLLIN;
	ASSERT_EQ(1, poll(&p, 1, 10000));
	ASSERT_EQ(6, read(rp[0], buf, sizeof(buf)));
	close(rp[0]);

	snprintf(mem, sizeof(mem),
		 "memory-backend-file,id=ram,size=64M,mem-path=%s,share=on", self->ram);
	snprintf(chardev, sizeof(chardev), "socket,id=ivs,path=%s", self->sock);
	ASSERT_EQ(0, pipe2(to, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(from, O_CLOEXEC));
	self->qemu = fork();
	if (self->qemu == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		fd = open(self->qlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		execlp(QEMU, QEMU, "-nodefaults", "-display", "none",
		       "-machine", "q35,memory-backend=ram", "-S", "-qtest", "stdio", "-m", "64M", "-object", mem,
		       "-chardev", chardev, "-device",
		       "ivshmem-doorbell,chardev=ivs,vectors=3,addr=04.0",
		       (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	self->to = fdopen(to[1], "w");
	self->from = fdopen(from[0], "r");
	ASSERT_NE(NULL, self->to);
	ASSERT_NE(NULL, self->from);
}

TEST_F(qt, doorbell_reset_and_nops_through_qemu)
{
	struct hmirror_header h;
	uint64_t regs = BAR2_ADDR + HMIRROR_REGS_OFF, q1, sq, cq, v, ack = 0;
	unsigned i, t;
	char log[4096] = "";
	int fd;

	if (!have_qemu())
		SKIP(return, QEMU " not installed");
	start_both(_metadata, self);

	/*
	 * PCI: find the device, place BAR0 and BAR2, enable memory decoding.
	 * The machine is stopped (-S): no firmware runs and competes for
	 * config space (Debian's QEMU has no qtest accelerator, so without -S
	 * SeaBIOS would be running under TCG).
	 */
	ASSERT_EQ(0x11101af4, cfg_read(self, 0x00)) TH_LOG("ivshmem not at 00:04.0");
	cfg_write(self, 0x10, (uint32_t)BAR0_ADDR);
	cfg_write(self, 0x18, (uint32_t)BAR2_ADDR);
	cfg_write(self, 0x1c, 0);
	cfg_write(self, 0x04, 0x6);	/* memory space + bus master */
	EXPECT_EQ(0x11101af4, cfg_read(self, 0x00));
	EXPECT_EQ(1, rd(self, 32, BAR0_ADDR + IVSH_IVPOSITION));
	v = rd(self, 32, BAR2_ADDR);
	EXPECT_EQ(HMIRROR_MAGIC, v);
	EXPECT_EQ(HMIRROR_VERSION, rd(self, 32, BAR2_ADDR + 4));
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_DMA_OFF,
		  rd(self, 32, regs + offsetof(struct hmirror_regs, dev_status)));

	/* the driver's probe through the real Doorbell register */
	wr(self, 32, regs + offsetof(struct hmirror_regs, drv_ctrl),
	   HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER);
	wr(self, 32, regs + offsetof(struct hmirror_regs, drv_ctrl_gen), 1);
	wr(self, 32, regs + offsetof(struct hmirror_regs, drv_reset_gen), 1);
	wr(self, 32, BAR0_ADDR + IVSH_DOORBELL, (0 << 16) | HMIRROR_VEC_CTRL);
	/* the device acts on the reset, then on drv_ctrl: wait for both */
	for (t = 0; t < 2000; t++) {
		v = rd(self, 32, regs + offsetof(struct hmirror_regs, dev_reset_ack));
		ack = rd(self, 32, regs + offsetof(struct hmirror_regs, dev_ctrl_ack));
		if (v == 1 && ack == 1)
			break;
		sleep_ms(1);
	}
	EXPECT_EQ(1, v);
	EXPECT_EQ(1, ack);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED,
		  rd(self, 32, regs + offsetof(struct hmirror_regs, dev_status)));

	/* three NOPs on queue 1, CQ doorbell */
	memset(&h, 0, sizeof(h));
	h.sq_entries = (uint32_t)rd(self, 32, BAR2_ADDR + offsetof(struct hmirror_header, sq_entries));
	h.cq_entries = (uint32_t)rd(self, 32, BAR2_ADDR + offsetof(struct hmirror_header, cq_entries));
	h.rings_off = (uint32_t)rd(self, 32, BAR2_ADDR + offsetof(struct hmirror_header, rings_off));
	sq = BAR2_ADDR + hmirror_sq_off(&h, 1);
	cq = BAR2_ADDR + hmirror_cq_off(&h, 1);
	q1 = BAR2_ADDR + HMIRROR_QUEUES_OFF + sizeof(struct hmirror_queue_regs);
	for (i = 0; i < 3; i++) {
		uint64_t d = sq + i * sizeof(struct hmirror_cmd);

		/* opcode, flags, ctx, tag, reserved0 */
		wr(self, 64, d, HMIRROR_OP_NOP | (uint64_t)i << 32);
		wr(self, 64, d + offsetof(struct hmirror_cmd, seqno), 10 + i);
	}
	wr(self, 32, q1 + offsetof(struct hmirror_queue_regs, sq_tail), 3);
	wr(self, 32, BAR0_ADDR + IVSH_DOORBELL, (0 << 16) | HMIRROR_VEC_CQ);
	for (t = 0; t < 2000; t++) {
		v = rd(self, 32, q1 + offsetof(struct hmirror_queue_regs, cq_tail));
		if (v == 3)
			break;
		sleep_ms(1);
	}
	EXPECT_EQ(3, v);
	EXPECT_EQ(12, rd(self, 64, q1 + offsetof(struct hmirror_queue_regs, completed_seqno)));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(10 + i, rd(self, 64, cq + i * sizeof(struct hmirror_cpl)));
	EXPECT_EQ(0, rd(self, 32, regs + offsetof(struct hmirror_regs, err_count)));

	/* QEMU exits: the model notices and exits 0 */
	ASSERT_EQ(0, kill(self->qemu, SIGTERM));
	EXPECT_EQ(0, wait_pid(self->qemu, 10000));
	self->qemu = -1;
	EXPECT_EQ(0, wait_pid(self->model, 10000));
	self->model = -1;
	fd = open(self->log, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, log, sizeof(log) - 1);

		log[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	EXPECT_NE(NULL, strstr(log, "doorbell 2")) TH_LOG("%s", log);
	EXPECT_NE(NULL, strstr(log, "client disconnected")) TH_LOG("%s", log);
}

TEST_HARNESS_MAIN
