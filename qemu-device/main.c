// SPDX-License-Identifier: MIT
/*
 * hmirror-dev: the hmirror device model, served to QEMU's ivshmem-doorbell
 * as an ivshmem server.  See ivshmem_server.h for the protocol and hmdev.h
 * for the device.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "cpu_use.h"
#include "guest_ram.h"
#include "hmdev.h"
#include "ivshmem_server.h"
#include "log.h"

#define HEARTBEAT_NS	50000000ll

/* epoll tags */
enum { EV_LISTEN = 1, EV_CLIENT, EV_SIGNAL, EV_TIMER, EV_DOORBELL0 };

struct opts {
	const char *socket;
	const char *ram;
	uint64_t lowmem;
	struct hmdev_config cfg;
	int ready_fd;
	const char *log;
	unsigned handshake_ms;
	unsigned log_rate;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: hmirror-dev --socket PATH --ram FILE[,FILE...] [options]\n"
"  --socket PATH        ivshmem server socket (QEMU -chardev socket,path=PATH)\n"
"  --ram FILE[,FILE..]  guest RAM files (memory-backend-file,share=on), in order\n"
"  --lowmem BYTES       q35 RAM below 4 GiB (default: QEMU's: 2 GiB if RAM\n"
"                       >= 2.75 GiB, else 2.75 GiB); K/M/G suffixes allowed\n"
"  --engines N          engine queues (default %d, max %d)\n"
"  --sq-entries N       submission ring entries per queue (default %d)\n"
"  --cq-entries N       completion ring entries per queue (default %d)\n"
"  --fault-entries N    fault ring entries (default %d)\n"
"  --max-contexts N     context table entries (default %d)\n"
"  --tlb-entries N      device TLB entries (default %d)\n"
"  --va-bits 48|57      virtual address width: 4- or 5-level tables (default %d)\n"
"  --vram-mb N          device memory in MiB, 0..%u (default %d; 0: none)\n"
"  --shootdown on|off   TLB shootdown through shared memory (default on;\n"
"                       off: the driver invalidates with TLB_INVAL only)\n"
"  --poll-adapt on|off  engines stretch their spin (up to --poll-max-us) when\n"
"                       commands keep coming just after it ended (default on)\n"
"  --poll-max-us N      longest spin, asked by the driver or learned, in us\n"
"                       (1..%u, default %u)\n"
"  --misbehave complete-faulted  for the driver's tests: a command parked on\n"
"                       a fault completes once its record is taken, unanswered\n"
"  --ready-fd FD        write \"ready\\n\" to FD once listening, then close it\n"
"  --handshake-timeout MS  drop a connection that has not read its setup\n"
"                       within MS milliseconds (default %d)\n"
"  --log FILE           log here instead of stderr\n"
"  --log-rate N         at most N log lines a second after a burst of %d\n"
"                       (default %d; 0: no limit, the guest controls the log)\n"
"  -v, --verbose        debug log\n"
"  -h, --help\n",
		HMDEV_DEF_ENGINES, HMIRROR_MAX_QUEUES - 1, HMDEV_DEF_SQ,
		HMDEV_DEF_CQ, HMDEV_DEF_FAULTS, HMDEV_DEF_CONTEXTS, HMDEV_DEF_TLB,
		HMDEV_DEF_VA_BITS, HMDEV_MAX_VRAM_MB, HMDEV_DEF_VRAM_MB,
		HMDEV_MAX_POLL_US, HMDEV_DEF_POLL_MAX_US, IVSH_HANDSHAKE_MS,
		HM_LOG_BURST, HM_LOG_RATE);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The socket to remove if we die after creating it. */
static struct ivsh_server *listening;

static void unlink_socket(void)
{
	if (listening && listening->path[0])
		unlink(listening->path);
}

static void die(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	hm_log_lifecycle("%s", buf);
	exit(1);
}

static uint64_t parse_u64(const char *opt, const char *s, int suffixes)
{
	unsigned long long v;
	char *end;
	unsigned shift = 0;

	errno = 0;
	if (!*s || *s == '-')
		die("%s: invalid number '%s'", opt, s);
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		die("%s: invalid number '%s'", opt, s);
	if (suffixes && *end) {
		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: die("%s: invalid number '%s'", opt, s);
		}
		end++;
		if (v > (ULLONG_MAX >> shift))
			die("%s: number too large '%s'", opt, s);
		v <<= shift;
	}
	if (*end)
		die("%s: invalid number '%s'", opt, s);
	return v;
}

