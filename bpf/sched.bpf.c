/* ctop: scheduler programs: run-queue latency, voluntary/involuntary switches and who preempted whom. */
#include "ctop.h"

/* floor(log2 v) for v >= 1, by halving the search range: no loop. */
static __always_inline u64 log2_floor(u64 v)
{
    u64 r = (v > 0xFFFFFFFFULL) << 5;
    v >>= r;
    u64 shift = (v > 0xFFFF) << 4;
    v >>= shift;
    r |= shift;
    shift = (v > 0xFF) << 3;
    v >>= shift;
    r |= shift;
    shift = (v > 0xF) << 2;
    v >>= shift;
    r |= shift;
    shift = (v > 0x3) << 1;
    v >>= shift;
    r |= shift;
    return r | (v >> 1);
}

/* The histogram slot of a wait (the bucket layout is described in ctop.h). */
static __always_inline u64 runq_slot(u64 wait_ns)
{
    u64 u = wait_ns >> RUNQ_UNIT_SHIFT;
    if (u < RUNQ_SUBS)
        return u;
    u64 e = log2_floor(u);
    u64 slot = ((e - RUNQ_SUB_BITS + 1) << RUNQ_SUB_BITS) | ((u >> (e - RUNQ_SUB_BITS)) & (RUNQ_SUBS - 1));
    return slot < RUNQ_SLOTS ? slot : RUNQ_SLOTS - 1;
}

static __always_inline void record_wait(struct cgroup_counters *c, u64 wait_ns)
{
    u64 slot = runq_slot(wait_ns);
    asm volatile("" : "+r"(slot));  /* keep the check below: the verifier needs it on the register it indexes with */
    if (slot >= RUNQ_SLOTS)
        return;
    c->runq_hist[slot] += 1;
    c->runq_sum_ns += wait_ns;
    if (wait_ns > c->runq_max_ns)
        c->runq_max_ns = wait_ns;
}

/* One more preemption of `victim`'s tasks by `culprit`'s (an evicted pair starts again from zero). */
static __always_inline void count_culprit(u64 victim, u64 culprit)
{
    struct culprit_key key = {.victim = victim, .culprit = culprit};
    u64 *n = culprits.lookup(&key);
    if (n) {
        *n += 1;
        return;
    }
    u64 one = 1;
    culprits.update(&key, &one);
}

/* The state of the task coming in (NULL when it is idle or untracked); its pid in *next. In raw-tracepoint mode
 * the pid is read here from its task_struct, so only switches that need it pay for the read. */
static __always_inline struct thread_state *next_state(u32 *next, void *next_task)
{
#ifdef RAW_SCHED_SWITCH
    bpf_probe_read_kernel(next, sizeof(*next), (char *)next_task + PID_OFFSET);
#endif
    return *next ? thread_get(*next) : 0;
}

/* The work of one context switch on this CPU: `prev` (the current task) leaves, `next` comes in. `preempted`: prev
 * is still runnable (an involuntary switch); `exiting`: prev's last switch. In raw-tracepoint mode `next` is 0 and
 * `next_task` its task_struct.
 *
 * Culprits: when a host task takes the CPU from a workload's task, the victim's cgroup is parked in the host task's
 * own state (`victim`): the next switch on this CPU is that task's switch-out, which names the culprit (or parks
 * the victim in the host task that runs next). No per-CPU slot is read on the switches that have no victim. */
