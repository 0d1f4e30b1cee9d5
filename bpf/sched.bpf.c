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

/* One more preemption of `victim`'s tasks by `culprit`'s, in the `culprits` map (an evicted pair starts again from
 * zero); returns this CPU's count of the pair (0 when it could not be counted). */
static __always_inline u64 count_culprit(u64 victim, u64 culprit)
{
    struct culprit_key key = {.victim = victim, .culprit = culprit};
    u64 *n = culprits.lookup(&key);
    if (n) {
        *n += 1;
        return *n;
    }
    u64 one = 1;
    return culprits.update(&key, &one) ? 0 : 1;
}

/* One more preemption of the tasks of the cgroup whose counters (on this CPU) are `vc` by `culprit`'s: in a slot
 * of `vc` when the pair holds one, else in the map, after which a busy pair claims a free slot (see ctop.h). */
static __always_inline void count_culprit_of(struct cgroup_counters *vc, u64 victim, u64 culprit)
{
    if (vc->culprit_id[0] == culprit) {
        vc->culprit_count[0] += 1;
        return;
    }
    if (vc->culprit_id[1] == culprit) {
        vc->culprit_count[1] += 1;
        return;
    }
    if (count_culprit(victim, culprit) < CULPRIT_CLAIM_AT)
        return;
    if (!vc->culprit_id[0])
        vc->culprit_id[0] = culprit;
    else if (!vc->culprit_id[1])
        vc->culprit_id[1] = culprit;
}

#ifndef RUN_DELAY_OFFSET
/* Timestamp mode: the state of the task coming in (NULL when it is idle or untracked). */
static __always_inline struct thread_state *next_state(u32 next)
{
    return next ? thread_get(next) : 0;
}
#endif

/* The task now leaving this CPU (of cgroup `culprit`, `preempted` or not) is the one that took the CPU when
 * `pp->victim`'s task was preempted here, or one that ran after it: name who preempted the victim. A host task that
 * sleeps again at once (a kernel thread: RCU, softirqs, workers) is passed over and the culprit is the workload
 * that runs after it; when the CPU goes back to the victim's cgroup after such a task, or a host task ran until it
 * was preempted itself, the culprit is the host. A task of the victim's own cgroup is no culprit. */
static __always_inline void settle_preemption(struct pending_preemption *pp, u64 culprit, int preempted)
{
    u64 victim = pp->victim;
    u64 via_host = pp->via_host;
    if (culprit == victim && !via_host) {
        pp->victim = 0;
        return;
    }
    if (culprit == ROOT_CGROUP_ID && !preempted) {
        pp->via_host = 1;  /* settled by the next switch on this CPU */
        return;
    }
    pp->victim = 0;
    if (culprit == victim || !culprit) {
        if (!via_host)
            return;
        culprit = ROOT_CGROUP_ID;
    }
    u32 index = pp->victim_slot - 1;
    struct cgroup_counters *vc = cgroups.lookup(&index);
    if (!vc)
        return;
    if (via_host || culprit == ROOT_CGROUP_ID)
        vc->preempted_by_host += 1;
    else
        vc->preempted_by_others += 1;
    count_culprit_of(vc, victim, culprit);
}

/* The work of one context switch on this CPU: `prev` (the current task) leaves, `next` comes in (its pid only in
 * timestamp mode). `preempted`: prev is still runnable (an involuntary switch); `exiting`: prev's last switch.
 * `task`: prev's task_struct when the caller has it (BTF-typed), else NULL and it is fetched when needed.
 *
 * Culprits: a preemption is parked in this CPU's `pending` slot; the next switch on this CPU is the switch-out of
 * the task that took the CPU, which names the culprit from its own state (nothing is read of the incoming task). */