static unsigned parse_uint(const char *opt, const char *s)
{
	uint64_t v = parse_u64(opt, s, 0);

	if (v > UINT_MAX)
		die("%s: number too large '%s'", opt, s);
	return (unsigned)v;
}

static bool parse_on_off(const char *opt, const char *s)
{
	if (strcmp(s, "on") && strcmp(s, "off"))
		die("%s: on or off, got '%s'", opt, s);
	return !strcmp(s, "on");
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_SOCKET = 256, O_RAM, O_LOWMEM, O_ENGINES, O_SQ, O_CQ,
	       O_FAULTS, O_CTX, O_TLB, O_READY, O_LOG, O_VA_BITS, O_HANDSHAKE,
	       O_LOG_RATE, O_VRAM, O_SHOOTDOWN, O_POLL_ADAPT, O_POLL_MAX,
	       O_MISBEHAVE };
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "ram", required_argument, NULL, O_RAM },
		{ "lowmem", required_argument, NULL, O_LOWMEM },
		{ "engines", required_argument, NULL, O_ENGINES },
		{ "sq-entries", required_argument, NULL, O_SQ },
		{ "cq-entries", required_argument, NULL, O_CQ },
		{ "fault-entries", required_argument, NULL, O_FAULTS },
		{ "max-contexts", required_argument, NULL, O_CTX },
		{ "tlb-entries", required_argument, NULL, O_TLB },
		{ "va-bits", required_argument, NULL, O_VA_BITS },
		{ "vram-mb", required_argument, NULL, O_VRAM },
		{ "shootdown", required_argument, NULL, O_SHOOTDOWN },
		{ "poll-adapt", required_argument, NULL, O_POLL_ADAPT },
		{ "poll-max-us", required_argument, NULL, O_POLL_MAX },
		{ "misbehave", required_argument, NULL, O_MISBEHAVE },
		{ "ready-fd", required_argument, NULL, O_READY },
		{ "log", required_argument, NULL, O_LOG },
		{ "handshake-timeout", required_argument, NULL, O_HANDSHAKE },
		{ "log-rate", required_argument, NULL, O_LOG_RATE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	int c;

	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
	o->handshake_ms = IVSH_HANDSHAKE_MS;
	o->log_rate = HM_LOG_RATE;
	hmdev_config_default(&o->cfg);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", lo, NULL)) != -1) {
		switch (c) {
		case O_SOCKET: o->socket = optarg; break;
		case O_RAM: o->ram = optarg; break;
		case O_LOWMEM:
			o->lowmem = parse_u64("--lowmem", optarg, 1);
			if (!o->lowmem || o->lowmem > GUEST_RAM_4G || (o->lowmem & 4095))
				die("--lowmem: must be nonzero, 4 KiB aligned and <= 4 GiB");
			break;
		case O_ENGINES: o->cfg.engines = parse_uint("--engines", optarg); break;
		case O_SQ: o->cfg.sq_entries = parse_uint("--sq-entries", optarg); break;
		case O_CQ: o->cfg.cq_entries = parse_uint("--cq-entries", optarg); break;
		case O_FAULTS: o->cfg.fault_entries = parse_uint("--fault-entries", optarg); break;
		case O_CTX: o->cfg.max_contexts = parse_uint("--max-contexts", optarg); break;
		case O_TLB: o->cfg.tlb_entries = parse_uint("--tlb-entries", optarg); break;
		case O_VA_BITS: o->cfg.va_bits = parse_uint("--va-bits", optarg); break;
		case O_VRAM:
			o->cfg.vram_mb = parse_uint("--vram-mb", optarg);
			if (o->cfg.vram_mb > HMDEV_MAX_VRAM_MB)
				die("--vram-mb: must be in [0, %u] MiB, got %s",
				    HMDEV_MAX_VRAM_MB, optarg);
			break;
		case O_SHOOTDOWN:
			o->cfg.shootdown = parse_on_off("--shootdown", optarg);
			break;
		case O_POLL_ADAPT:
			o->cfg.poll_adapt = parse_on_off("--poll-adapt", optarg);
			break;
		case O_POLL_MAX:
			o->cfg.poll_max_us = parse_uint("--poll-max-us", optarg);
			if (!o->cfg.poll_max_us || o->cfg.poll_max_us > HMDEV_MAX_POLL_US)
				die("--poll-max-us: must be in [1, %u] us, got %s",
				    HMDEV_MAX_POLL_US, optarg);
			break;
		case O_MISBEHAVE:
			if (strcmp(optarg, "complete-faulted"))
				die("--misbehave: complete-faulted, got '%s'", optarg);
			o->cfg.misbehave |= HMDEV_LIE_COMPLETE_FAULTED;
			hm_log("--misbehave %s: this device breaks its spec on purpose", optarg);
			break;
		case O_READY:
			o->ready_fd = (int)parse_uint("--ready-fd", optarg);
			if (o->ready_fd > INT_MAX - 1 || fcntl(o->ready_fd, F_GETFD) < 0)
				die("--ready-fd: %s is not an open file descriptor", optarg);
			break;
		case O_LOG: o->log = optarg; break;
		case O_HANDSHAKE:
			o->handshake_ms = parse_uint("--handshake-timeout", optarg);
			if (!o->handshake_ms || o->handshake_ms > 3600000)
				die("--handshake-timeout: must be in [1, 3600000] ms");
			break;
		case O_LOG_RATE:
			o->log_rate = parse_uint("--log-rate", optarg);
			if (o->log_rate > 1000000)
				die("--log-rate: must be in [0, 1000000] lines/s");
			break;
		case 'v': hm_log_verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		case ':': die("option %s needs an argument (see --help)", argv[optind - 1]);
		default:
			die("unknown option %s (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (see --help)", argv[optind]);
	if (!o->socket)
		die("--socket PATH is required (see --help)");
	if (!o->ram)
		die("--ram FILE[,FILE...] is required (see --help)");
	if (hmdev_config_check(&o->cfg, err, sizeof(err)))
		die("bad configuration: %s", err);
}

struct ctx {
	struct hmdev *dev;
	struct guest_ram ram;
	/*
	 * The engine threads raise interrupts while the event loop may be
	 * accepting or dropping the client: srv_mu covers the client's fds.
	 */
	pthread_mutex_t srv_mu;
	struct ivsh_server srv;
	int epfd, sfd, tfd, shm_fd;
	struct cpu_use cpu;	/* the model's CPU time, idle and busy ticks */
	bool listen_armed;
	void *bar;
	size_t bar_size;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- guest RAM that shrinks under us --------------------------------- */

/*
 * The guest RAM files are QEMU's (memory-backend-file): if one is truncated
 * while mapped, the device's next access to the lost part raises SIGBUS, in
 * whichever thread made it (an engine holding its locks, or the event
 * loop).  Unwinding (siglongjmp) out of the device code in the middle of a
 * command would leave its locks and rings half-updated, and the device
 * cannot go on without its guest's memory anyway.  So the handler ends the
 * model the way SIGTERM does, with async-signal-safe calls only: GONE in
 * BAR2 (the BAR2 memfd is sealed and cannot shrink), the CTRL interrupt,
 * a log line, the socket unlinked, exit status 1.  A SIGBUS anywhere else
 * is a bug: it is re-raised with the default action.
 */
static struct {
	uintptr_t ram_lo, ram_hi;	/* guest RAM mapping */
	const struct guest_ram *ram;
	uint32_t *dev_status;		/* in BAR2 */
	int irq_fd;	/* the client's CTRL eventfd (dup3'd on each new client) */
	int log_fd;
	const char *sock_path;		/* set once listening (atomic) */
} guard = { .irq_fd = -1, .log_fd = 2 };

static void put_str(char *buf, size_t size, size_t *n, const char *s)
{
	while (*s && *n + 1 < size)
		buf[(*n)++] = *s++;
}

static void put_hex(char *buf, size_t size, size_t *n, uint64_t v)
{
	char d[17];
	int i = 16;

	d[i] = '\0';
	do {
		d[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v && i);
	put_str(buf, size, n, "0x");
	put_str(buf, size, n, d + i);
}

static void ram_fault(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	const char *path;
	uint64_t off, one = 1;
	char msg[512];
	size_t n = 0;
	int f;

	(void)uc;
	if (a < guard.ram_lo || a >= guard.ram_hi) {
		signal(sig, SIG_DFL);	/* not ours: fault again, fatally */
		return;
	}
	off = a - guard.ram_lo;
	__atomic_store_n(guard.dev_status, HMIRROR_DEV_GONE |
			 (__atomic_load_n(guard.dev_status, __ATOMIC_RELAXED) &
			  HMIRROR_DEV_ERROR), __ATOMIC_RELEASE);
	if (write(guard.irq_fd, &one, sizeof(one)) < 0) {
		/* no client: nobody to tell */
	}
	path = __atomic_load_n(&guard.sock_path, __ATOMIC_ACQUIRE);
	if (path)
		unlink(path);
	f = guest_ram_file_of(guard.ram, off);
	put_str(msg, sizeof(msg), &n, "hmirror-dev: guest RAM file ");
	put_str(msg, sizeof(msg), &n, f >= 0 ? guard.ram->files[f].path : "?");
	put_str(msg, sizeof(msg), &n, " shrank under the model (bus error at RAM offset ");
	put_hex(msg, sizeof(msg), &n, off);
	put_str(msg, sizeof(msg), &n, "): device marked GONE, exiting\n");
	if (write(guard.log_fd, msg, n) < 0) {
		/* nowhere else to say it */
	}
	_exit(1);
}

static void guard_ram(struct ctx *c, int log_fd)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	guard.ram = &c->ram;
	guard.ram_lo = (uintptr_t)c->ram.base;
	guard.ram_hi = guard.ram_lo + c->ram.total;
	/* where the ABI puts it: the handler cannot ask the device */
	guard.dev_status = &((struct hmirror_regs *)
			     ((uint8_t *)c->bar + HMIRROR_REGS_OFF))->dev_status;
	guard.log_fd = log_fd;
	guard.irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);	/* placeholder */
	if (guard.irq_fd < 0)
		die("eventfd: %s", strerror(errno));
	sa.sa_sigaction = ram_fault;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL))
		die("sigaction SIGBUS: %s", strerror(errno));
}

