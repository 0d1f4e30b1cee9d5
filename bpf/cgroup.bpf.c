/* ctop: cgroup lifecycle programs: new and removed cgroups at once (user space drops their counters), task moves. */
#include "ctop.h"

static __always_inline void log_cgroup(u32 kind, u64 id, u32 level, const void *args_base, u32 data_loc)
{
    u64 seq = next_seq(SEQ_CGROUP);
    u32 slot = (seq - 1) % CGROUP_LOG_SIZE;
    struct cgroup_record *r = cgroup_log.lookup(&slot);
    if (!r)
        return;
    r->seq = 0;
    r->time_ns = bpf_ktime_get_ns();
    r->cgroup_id = id;
    r->kind = kind;
    r->level = level;
    bpf_probe_read_kernel_str(&r->path, sizeof(r->path), args_base + (data_loc & 0xFFFF));
    r->seq = seq;
}

TRACEPOINT_PROBE(cgroup, cgroup_mkdir)
{
    if (args->root != TRACK_HIERARCHY)
        return 0;
    log_cgroup(1, args->id, args->level, args, args->data_loc_path);
    return 0;
}

TRACEPOINT_PROBE(cgroup, cgroup_rmdir)
{
    if (args->root != TRACK_HIERARCHY)
        return 0;
    log_cgroup(2, args->id, args->level, args, args->data_loc_path);  /* its counters are dropped by user space */
    return 0;
}

TRACEPOINT_PROBE(cgroup, cgroup_attach_task)
{
    if (args->dst_root != TRACK_HIERARCHY)
        return 0;
    u32 tid = args->pid;
    struct thread_state *t = thread_get(tid);
    if (t) {
        t->cgroup_id = args->dst_id;
        t->slot = 0;
    }
    else
        thread_put(tid, args->dst_id, 0);
    return 0;
}
