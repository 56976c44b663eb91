/* SPDX-License-Identifier: MIT */
/*
 * The ivshmem server protocol (QEMU docs/specs/ivshmem-spec.txt) as spoken to
 * QEMU 7.2's ivshmem-doorbell: a unix stream socket, every message one
 * little-endian int64 optionally carrying one fd (SCM_RIGHTS).  On connect
 * the server sends
 *   0 (protocol version), 1 (the client's peer id), -1 + shm fd,
 *   nvec x (0 + peer-0 eventfd)   -- the device's doorbells
 *   nvec x (1 + peer-1 eventfd)   -- the guest's MSI-X vectors
 * The model is peer 0 and has no socket of its own.  One client at a time;
 * a second connection is closed at once.
 *
 * QEMU never writes to this socket, so a client going away without having
 * sent anything is QEMU exiting (the server then exits too), while a
 * connection that sent bytes is not QEMU (e.g. another hmirror-dev checking
 * whether the socket is live, which sends IVSH_PROBE_MAGIC): it is dropped
 * and the server keeps listening.
 */
#ifndef HMDEV_IVSHMEM_SERVER_H
#define HMDEV_IVSHMEM_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#define IVSH_PROTOCOL_VERSION	0
#define IVSH_DEV_PEER		0	/* the device model */
#define IVSH_GUEST_PEER		1	/* the (only) QEMU client */
#define IVSH_MAX_VECTORS	8
#define IVSH_PROBE_MAGIC	0x0045424f52504d48ll	/* "HMPROBE" */

/* Results of ivsh_server_accept() and ivsh_server_client_event(). */
enum ivsh_event {
	IVSH_NOTHING = 0,	/* nothing changed (refused, transient error) */
	IVSH_CLIENT_UP = 1,	/* a client is set up */
	IVSH_CLIENT_GONE = 2,	/* the client (QEMU) went away: exit */
	IVSH_NOT_QEMU = 3,	/* the "client" wrote to us: dropped, listening */
	IVSH_ERROR = -1,	/* accept itself failed */
};

struct ivsh_server {
	int listen_fd;
	int client_fd;			/* -1: no client */
	int shm_fd;			/* not owned */
	unsigned nvec;
	int dev_efd[IVSH_MAX_VECTORS];	/* peer 0: guest rings, we read */
	int guest_efd[IVSH_MAX_VECTORS]; /* peer 1: we write, guest MSI-X */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned refused;		/* extra connections closed */
	int got_data;			/* the client wrote to us: not QEMU */
};

/*
 * Create the listening socket at @path.  An existing path is replaced only
 * if it is a stale socket (nobody accepting); anything else is refused.
 * Returns 0, or -1 with a one-line reason in err.
 */
int ivsh_server_listen(struct ivsh_server *s, const char *path, int shm_fd,
		       unsigned nvec, char *err, size_t errlen);

/*
 * Accept a pending connection: IVSH_CLIENT_UP (setup sent, eventfds
 * created), IVSH_NOTHING (refused: already a client), IVSH_CLIENT_GONE or
 * IVSH_NOT_QEMU (sending the setup failed; see above), IVSH_ERROR.  After
 * GONE and NOT_QEMU there is no client.
 */
int ivsh_server_accept(struct ivsh_server *s);

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
/* Close everything and unlink the socket path. */
void ivsh_server_close(struct ivsh_server *s);

/* Protocol primitives (also used by the tests' fake client). */
int ivsh_send_msg(int sock, int64_t msg, int fd);
/*
 * Receive one message: 1 on success (*fd = received fd or -1), 0 on EOF,
 * -1 on error or timeout (@timeout_ms < 0: wait forever).
 */
int ivsh_recv_msg(int sock, int64_t *msg, int *fd, int timeout_ms);

#endif
