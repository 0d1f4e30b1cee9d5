/* ctop: process churn programs: forks, execs (with a bounded log), exits and OOM kills per cgroup. */
#include "ctop.h"

TRACEPOINT_PROBE(sched, sched_process_fork)
{
    u32 parent = args->parent_pid;
    u64 id = current_cgroup(parent);
    u64 v1_id = 0;
#ifdef V1_HIERARCHY
    struct thread_state *p = thread_get(parent);
    if (p)
        v1_id = p->v1_id;
#endif
    /* A new task starts with run_delay 0 and no pending wake-up: its baseline is known. */
#ifdef RUN_DELAY_OFFSET
    thread_put(args->child_pid, id, VALID_BASELINE, v1_id);
#else
    thread_put(args->child_pid, id, 0, v1_id);
#endif
    struct cgroup_counters *c = cgroup_get(id);
    if (c)
        c->forks += 1;
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    u32 pid = args->pid;
    u64 id = current_cgroup(pid);
    struct cgroup_counters *c = cgroup_get(id);
    if (c)
        c->execs += 1;

    u64 seq = next_seq(SEQ_EXEC);
    u32 slot = (seq - 1) % EXEC_LOG_SIZE;
    struct exec_record *r = exec_log.lookup(&slot);
    if (!r)
        return 0;
    r->seq = 0;
    r->time_ns = bpf_ktime_get_ns();
    r->cgroup_id = id;
    r->pid = pid;
    r->ppid = 0;
#if defined(REAL_PARENT_OFFSET) && defined(TGID_OFFSET)
    {
        void *task = (void *)bpf_get_current_task();
        void *parent = 0;
        u32 ppid = 0;
        bpf_probe_read_kernel(&parent, sizeof(parent), task + REAL_PARENT_OFFSET);
        if (parent)
            bpf_probe_read_kernel(&ppid, sizeof(ppid), parent + TGID_OFFSET);
        r->ppid = ppid;
    }
#endif
    bpf_get_current_comm(&r->comm, sizeof(r->comm));
    TP_DATA_LOC_READ_STR(&r->filename, filename, sizeof(r->filename));
    r->args_len = 0;
#if defined(MM_OFFSET) && defined(ARG_START_OFFSET) && defined(ARG_END_OFFSET)
    {
        /* The new program's argv, NUL-separated, from its stack: the exec has set mm->arg_start..arg_end. */
        void *task = (void *)bpf_get_current_task();
        void *mm = 0;
        u64 start = 0, end = 0;
        bpf_probe_read_kernel(&mm, sizeof(mm), task + MM_OFFSET);
        if (mm) {
            bpf_probe_read_kernel(&start, sizeof(start), mm + ARG_START_OFFSET);
            bpf_probe_read_kernel(&end, sizeof(end), mm + ARG_END_OFFSET);
        }
        if (start && end > start) {
            u64 total = end - start;
            u32 len = total < EXEC_ARGS_LEN ? total : EXEC_ARGS_LEN;
            asm volatile("" : "+r"(len));  /* the verifier bounds the size on the register passed */
            if (len > 0 && len <= EXEC_ARGS_LEN && bpf_probe_read_user(&r->args, len, (void *)start) == 0)
                r->args_len = total < 0xFFFFFFFF ? total : 0xFFFFFFFF;
        }
    }
#endif
    r->seq = seq;
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    /* The thread's state is dropped at its last context switch (prev_state EXIT_*), which follows. */
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    u64 id = current_cgroup(tid);
    struct cgroup_counters *c = cgroup_get(id);
    if (c)
        c->exits += 1;
    return 0;
}

TRACEPOINT_PROBE(oom, mark_victim)
{
    u32 pid = args->pid;
    struct thread_state *t = thread_get(pid);
    u64 id = t ? t->cgroup_id : 0;
    if (!t)
        count(C_EVENTS_UNATTRIBUTED);
    struct cgroup_counters *c = cgroup_get(id);
    if (c)
        c->oom_kills += 1;

    u64 seq = next_seq(SEQ_OOM);
    u32 slot = (seq - 1) % OOM_LOG_SIZE;
    struct oom_record *r = oom_log.lookup(&slot);
    if (!r)
        return 0;
    r->seq = 0;
    r->time_ns = bpf_ktime_get_ns();
    r->cgroup_id = id;
    r->pid = pid;
    TP_DATA_LOC_READ_STR(&r->comm, comm, sizeof(r->comm));
    r->seq = seq;
    return 0;
}