static __always_inline int on_switch(u32 prev, u32 next, int preempted, int exiting, char *task)
{
#ifndef RUN_DELAY_OFFSET
    u64 now = bpf_ktime_get_ns();
    struct thread_state *nt = next_state(next);
    /* Timestamp mode: `next` waited since its wake-up or preemption. */
    if (nt && (nt->last & VALID_BASELINE)) {
        u64 waited = now - (nt->last & ~VALID_BASELINE);
        nt->last = 0;
        struct cgroup_counters *nc = thread_counters(nt, nt->cgroup_id);
        if (nc)
            record_wait(nc, waited);
    }
#endif
    /* The idle task leaving needs nothing: it has no counters and never takes a CPU from a task. */
    if (!prev)
        return 0;

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
    u32 zero = 0;
    struct pending_preemption *pp = pending.lookup(&zero);
    if (pp && pp->victim)
        settle_preemption(pp, prev_cgroup, preempted);
    struct cgroup_counters *c = thread_counters(pt, prev_cgroup);
    if (!c)
        return 0;
    if (preempted) {
        c->nivcsw += 1;
        if (pp && pt && pt->slot && prev_cgroup) {
            pp->victim = prev_cgroup;
            pp->victim_slot = pt->slot;
            pp->via_host = 0;
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
        if (!task)
            task = (char *)bpf_get_current_task_btf();
        run_delay = *(volatile u64 *)(task + RUN_DELAY_OFFSET);
#else
        bpf_probe_read_kernel(&run_delay, sizeof(run_delay), (char *)bpf_get_current_task() + RUN_DELAY_OFFSET);
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

#if defined(BTF_SCHED_SWITCH) || defined(RAW_SCHED_SWITCH)
/* The raw sched_switch arguments (both raw forms): preempt, prev, next, prev_state (the task's own state bits,
 * TASK_DEAD 0x80 for its last switch); `prev` is thread `tid`, `task` its task_struct or NULL. */
static __always_inline int on_raw_switch(u64 *args, u32 tid, char *task)
{
    u64 state = args[3];
    return on_switch(tid, 0, args[0] || !(u32)state, (state & TASK_DEAD_) != 0, task);
}
#endif

#if defined(BTF_SCHED_SWITCH)
/* BTF-typed raw tracepoint (tp_btf; Linux >= 5.18 here, loaded by ctop/ebpf/tracing.py as bcc cannot): the same
 * arguments as the raw tracepoint below, but typed, so prev's pid and run_delay are plain loads from its task
 * pointer and a switch makes no helper call at all. */
int tp_btf__sched_switch(u64 *ctx)
{
    char *prev = (char *)ctx[1];
    return on_raw_switch(ctx, *(volatile u32 *)(prev + PID_OFFSET), prev);
}
#elif defined(RAW_SCHED_SWITCH)
/* Raw tracepoint (Linux >= 5.18, with BTF offsets): no trace record is filled before the program runs. prev is the
 * current task: with a BTF-typed pointer to it, its pid and run_delay are two loads after one helper call. A helper
 * call costs about as much as the rest of the switch on hosts whose kernel returns are mitigated (AMD's SRSO "safe
 * RET": each return goes through a thunk), so this program makes one. */
RAW_TRACEPOINT_PROBE(sched_switch)
{
#if defined(CURRENT_TASK_BTF) && defined(PID_OFFSET)
    char *task = (char *)bpf_get_current_task_btf();
    return on_raw_switch(ctx->args, *(volatile u32 *)(task + PID_OFFSET), task);
#else
    return on_raw_switch(ctx->args, (u32)bpf_get_current_pid_tgid(), 0);
#endif
}
#else
TRACEPOINT_PROBE(sched, sched_switch)
{
    long state = args->prev_state;
    /* Involuntary: still runnable (0) or preempted (TASK_REPORT_MAX, 0x100, no state bit of TASK_REPORT). */
    return on_switch(args->prev_pid, args->next_pid, (state & 0xff) == 0,
                     (state & (STATE_EXIT_DEAD | STATE_EXIT_ZOMBIE)) != 0, 0);
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