/* ---- the event loop ------------------------------------------------- */

static void raise_irq(void *opaque, unsigned v)
{
	struct ctx *c = opaque;
	int r;

	pthread_mutex_lock(&c->srv_mu);
	r = ivsh_server_notify(&c->srv, v);
	pthread_mutex_unlock(&c->srv_mu);
	if (r)
		hm_dbg("irq %u dropped: no client", v);
}

static void ep_add(struct ctx *c, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev))
		die("epoll_ctl: %s", strerror(errno));
}

/* Watch the listening socket only while a connection can be taken. */
static void update_listen(struct ctx *c)
{
	struct epoll_event ev = { .data.u64 = EV_LISTEN };
	bool want = ivsh_server_can_accept(&c->srv);

	if (want == c->listen_armed)
		return;
	ev.events = want ? EPOLLIN : 0;
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->srv.listen_fd, &ev))
		die("epoll_ctl: %s", strerror(errno));
	c->listen_armed = want;
}

/* A pending connection completed its handshake (srv_mu held). */
static void client_up(struct ctx *c)
{
	unsigned v;

	ep_add(c, c->srv.client_fd, EPOLLIN | EPOLLRDHUP, EV_CLIENT);
	for (v = 0; v < c->srv.nvec; v++)
		ep_add(c, c->srv.dev_efd[v], EPOLLIN, EV_DOORBELL0 + v);
	/* the fault handler's fd number stays; what it names changes at once */
	if (dup3(c->srv.guest_efd[HMIRROR_VEC_CTRL], guard.irq_fd, O_CLOEXEC) < 0)
		hm_log("dup3: %s", strerror(errno));
}