static __always_inline int on_switch(u32 prev, u32 next, void *next_task, int preempted, int exiting)
{
    u64 next_cgroup = 0;
    struct thread_state *nt = 0;
#ifdef RUN_DELAY_OFFSET
    /* The idle task leaving needs nothing: it has no counters and never holds a victim. */
    if (!prev)
        return 0;
#else
    u64 now = bpf_ktime_get_ns();
    nt = next_state(&next, next_task);
    if (nt)
        next_cgroup = nt->cgroup_id;
    /* Timestamp mode: `next` waited since its wake-up or preemption. */
    if (nt && (nt->last & VALID_BASELINE)) {
        u64 waited = now - (nt->last & ~VALID_BASELINE);
        nt->last = 0;
        struct cgroup_counters *nc = thread_counters(nt, next_cgroup);
        if (nc)
            record_wait(nc, waited);
    }
    if (!prev)
        return 0;
#endif

    struct thread_state *pt = thread_get(prev);
    u64 prev_cgroup;
    if (pt) {
        prev_cgroup = pt->cgroup_id;
    } else if (exiting) {
        prev_cgroup = 0;
    } else {
        prev_cgroup = current_cgroup(prev);
        pt = thread_get(prev);
    }
    u64 victim = pt ? pt->victim : 0;
#ifdef RUN_DELAY_OFFSET
    /* next's cgroup only names who preempted a task: not needed for most switches of a quiet host. */
    if (preempted || victim) {
        nt = next_state(&next, next_task);
        if (nt)
            next_cgroup = nt->cgroup_id;
    }
#endif
    if (victim && pt) {
        /* A host task (prev) took this CPU from `victim`'s task. When it only woke briefly (it sleeps again now),
         * the culprit is the workload that runs after it (host tasks that come in between are passed over too);
         * when it ran until preempted, or the CPU goes back to the victim's cgroup, the culprit is the host. */
        int brief = prev_cgroup == ROOT_CGROUP_ID && !preempted;
        if (brief && nt && next_cgroup == ROOT_CGROUP_ID)
            nt->victim = victim;
        else
            count_culprit(victim, (brief && next && next_cgroup && next_cgroup != victim) ? next_cgroup
                                                                                         : ROOT_CGROUP_ID);
        pt->victim = 0;
    }
    struct cgroup_counters *c = thread_counters(pt, prev_cgroup);
    if (!c)
        return 0;
    if (preempted) {
        c->nivcsw += 1;
        if (next && next_cgroup != prev_cgroup) {
            if (next_cgroup == ROOT_CGROUP_ID)
                c->preempted_by_host += 1;
            else if (next_cgroup)
                c->preempted_by_others += 1;
            if (next_cgroup == ROOT_CGROUP_ID && prev_cgroup && nt)
                nt->victim = prev_cgroup;  /* named at the host task's switch-out */
            else if (next_cgroup && prev_cgroup)
                count_culprit(prev_cgroup, next_cgroup);
        }
    } else {
        c->nvcsw += 1;
    }
#ifdef RUN_DELAY_OFFSET
    /* BTF mode: prev is current; its run_delay grew by the wait that preceded the run now ending. */
    if (pt) {
        u64 run_delay = 0;
#ifdef CURRENT_TASK_BTF
        /* A BTF-typed task pointer: a plain load the verifier checks against the kernel's own layout (no helper). */
        run_delay = *(volatile u64 *)((char *)bpf_get_current_task_btf() + RUN_DELAY_OFFSET);
#else
        void *task = (void *)bpf_get_current_task();
        bpf_probe_read_kernel(&run_delay, sizeof(run_delay), task + RUN_DELAY_OFFSET);
#endif
        if (pt->last & VALID_BASELINE)
            record_wait(c, run_delay - (pt->last & ~VALID_BASELINE));
        pt->last = run_delay | VALID_BASELINE;
    }
#else
    if (pt && preempted)
        pt->last = now | VALID_BASELINE;
#endif
    if (exiting)
        thread_forget(prev);
    return 0;
}

#ifdef RAW_SCHED_SWITCH
/* Raw tracepoint (Linux >= 5.18, with BTF offsets): no trace record is filled before the program runs. Arguments:
 * preempt, prev, next, prev_state (the task's own state bits, TASK_DEAD 0x80 for its last switch). prev is the
 * current task. */
RAW_TRACEPOINT_PROBE(sched_switch)
{
    u32 prev = (u32)bpf_get_current_pid_tgid();
    u64 state = ctx->args[3];
    return on_switch(prev, 0, (void *)ctx->args[2], ctx->args[0] || !(u32)state, (state & TASK_DEAD_) != 0);
}
#else
TRACEPOINT_PROBE(sched, sched_switch)
{
    long state = args->prev_state;
    /* Involuntary: still runnable (0) or preempted (TASK_REPORT_MAX, 0x100, no state bit of TASK_REPORT). */
    return on_switch(args->prev_pid, args->next_pid, 0, (state & 0xff) == 0,
                     (state & (STATE_EXIT_DEAD | STATE_EXIT_ZOMBIE)) != 0);
}
#endif

#ifndef RUN_DELAY_OFFSET
static __always_inline void mark_woken(u32 tid)
{
    struct thread_state *t = thread_get(tid);
    if (t && !(t->last & VALID_BASELINE))
        t->last = bpf_ktime_get_ns() | VALID_BASELINE;
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    mark_woken(args->pid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    mark_woken(args->pid);
    return 0;
}
#endif
