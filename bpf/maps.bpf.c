/* ctop: the maps every program shares and the helpers that touch them (loaded first: bcc rewrites map
 * calls only in the main text, so maps and these helpers cannot live in a header). */
#include "ctop.h"

/* Thread states in a pid-indexed array (see thread_slot). Where pid_max is larger than the array (THREADS_TAGGED),
 * a slot belongs to the first live thread whose tid maps to it (a state keeps its tid) and a thread whose slot is
 * another's goes to the small hash `threads_more`. */
#ifdef THREADS_MMAPABLE
BPF_F_TABLE("array", int, struct thread_state, threads, THREADS_MAX, CTOP_F_MMAPABLE);
#else
BPF_ARRAY(threads, struct thread_state, THREADS_MAX);
#endif
#ifdef THREADS_TAGGED
BPF_HASH(threads_more, u32, struct thread_state, THREADS_MORE);
#endif
/* Per-cgroup counters in a per-CPU array: an index lookup, no hash, on every context switch. A cgroup gets its index
 * at its first event (`cgroup_index`: cgroup id -> index) and each thread remembers its cgroup's. When a cgroup
 * goes, user space reads its counters one last time, drops its index from `cgroup_index`, zeroes the entry and,
 * a few reads later, zeroes it again and queues the index in `free_indices` for the next new cgroup. */
BPF_HASH(cgroup_index, u64, u32, CGROUPS_MAX);
BPF_PERCPU_ARRAY(cgroups, struct cgroup_counters, CGROUPS_MAX);
BPF_QUEUE(free_indices, u32, CGROUPS_MAX);
BPF_TABLE("lru_percpu_hash", struct culprit_key, u64, culprits, CULPRITS_MAX);
BPF_PERCPU_ARRAY(counters, u64, N_COUNTERS);
BPF_PERCPU_ARRAY(pending, struct pending_preemption, 1);
BPF_ARRAY(seqs, u64, N_SEQS);
BPF_ARRAY(exec_log, struct exec_record, EXEC_LOG_SIZE);
BPF_ARRAY(oom_log, struct oom_record, OOM_LOG_SIZE);
BPF_ARRAY(cgroup_log, struct cgroup_record, CGROUP_LOG_SIZE);

static __always_inline void count(u32 slot)
{
    u64 *v = counters.lookup(&slot);
    if (v)
        *v += 1;
}

/* The array slot of thread `tid`: the low THREADS_BITS bits of its tid rotated left by SPREAD_BITS, so that
 * threads with consecutive tids (a process and its child, often on two CPUs) never share a cache line, which would
 * travel between the CPUs at every switch (thread_slot() in ctop/ebpf/threads.py is the same). Untagged, a tid
 * beyond the array has no slot (THREADS_MAX). */
static __always_inline u32 thread_slot(u32 tid)
{
#ifndef THREADS_TAGGED
    if (tid >= THREADS_MAX)
        return THREADS_MAX;
#endif
    u32 low = tid & (THREADS_MAX - 1);
    return ((low << SPREAD_BITS) | (low >> (THREADS_BITS - SPREAD_BITS))) & (THREADS_MAX - 1);
}

/* True when array state `t` is thread `tid`'s (untagged, a slot has one possible thread). */
static __always_inline int owns(struct thread_state *t, u32 tid)
{
#ifdef THREADS_TAGGED
    return t->cgroup_id && t->tid == tid;
#else
    return t->cgroup_id != 0;
#endif
}

/* The state of a thread, or NULL when it is not tracked. A free slot has cgroup_id 0. */
static __always_inline struct thread_state *thread_get(u32 tid)
{
    u32 slot = thread_slot(tid);
    struct thread_state *t = threads.lookup(&slot);
    if (t && owns(t, tid))
        return t;
#ifdef THREADS_TAGGED
    return threads_more.lookup(&tid);
#else
    return 0;
#endif
}

static __always_inline u64 next_seq(u32 which)
{
    u64 *s = seqs.lookup(&which);
    if (!s)
        return 0;
    return __sync_fetch_and_add(s, 1) + 1;
}

/* The key a thread is counted under: its cgroup2 cgroup, or on hybrid hosts, for a task of the cgroup2 root, its
 * v1 cpu cgroup (tagged) unless that is the v1 root too. */
static __always_inline u64 cgroup_key(u64 v2_id, u64 v1_id)
{
#ifdef V1_HIERARCHY
    if (v2_id == ROOT_CGROUP_ID && v1_id && v1_id != V1_ROOT_ID)
        return V1_TAG | v1_id;
#endif
    return v2_id;
}

