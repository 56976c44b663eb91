// SPDX-License-Identifier: MIT
/*
 * The device state every layer of the model updates: dev_status, the err_*
 * registers, the counters, the interrupts waiting to be raised, the device
 * clock, the bus-master state and the queues' progress registers.  The
 * bottom layer: it calls no other file of the model but log.c, and only it
 * touches dev->cnt.
 */
#include <string.h>
#include <time.h>

#include "hmdev_internal.h"
#include "log.h"

uint64_t hmdev_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- status and errors ---------------------------------------------- */

uint32_t hmdev_status(struct hmdev *dev)
{
	return __atomic_load_n(&dev->status, __ATOMIC_ACQUIRE);
}

/* err_mu held. */
static void set_status_locked(struct hmdev *dev, uint32_t status)
{
	__atomic_store_n(&dev->status, status, __ATOMIC_RELEASE);
	hm_store_rel(&dev->regs->dev_status, status);
}

void hmdev_set_status(struct hmdev *dev, uint32_t clear, uint32_t set)
{
	pthread_mutex_lock(&dev->err_mu);
	set_status_locked(dev, (dev->status & ~clear) | set);
	pthread_mutex_unlock(&dev->err_mu);
}

void hmdev_error(struct hmdev *dev, uint32_t code, uint32_t queue,
		 uint32_t index, uint64_t info)
{
	struct hmirror_regs *r = dev->regs;
	uint32_t n;

	pthread_mutex_lock(&dev->err_mu);
	n = ++dev->cnt.errors;
	hm_store(&r->err_code, code);
	hm_store(&r->err_queue, queue);
	hm_store(&r->err_index, index);
	hm_store(&r->err_info, info);
	hm_store_rel(&r->err_count, n);
	set_status_locked(dev, dev->status | HMIRROR_DEV_ERROR);
	pthread_mutex_unlock(&dev->err_mu);
	hmdev_pend_irq(dev, HMIRROR_VEC_CTRL);
	/* hm_log is rate limited and never blocks: no cap of our own */
	hm_log("error %u on queue %u index %u info 0x%llx", code, queue, index,
	       (unsigned long long)info);
}

/* ---- interrupts ----------------------------------------------------- */

/*
 * Does the driver spin on queue @qi's completions and faults?  Then the
 * interrupt is not needed.  The fence pairs with the driver's between its
 * clearing drv_polling and its last look at the rings: either it sees what
 * was just written, or this sees it no longer polls.
 */
bool hmdev_driver_polls(struct hmdev *dev, unsigned qi)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return hm_load(&dev->qregs[qi].drv_polling) != 0;
}

void hmdev_pend_irq(struct hmdev *dev, unsigned vector)
{
	__atomic_fetch_or(&dev->pending_irqs, 1u << vector, __ATOMIC_SEQ_CST);
}

void hmdev_flush_irqs(struct hmdev *dev)
{
	uint32_t p = __atomic_exchange_n(&dev->pending_irqs, 0, __ATOMIC_ACQ_REL);
	unsigned v;

	for (v = 0; v < HMIRROR_NUM_VECTORS; v++) {
		if (!(p & (1u << v)))
			continue;
		pthread_mutex_lock(&dev->cnt_mu);
		hm_store(&dev->regs->irq_sent[v], ++dev->cnt.irqs[v]);
		pthread_mutex_unlock(&dev->cnt_mu);
		if (dev->raise_irq)
			dev->raise_irq(dev->irq_opaque, v);
	}
}

/* ---- counters ------------------------------------------------------- */

/*
 * Lock-free: counters are bumped on every translation.  The published
 * value only moves up (a slower thread never stores an older total over a
 * newer one); a reset runs with every engine stopped, so nothing races it.
 */