/* Look at the connections in their handshake (on accept and every tick). */
static void poll_pending(struct ctx *c, bool accept)
{
	pthread_mutex_lock(&c->srv_mu);
	if (ivsh_server_poll(&c->srv, now_ms()) == IVSH_CLIENT_UP)
		client_up(c);
	if (accept)
		ivsh_server_accept(&c->srv, now_ms());
	pthread_mutex_unlock(&c->srv_mu);
	update_listen(c);
}

/* Forget the client: out of the epoll set first (its fds may live on). */
static void drop_client(struct ctx *c)
{
	unsigned v;

	if (c->srv.client_fd >= 0)
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->srv.client_fd, NULL);
	for (v = 0; v < c->srv.nvec; v++)
		if (c->srv.dev_efd[v] >= 0)
			epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->srv.dev_efd[v], NULL);
	pthread_mutex_lock(&c->srv_mu);
	ivsh_server_drop_client(&c->srv);
	pthread_mutex_unlock(&c->srv_mu);
	update_listen(c);
}

static void cleanup(struct ctx *c)
{
	hmdev_destroy(c->dev);		/* engine threads joined */
	signal(SIGBUS, SIG_DFL);	/* nobody touches guest RAM any more */
	ivsh_server_close(&c->srv);	/* also unlinks the socket */
	if (c->bar)
		munmap(c->bar, c->bar_size);
	if (c->shm_fd >= 0)
		close(c->shm_fd);
	guest_ram_close(&c->ram);
	close(c->epfd);
	close(c->sfd);
	close(c->tfd);
	hm_log_close();
}

