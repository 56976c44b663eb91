/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: debugfs counters (see hmirror_debugfs.c).
 */
#ifndef HMIRROR_DEBUGFS_H
#define HMIRROR_DEBUGFS_H

struct hmirror_device;

void hmirror_debugfs_init(struct hmirror_device *hdev);

#endif /* HMIRROR_DEBUGFS_H */
