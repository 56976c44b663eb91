/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror tracepoints: the fault path and invalidations, for trace-cmd and
 * perf (events hmirror:*).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM hmirror

#if !defined(HMIRROR_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define HMIRROR_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(hmirror_fault_begin,
	    TP_PROTO(u32 ctx, u64 start, unsigned long npages,
		     unsigned long ahead, bool write),
	    TP_ARGS(ctx, start, npages, ahead, write),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, start)
			     __field(unsigned long, npages)
			     __field(unsigned long, ahead)
			     __field(bool, write)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->start = start;
			   __entry->npages = npages;
			   __entry->ahead = ahead;
			   __entry->write = write;),
	    TP_printk("ctx=%u start=0x%llx npages=%lu ahead=%lu %s",
		      __entry->ctx, __entry->start, __entry->npages,
		      __entry->ahead, __entry->write ? "write" : "read")
);

TRACE_EVENT(hmirror_fault_end,
	    TP_PROTO(u32 ctx, u64 start, int ret, u64 ns),
	    TP_ARGS(ctx, start, ret, ns),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, start)
			     __field(int, ret)
			     __field(u64, ns)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->start = start;
			   __entry->ret = ret;
			   __entry->ns = ns;),
	    TP_printk("ctx=%u start=0x%llx ret=%d ns=%llu",
		      __entry->ctx, __entry->start, __entry->ret, __entry->ns)
);

TRACE_EVENT(hmirror_fault_retry,
	    TP_PROTO(u32 ctx, u64 start, const char *cause),
	    TP_ARGS(ctx, start, cause),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, start)
			     __string(cause, cause)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->start = start;
			   __assign_str(cause);),
	    TP_printk("ctx=%u start=0x%llx cause=%s",
		      __entry->ctx, __entry->start, __get_str(cause))
);

TRACE_EVENT(hmirror_inv_begin,
	    TP_PROTO(u32 ctx, u64 start, u64 end, int event, bool blockable),
	    TP_ARGS(ctx, start, end, event, blockable),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, start)
			     __field(u64, end)
			     __field(int, event)
			     __field(bool, blockable)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->start = start;
			   __entry->end = end;
			   __entry->event = event;
			   __entry->blockable = blockable;),
	    TP_printk("ctx=%u [0x%llx, 0x%llx) event=%d%s",
		      __entry->ctx, __entry->start, __entry->end, __entry->event,
		      __entry->blockable ? "" : " nonblock")
);

TRACE_EVENT(hmirror_inv_end,
	    TP_PROTO(u32 ctx, u64 start, u64 end, int ret, u64 ns),
	    TP_ARGS(ctx, start, end, ret, ns),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, start)
			     __field(u64, end)
			     __field(int, ret)
			     __field(u64, ns)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->start = start;
			   __entry->end = end;
			   __entry->ret = ret;
			   __entry->ns = ns;),
	    TP_printk("ctx=%u [0x%llx, 0x%llx) ret=%d ns=%llu",
		      __entry->ctx, __entry->start, __entry->end, __entry->ret,
		      __entry->ns)
);

#endif /* HMIRROR_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE hmirror_trace
#include <trace/define_trace.h>
