/* SPDX-License-Identifier: MIT */
/*
 * The ivshmem server protocol (QEMU docs/specs/ivshmem-spec.txt) as spoken to
 * QEMU 7.2's ivshmem-doorbell: a unix stream socket, every message one
 * little-endian int64 optionally carrying one fd (SCM_RIGHTS).  On connect
 * the server sends
 *   0 (protocol version), 1 (the client's peer id), -1 + shm fd,
 *   nvec x (0 + peer-0 eventfd)   -- the device's doorbells
 *   nvec x (1 + peer-1 eventfd)   -- the guest's MSI-X vectors
 * The model is peer 0 and has no socket of its own.
 *
 * Who is QEMU.  The socket is created 0600 and a connection from another
 * uid than the server's (SO_PEERCRED) is closed at once.  Every accepted
 * connection gets the setup and is "pending" (up to IVSH_MAX_PENDING at
 * once, each with its own eventfds) until one of:
 *  - it has read the whole setup while still connected (the server polls
 *    SIOCOUTQ): the handshake is complete, it becomes the client ("QEMU"),
 *    and the other pending connections are closed;
 *  - it writes anything (QEMU never writes; another hmirror-dev probing the
 *    socket sends IVSH_PROBE_MAGIC), closes or half-closes: dropped;
 *  - the handshake timeout passes: dropped.
 * So a peer that connects and goes away, or connects and stays silent,
 * never keeps QEMU out.  While there is a client, new connections are
 * closed at once (one guest at a time).  The client going away (EOF) is QEMU
 * exiting; a client that writes is dropped and the server listens again.
 *
 * Time is the caller's (milliseconds, any monotonic origin), so that the
 * server can be driven deterministically (tests/fuzz/fuzz_server.c).
 */
#ifndef HMDEV_IVSHMEM_SERVER_H
#define HMDEV_IVSHMEM_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#define IVSH_PROTOCOL_VERSION	0
#define IVSH_DEV_PEER		0	/* the device model */
#define IVSH_GUEST_PEER		1	/* the (only) QEMU client */
#define IVSH_MAX_VECTORS	8
#define IVSH_PROBE_MAGIC	0x0045424f52504d48ll	/* "HMPROBE" */
#define IVSH_MAX_PENDING	4
#define IVSH_HANDSHAKE_MS	30000	/* default handshake timeout */

/* Results of ivsh_server_poll() and ivsh_server_client_event(). */
enum ivsh_event {
	IVSH_NOTHING = 0,	/* nothing the caller must act on */
	IVSH_CLIENT_UP = 1,	/* a pending peer became the client: watch its fds */
	IVSH_CLIENT_GONE = 2,	/* the client (QEMU) went away: exit */
	IVSH_NOT_QEMU = 3,	/* the client wrote to us: drop it, keep listening */
	IVSH_ERROR = -1,	/* accept itself failed */
};

/* A connection that got the setup and has not read all of it yet. */
struct ivsh_pending {
	int fd;
	uint64_t deadline_ms;
	int dev_efd[IVSH_MAX_VECTORS];
	int guest_efd[IVSH_MAX_VECTORS];
};

struct ivsh_server {
	int listen_fd;
	int client_fd;			/* -1: no client */
	int shm_fd;			/* not owned */
	unsigned nvec;
	uid_t uid;			/* the only uid that may connect */
	unsigned handshake_ms;		/* pending peers are dropped after this */
	int dev_efd[IVSH_MAX_VECTORS];	/* peer 0: guest rings, we read */
	int guest_efd[IVSH_MAX_VECTORS]; /* peer 1: we write, guest MSI-X */
	struct ivsh_pending pending[IVSH_MAX_PENDING];
	unsigned npending;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	/* what happened to connections that did not become the client */
	unsigned refused;		/* while there was a client */
	unsigned refused_uid;		/* another uid */
	unsigned not_qemu;		/* wrote to us */
	unsigned closed_early;		/* went away before the handshake */
	unsigned timed_out;		/* silent until the timeout */
};

/*
 * The shared memory handed to every client: a memfd of @size bytes, sealed
 * against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
 * so that no peer can ftruncate() it under the model's mappings.  Returns
 * the fd, or -1 with a one-line reason in err.
 */
int ivsh_shm_create(const char *name, size_t size, char *err, size_t errlen);

/*
 * Create the listening socket at @path, mode 0600, accepting the effective
 * uid only.  An existing path is replaced only if it is a stale socket
 * (nobody accepting); anything else is refused.  Returns 0, or -1 with a
 * one-line reason in err.  handshake_ms is IVSH_HANDSHAKE_MS; the caller may
 * change it (or uid) afterwards.
 */
int ivsh_server_listen(struct ivsh_server *s, const char *path, int shm_fd,
		       unsigned nvec, char *err, size_t errlen);

/* The listening socket should be watched (no room: leave them queued). */
int ivsh_server_can_accept(const struct ivsh_server *s);

/*
 * Accept one pending connection at time @now_ms: refused (other uid, a
 * client already up, no room), or sent the setup and made pending.
 * IVSH_NOTHING, or IVSH_ERROR if accept itself failed.
 */
int ivsh_server_accept(struct ivsh_server *s, uint64_t now_ms);

/*
 * Look at the pending connections at time @now_ms (call it on a timer, and
 * before accepting): IVSH_CLIENT_UP if one completed the handshake (its fds
 * are now client_fd/dev_efd/guest_efd), else IVSH_NOTHING.
 */
int ivsh_server_poll(struct ivsh_server *s, uint64_t now_ms);

/*
 * client_fd became readable: IVSH_NOTHING, IVSH_CLIENT_GONE or
 * IVSH_NOT_QEMU.  The caller must drop the client (after removing its fds
 * from its poll set) on the latter two.
 */
int ivsh_server_client_event(struct ivsh_server *s);

/* Drain doorbell eventfd @v: number of rings (0 if none). */
uint64_t ivsh_server_doorbell_read(struct ivsh_server *s, unsigned v);

/* Raise guest vector @v.  Returns 0, or -1 if there is no client. */
int ivsh_server_notify(struct ivsh_server *s, unsigned v);

void ivsh_server_drop_client(struct ivsh_server *s);
/* Close everything (client and pending peers) and unlink the socket path. */
void ivsh_server_close(struct ivsh_server *s);

/* Protocol primitives (also used by the tests' fake client). */
int ivsh_send_msg(int sock, int64_t msg, int fd);
/*
 * Receive one message: 1 on success (*fd = received fd or -1), 0 on EOF,
 * -1 on error or timeout (@timeout_ms < 0: wait forever).  Every fd that
 * arrives beyond the first is closed.
 */
int ivsh_recv_msg(int sock, int64_t *msg, int *fd, int timeout_ms);

#endif