void hmdev_cnt_add(struct hmdev *dev, uint64_t *priv, __le64 *reg, uint64_t n)
{
	uint64_t v = __atomic_add_fetch(priv, n, __ATOMIC_RELAXED);
	__le64 old = hm_load(reg);	/* the register's own type (clang) */

	(void)dev;
	while (old < v &&
	       !__atomic_compare_exchange_n(reg, &old, v, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void hmdev_count_doorbells(struct hmdev *dev, uint64_t rings)
{
	pthread_mutex_lock(&dev->cnt_mu);
	dev->cnt.doorbells += (uint32_t)rings;
	hm_store(&dev->regs->doorbells_seen, dev->cnt.doorbells);
	pthread_mutex_unlock(&dev->cnt_mu);
}

void hmdev_activity(struct hmdev *dev, uint64_t *commands, uint64_t *events)
{
	pthread_mutex_lock(&dev->cnt_mu);
	*commands = __atomic_load_n(&dev->cnt.commands, __ATOMIC_RELAXED);
	*events = *commands + dev->cnt.doorbells +
		  __atomic_load_n(&dev->cnt.faults, __ATOMIC_RELAXED) +
		  __atomic_load_n(&dev->cnt.replays, __ATOMIC_RELAXED) +
		  __atomic_load_n(&dev->cnt.tlb_invals, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&dev->cnt_mu);
}

void hmdev_heartbeat(struct hmdev *dev)
{
	hm_store(&dev->regs->dev_time_ns, hmdev_now_ns());
	hm_store_rel(&dev->regs->heartbeat, ++dev->cnt.heartbeat);
}

void hmdev_state_reset(struct hmdev *dev)
{
	struct hmirror_regs *r = dev->regs;
	uint64_t hb;
	unsigned v;

	pthread_mutex_lock(&dev->err_mu);
	pthread_mutex_lock(&dev->cnt_mu);
	hb = dev->cnt.heartbeat;	/* the heartbeat never restarts */
	memset(&dev->cnt, 0, sizeof(dev->cnt));
	dev->cnt.heartbeat = hb;
	pthread_mutex_unlock(&dev->cnt_mu);
	hm_store(&r->err_count, 0);
	hm_store(&r->err_code, 0);
	hm_store(&r->err_queue, 0);
	hm_store(&r->err_index, 0);
	hm_store(&r->err_info, 0);
	for (v = 0; v < HMIRROR_NUM_VECTORS; v++)
		hm_store(&r->irq_sent[v], 0);
	hm_store(&r->doorbells_seen, 0);
	hm_store(&r->cnt_commands, 0);
	hm_store(&r->cnt_faults, 0);
	hm_store(&r->cnt_replays, 0);
	hm_store(&r->cnt_cancels, 0);
	hm_store(&r->cnt_tlb_hits, 0);
	hm_store(&r->cnt_tlb_misses, 0);
	hm_store(&r->cnt_tlb_invals, 0);
	hm_store(&r->cnt_pages_walked, 0);
	hm_store(&r->cnt_shootdowns, 0);

	set_status_locked(dev, HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED |
			  (dev->status & HMIRROR_DEV_DMA_OFF));
	pthread_mutex_unlock(&dev->err_mu);
}

/* ---- bus mastering -------------------------------------------------- */

bool hmdev_dma_allowed(struct hmdev *dev)
{
	/*
	 * Both: our acknowledged state (so nothing starts before the driver's
	 * BUS_MASTER is acknowledged), and drv_ctrl itself (so a driver that
	 * clears it stops us at the next chunk, before it even asks).
	 */
	return !__atomic_load_n(&dev->dma_off, __ATOMIC_ACQUIRE) &&
	       (hm_load_acq(&dev->regs->drv_ctrl) & HMIRROR_DRV_BUS_MASTER);
}

void hmdev_set_bus_master(struct hmdev *dev, bool on)
{
	if (on) {
		__atomic_store_n(&dev->dma_off, false, __ATOMIC_RELEASE);
	} else {
		/* waits out every chunk, walk and fault sizing in progress */
		pthread_rwlock_wrlock(&dev->inval_lock);
		__atomic_store_n(&dev->dma_off, true, __ATOMIC_RELEASE);
		pthread_rwlock_unlock(&dev->inval_lock);
	}
	hmdev_set_status(dev, on ? HMIRROR_DEV_DMA_OFF : 0,
			 on ? 0 : HMIRROR_DEV_DMA_OFF);
}

/* ---- queue progress ------------------------------------------------- */

void hmdev_progress(struct hmdev *dev, unsigned qi)
{
	struct hmdev_queue *q = &dev->q[qi];

	hm_store_rel(&dev->qregs[qi].progress, ++q->progress);
}
