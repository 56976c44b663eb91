/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: test_hmm compatible character devices (see hmirror_compat.c).
 */
#ifndef HMIRROR_COMPAT_H
#define HMIRROR_COMPAT_H

struct hmirror_device;

int hmirror_compat_add(struct hmirror_device *hdev);
void hmirror_compat_remove(struct hmirror_device *hdev);

#endif /* HMIRROR_COMPAT_H */