/* Returns the exit status once the loop ends. */
static int run(struct ctx *c)
{
	struct epoll_event evs[16];
	uint64_t cmds, events;
	bool rung, awake;
	int i, n, r;
	unsigned v;

	for (;;) {
		/* After a doorbell: non-blocking waits, queue 0 looked at between. */
		awake = hmdev_mgmt_awake(c->dev);
		n = epoll_wait(c->epfd, evs, 16, awake ? 0 : -1);
		if (n == 0 && awake) {
			hmdev_mgmt_turn(c->dev);
			continue;
		}
		rung = false;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			hm_log_lifecycle("epoll_wait: %s", strerror(errno));
			hmdev_shutdown(c->dev);
			return 1;
		}
		for (i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64, cnt;
			struct signalfd_siginfo si;

			switch (tag) {
			case EV_LISTEN:
				poll_pending(c, true);
				break;
			case EV_CLIENT:
				pthread_mutex_lock(&c->srv_mu);
				r = ivsh_server_client_event(&c->srv);
				pthread_mutex_unlock(&c->srv_mu);
				if (r == IVSH_CLIENT_GONE) {
					hm_log_lifecycle("client disconnected, exiting");
					hmdev_shutdown(c->dev);
					return 0;
				}
				if (r == IVSH_NOT_QEMU) {
					hm_log("dropped a client that was not QEMU (it wrote to the socket)");
					drop_client(c);
					/* later events of this batch may name its fds */
					goto next_wait;
				}
				break;
			case EV_SIGNAL:
				if (read(c->sfd, &si, sizeof(si)) != sizeof(si))
					break;
				hm_log_lifecycle("signal %u (%s), shutting down", si.ssi_signo,
				       strsignal((int)si.ssi_signo));
				hmdev_shutdown(c->dev);
				return 0;
			case EV_TIMER:
				if (read(c->tfd, &cnt, sizeof(cnt)) != sizeof(cnt))
					break;
				/* first: a client that just completed its handshake
				 * gets the interrupts this tick may raise */
				poll_pending(c, false);
				hmdev_tick(c->dev);
				hmdev_activity(c->dev, &cmds, &events);
				cpu_use_tick(&c->cpu, cmds, events);
				break;
			default:
				v = (unsigned)(tag - EV_DOORBELL0);
				cnt = ivsh_server_doorbell_read(&c->srv, v);
				if (cnt) {
					hmdev_doorbell_n(c->dev, v, cnt);
					rung = true;
				}
				break;
			}
		}
		if (rung)
			hmdev_mgmt_wake(c->dev);
next_wait:;
	}
}