static __always_inline void thread_fill(struct thread_state *t, u32 tid, u64 cgroup_id, u64 last, u64 v1_id)
{
    t->cgroup_id = cgroup_id;
    t->last = last;
    t->slot = 0;
    t->v1_id = v1_id;
    t->tid = tid;
}

/* Start tracking a thread in `cgroup_id` (baseline unknown); returns its state or NULL when the map is full. A
 * thread stays where it is (its array slot, or `threads_more`), so it is never in both. */
static __always_inline struct thread_state *thread_put(u32 tid, u64 cgroup_id, u64 last, u64 v1_id)
{
    u32 slot = thread_slot(tid);
    struct thread_state *t = threads.lookup(&slot);
    if (!t) {
        count(C_THREAD_MAP_FULL);  /* tid beyond the array: pid_max grew after loading */
        return 0;
    }
#ifdef THREADS_TAGGED
    if (!owns(t, tid)) {
        struct thread_state *more = threads_more.lookup(&tid);
        if (more) {
            thread_fill(more, tid, cgroup_id, last, v1_id);
            return more;
        }
        if (t->cgroup_id) {  /* the slot is another live thread's */
            struct thread_state fresh = {.cgroup_id = cgroup_id, .last = last, .v1_id = v1_id, .tid = tid};
            if (threads_more.update(&tid, &fresh)) {
                count(C_THREAD_MAP_FULL);
                return 0;
            }
            count(C_THREADS_ADDED);
            return threads_more.lookup(&tid);
        }
    }
#endif
    if (!t->cgroup_id)
        count(C_THREADS_ADDED);
    thread_fill(t, tid, cgroup_id, last, v1_id);
    return t;
}

static __always_inline void thread_forget(u32 tid)
{
    u32 slot = thread_slot(tid);
    struct thread_state *t = threads.lookup(&slot);
    if (t && owns(t, tid)) {
        thread_fill(t, 0, 0, 0, 0);
        count(C_THREADS_REMOVED);
        return;
    }
#ifdef THREADS_TAGGED
    if (threads_more.delete(&tid) == 0)
        count(C_THREADS_REMOVED);
#endif
}

/* The index of cgroup `id`'s counters (0 = unattributed), given out now when it has none; CGROUPS_MAX (and counted)
 * when every index is taken. */
static __always_inline u32 cgroup_index_of(u64 id)
{
    u32 *found = cgroup_index.lookup(&id);
    if (found)
        return *found;
    u32 index;
    if (free_indices.pop(&index)) {
        u64 fresh = next_seq(SEQ_INDEX) - 1;
        if (fresh >= CGROUPS_MAX) {
            count(C_CGROUP_MAP_FULL);
            return CGROUPS_MAX;
        }
        index = fresh;
    }
    if (cgroup_index.insert(&id, &index)) {  /* another CPU gave it one first (or the map is full) */
        free_indices.push(&index, 0);
        found = cgroup_index.lookup(&id);
        if (!found) {
            count(C_CGROUP_MAP_FULL);
            return CGROUPS_MAX;
        }
        return *found;
    }
    return index;
}

/* Counters of a cgroup (0 = unattributed); NULL when every index is taken. */
static __always_inline struct cgroup_counters *cgroup_get(u64 id)
{
    u32 index = cgroup_index_of(id);
    return cgroups.lookup(&index);
}

/* The counters of thread `t`, of cgroup `id`: through the index the thread remembers (looked up on first use). */
static __always_inline struct cgroup_counters *thread_counters(struct thread_state *t, u64 id)
{
    if (!t)
        return cgroup_get(id);
    if (!t->slot) {
        u32 index = cgroup_index_of(id);
        if (index >= CGROUPS_MAX)
            return 0;
        t->slot = index + 1;
    }
    u32 index = t->slot - 1;
    return cgroups.lookup(&index);
}

/* The cgroup of the current task: from the thread map, else (cgroup2 hosts) from the helper, cached. */
static __always_inline u64 current_cgroup(u32 tid)
{
    struct thread_state *t = thread_get(tid);
    if (t)
        return t->cgroup_id;
#ifdef CURRENT_CGROUP_V2
    u64 id = bpf_get_current_cgroup_id();  /* on hybrid hosts its v1 cgroup is unknown: counted by the cgroup2 one */
    thread_put(tid, id, 0, 0);
    return id;
#else
    count(C_EVENTS_UNATTRIBUTED);
    return 0;
#endif
}


