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

/* The id of a cgroup of hierarchy `root` as the programs key it (v1 cpu cgroups tagged); 0: not tracked. */
static __always_inline u64 tracked_id(u32 root, u64 id)
{
    if (root == TRACK_HIERARCHY)
        return id;
#ifdef V1_HIERARCHY
    if (root == V1_HIERARCHY)
        return V1_TAG | id;
#endif
    return 0;
}

TRACEPOINT_PROBE(cgroup, cgroup_mkdir)
{
    u64 id = tracked_id(args->root, args->id);
    if (id)
        log_cgroup(1, id, args->level, args, args->data_loc_path);
    return 0;
}

TRACEPOINT_PROBE(cgroup, cgroup_rmdir)
{
    u64 id = tracked_id(args->root, args->id);
    if (id)
        log_cgroup(2, id, args->level, args, args->data_loc_path);  /* its counters are dropped by user space */
    return 0;
}

TRACEPOINT_PROBE(cgroup, cgroup_attach_task)
{
    u32 tid = args->pid;
    if (args->dst_root == TRACK_HIERARCHY) {
        struct thread_state *t = thread_get(tid);
        u64 id = cgroup_key(args->dst_id, t ? t->v1_id : 0);
        if (t) {
            t->cgroup_id = id;
            t->slot = 0;
        }
        else
            thread_put(tid, id, 0, 0);
        return 0;
    }
#ifdef V1_HIERARCHY
    if (args->dst_root == V1_HIERARCHY) {
        /* Moved in the v1 cpu hierarchy: that decides its key only while its cgroup2 cgroup is the root. */
        struct thread_state *t = thread_get(tid);
        if (!t)
            return 0;
        t->v1_id = args->dst_id;
        u64 was = t->cgroup_id;
        if (was == ROOT_CGROUP_ID || (was & V1_TAG)) {
            u64 id = cgroup_key(ROOT_CGROUP_ID, args->dst_id);
            if (id != was) {
                t->cgroup_id = id;
                t->slot = 0;
            }
        }
    }
#endif
    return 0;
}