/* BAR2, shared with QEMU (sealed: no peer can shrink it under us). */
static void make_bar(struct ctx *c, size_t size)
{
	char err[256];

	c->bar_size = size;
	c->shm_fd = ivsh_shm_create("hmirror-bar2", size, err, sizeof(err));
	if (c->shm_fd < 0)
		die("%s", err);
	c->bar = mmap(NULL, c->bar_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->shm_fd, 0);
	if (c->bar == MAP_FAILED)
		die("mmap shared memory: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct itimerspec its = {
		.it_interval = { 0, HEARTBEAT_NS }, .it_value = { 0, HEARTBEAT_NS },
	};
	static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };
	static struct ctx c;
	struct opts o;
	char err[512];
	sigset_t mask;
	uint64_t size;
	unsigned i;
	int ret;

	parse_args(argc, argv, &o);
	if (o.log) {
		hm_log_file = fopen(o.log, "ae");
		if (!hm_log_file)
			die("cannot open log file %s: %s", o.log, strerror(errno));
	}
	hm_log_set_limit(o.log_rate, HM_LOG_BURST);
	c.shm_fd = c.epfd = c.sfd = c.tfd = -1;

	/*
	 * Signals first, so that one during setup is not lost.  The signals
	 * sent to stop a program (by hand, a terminal, a service manager) end
	 * it through the event loop: GONE set, socket unlinked.
	 */
	sigemptyset(&mask);
	for (i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaddset(&mask, stop_signals[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	c.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	c.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	c.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c.sfd < 0 || c.tfd < 0 || c.epfd < 0)
		die("signalfd/timerfd/epoll: %s", strerror(errno));

	if (guest_ram_open(&c.ram, o.ram, o.lowmem, err, sizeof(err)))
		die("%s", err);

	size = hmdev_bar_size(&o.cfg);
	if (!size)
		die("bad configuration: layout does not fit");
	make_bar(&c, (size_t)size);
	pthread_mutex_init(&c.srv_mu, NULL);
	c.dev = hmdev_create(&o.cfg, c.bar, c.bar_size, &c.ram, raise_irq, &c,
			     err, sizeof(err));
	if (!c.dev)
		die("device init: %s", err);
	guard_ram(&c, fileno(hm_log_file ? hm_log_file : stderr));
	/* Threads inherit the blocked stop signals: signalfd gets them. */
	if (hmdev_start(c.dev))
		die("cannot start the engine threads");

	if (ivsh_server_listen(&c.srv, o.socket, c.shm_fd, HMIRROR_NUM_VECTORS,
			       err, sizeof(err)))
		die("%s", err);
	c.srv.handshake_ms = o.handshake_ms;
	listening = &c.srv;
	__atomic_store_n(&guard.sock_path, c.srv.path, __ATOMIC_RELEASE);
	atexit(unlink_socket);
	ep_add(&c, c.srv.listen_fd, EPOLLIN, EV_LISTEN);
	c.listen_armed = true;
	ep_add(&c, c.sfd, EPOLLIN, EV_SIGNAL);
	ep_add(&c, c.tfd, EPOLLIN, EV_TIMER);
	if (timerfd_settime(c.tfd, 0, &its, NULL))
		die("timerfd_settime: %s", strerror(errno));

	hm_log_lifecycle("listening on %s: BAR2 %zu KiB, %u queues, RAM %llu MiB in %u file(s), "
	       "%llu MiB below 4 GiB, device memory %u MiB",
	       o.socket, c.bar_size >> 10, 1 + o.cfg.engines,
	       (unsigned long long)(c.ram.total >> 20), c.ram.nfiles,
	       (unsigned long long)(c.ram.below_4g >> 20), o.cfg.vram_mb);
	if (o.ready_fd >= 0) {
		static const char msg[] = "ready\n";

		/* "ready" means the line above is in the log too */
		hm_log_flush(1000);
		if (write(o.ready_fd, msg, sizeof(msg) - 1) != sizeof(msg) - 1)
			hm_log("--ready-fd: write failed: %s", strerror(errno));
		close(o.ready_fd);
	}

	ret = run(&c);
	{
		char line[384];

		cpu_use_format(&c.cpu, line, sizeof(line));
		hm_log_lifecycle("%s", line);
	}
	cleanup(&c);
	return ret;
}
