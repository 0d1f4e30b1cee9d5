/* ctop: constants and record layouts shared by the eBPF programs. User space reads records through the compiled
 * program's tables (bcc's ctypes types) and takes the slot numbers below from this file (ctop/ebpf/layout.py). */
#ifndef CTOP_H
#define CTOP_H

/* Options come in as -D compiler flags from ctop/ebpf/loader.py; these defaults keep the file compilable. */
#ifndef THREADS_MAX
#define THREADS_MAX 32768          /* thread array slots, a power of two: pid_max rounded up, at most 2^18 */
#endif
#ifndef THREADS_BITS
#define THREADS_BITS 15            /* log2 THREADS_MAX */
#endif
#ifndef SPREAD_BITS
#define SPREAD_BITS 3              /* a thread's slot is its tid's low THREADS_BITS bits rotated by this (maps.bpf.c) */
#endif
/* THREADS_MMAPABLE: the thread array is created mmapable (Linux >= 5.5), which the kernel page-aligns. */
#define CTOP_F_MMAPABLE (1U << 10)  /* BPF_F_MMAPABLE of linux/bpf.h */
/* THREADS_TAGGED, THREADS_MORE: pid_max is above THREADS_MAX: a slot is the first live thread's whose tid maps to it,
 * the others go to a hash of THREADS_MORE entries. */
#ifndef CGROUPS_MAX
#define CGROUPS_MAX 2048           /* per-cgroup counter entries, including the unattributed one (id 0) */
#endif
#ifndef TRACK_HIERARCHY
#define TRACK_HIERARCHY 0          /* hierarchy id of the tracked cgroup tree (0 = cgroup2) */
#endif
#ifndef ROOT_CGROUP_ID
#define ROOT_CGROUP_ID 1           /* inode of the tracked hierarchy's root: tasks there count as "host" */
#endif
/* RUN_DELAY_OFFSET: offset of task_struct.sched_info.run_delay from BTF; without it, wake-up timestamps. */
/* RAW_SCHED_SWITCH: sched_switch as a raw tracepoint (Linux >= 5.18, with RUN_DELAY_OFFSET); without it, the
 * classic tracepoint. */
/* BTF_SCHED_SWITCH: sched_switch as a BTF-typed raw tracepoint (tp_btf), with RAW_SCHED_SWITCH's conditions, PID_OFFSET
 * and CURRENT_TASK_BTF; without it, RAW_SCHED_SWITCH decides. */
/* CURRENT_TASK_BTF: bpf_get_current_task_btf() works in tracepoint programs (Linux >= 5.11): run_delay is a load. */
/* REAL_PARENT_OFFSET, TGID_OFFSET: offsets of task_struct.real_parent and .tgid from BTF (ppid of execs). */
/* PID_OFFSET: task_struct.pid (the thread id) from BTF: the raw sched_switch program reads prev's tid from the task
 * it already holds for run_delay instead of calling bpf_get_current_pid_tgid(). */
/* MM_OFFSET, ARG_START_OFFSET, ARG_END_OFFSET: task_struct.mm, mm_struct.arg_start/arg_end (arguments of execs). */
/* CURRENT_CGROUP_V2: bpf_get_current_cgroup_id() names cgroups of the tracked (cgroup2) hierarchy. */
/* V1_HIERARCHY, V1_ROOT_ID: hybrid hosts: the v1 cpu hierarchy's id and root inode. A task whose cgroup2 cgroup is
 * the root but whose v1 cpu cgroup is not is counted under V1_TAG | its v1 cgroup id (ctop/ebpf/hybrid.py). */
#define V1_TAG (1ULL << 62)

#ifndef CULPRITS_MAX
#define CULPRITS_MAX 8192          /* (victim cgroup, culprit cgroup) pairs kept; the least recently used go first */
#endif
/* Preemptions of a cgroup's tasks by one culprit are counted in the `culprits` map until that pair reaches
 * CULPRIT_CLAIM_AT on a CPU; the pair then takes one of the cgroup's CULPRIT_SLOTS slots on that CPU (in its
 * counters, which the switch has in hand: no map lookup) and counts there from then on. A slot is never given to
 * another culprit while its cgroup lives, so each pair's count (map plus slots) only grows. */
#define CULPRIT_SLOTS 2
#define CULPRIT_CLAIM_AT 16

/* Run-queue wait histogram, log-linear: RUNQ_SUBS buckets per power of two. With u = wait >> RUNQ_UNIT_SHIFT
 * (units of 256 ns): u < RUNQ_SUBS goes to slot u (linear, [u, u+1) units, the first slot starts at 0);
 * otherwise, e = floor(log2 u), slot (e - RUNQ_SUB_BITS + 1) * RUNQ_SUBS + the RUNQ_SUB_BITS bits of u below
 * its top bit. Slot s = o * RUNQ_SUBS + m (o >= 1) holds [(RUNQ_SUBS + m) << (o - 1), (RUNQ_SUBS + m + 1)
 * << (o - 1)) units. The last slot also takes every longer wait. These defines are the only definition of the
 * bounds: ctop/model/ebpf.py derives its bucket bounds from them (through ctop/ebpf/layout.py). */
#define RUNQ_UNIT_SHIFT 8
#define RUNQ_SUB_BITS 2
#define RUNQ_SUBS (1 << RUNQ_SUB_BITS)
#define RUNQ_OCTAVES 27            /* powers of two above the linear range: slots reach 2^37 ns (137 s) */
#define RUNQ_SLOTS ((RUNQ_OCTAVES + 1) * RUNQ_SUBS)
#define EXEC_LOG_SIZE 256
#define OOM_LOG_SIZE 64
#define CGROUP_LOG_SIZE 256
#define EXEC_FILENAME_LEN 128
#define EXEC_ARGS_LEN 200          /* bytes of argv kept per exec (NUL-separated, as in /proc/<pid>/cmdline) */
#define CGROUP_PATH_LEN 256
#define TASK_COMM_LEN_ 16

/* prev_state bits of sched_switch (TASK_REPORT): a task switched out for the last time. */
#define STATE_EXIT_DEAD 0x10
#define STATE_EXIT_ZOMBIE 0x20
/* prev_state of the raw sched_switch tracepoint (the task's __state): its last switch. */
#define TASK_DEAD_ 0x80

/* Slots of the per-CPU `counters` array: events the maps could not hold and thread-map bookkeeping. */
#define C_CGROUP_MAP_FULL 0
#define C_THREAD_MAP_FULL 1
#define C_THREADS_ADDED 2
#define C_THREADS_REMOVED 3
#define C_EVENTS_UNATTRIBUTED 4
#define N_COUNTERS 5

/* Slots of the `seqs` array: how many records each log has ever received. */
#define SEQ_EXEC 0
#define SEQ_OOM 1
#define SEQ_CGROUP 2
#define SEQ_INDEX 3                /* indices of the `cgroups` array given out for the first time */
#define N_SEQS 4

#define VALID_BASELINE (1ULL << 63) /* thread_state.last: bit set once a run_delay/timestamp baseline is known */

/* 32 bytes: in the page-aligned array (THREADS_MMAPABLE) two states share a cache line and none straddles two, so
 * a context switch touches one line of thread state. */
struct thread_state {
    u64 cgroup_id;                 /* 0: unknown (the slot is free) */
    u64 last;                      /* run_delay at the last switch-out, or wake-up/preemption time; | VALID */
    u64 v1_id;                     /* hybrid hosts: its cgroup in the v1 cpu hierarchy (0: unknown) */
    u32 slot;                      /* 1 + its cgroup's index in `cgroups`, once looked up; 0: not yet */
    u32 tid;                       /* whose state this is (a tagged array's slot is shared by tids) */
};

/* One per CPU: the last preemption on that CPU until the switch that names its culprit (sched.bpf.c). */
struct pending_preemption {
    u64 victim;                    /* the preempted task's cgroup; 0: none pending */
    u64 victim_slot;               /* 1 + that cgroup's index in `cgroups` */
    u64 via_host;                  /* 1: a host task that slept again at once ran first (it is passed over) */
};

/* One CPU's counters of one cgroup (a per-CPU array: CPUs x CGROUPS_MAX of these). Histogram slots are u32, half
 * the kernel memory of u64 ones: user space adds the CPUs' copies modulo 2^32 and follows the wrap between reads
 * (ctop/ebpf/maps.py); the number of waits is the sum of the slots. */
struct cgroup_counters {
    u64 runq_sum_ns;               /* the members a context switch touches first, together */
    u64 runq_max_ns;
    u64 nvcsw;
    u64 nivcsw;
    u64 preempted_by_others;
    u64 preempted_by_host;
    u64 culprit_id[CULPRIT_SLOTS];    /* this CPU's culprits counted here rather than in `culprits` (0: free) */
    u64 culprit_count[CULPRIT_SLOTS]; /* their preemptions of this cgroup's tasks on this CPU, since they came */
    u64 forks;
    u64 execs;
    u64 exits;
    u64 oom_kills;
    u32 runq_hist[RUNQ_SLOTS];
};

/* Key of the `culprits` map: preemptions of `victim`'s tasks in favour of a task of `culprit` (both cgroup ids
 * of the tracked hierarchy; ROOT_CGROUP_ID is the host). The value is a per-CPU count. A host task (kernel
 * threads: RCU, softirqs, workers) that preempts and sleeps again at once is passed over: the culprit is the
 * workload that runs after it, which is what took the CPU from the victim at the end of its slice. */
struct culprit_key {
    u64 victim;
    u64 culprit;
};

struct exec_record {
    u64 seq;                       /* 1-based; 0 = empty slot */
    u64 time_ns;                   /* bpf_ktime_get_ns() */
    u64 cgroup_id;
    u32 pid;
    u32 ppid;
    char comm[TASK_COMM_LEN_];
    char filename[EXEC_FILENAME_LEN];
    u32 args_len;                  /* bytes of argv in the new program's memory (more than kept: truncated) */
    u32 args_pad;
    char args[EXEC_ARGS_LEN];      /* the first EXEC_ARGS_LEN bytes of argv; args_len 0: not read */
};

struct oom_record {
    u64 seq;
    u64 time_ns;
    u64 cgroup_id;
    u32 pid;
    u32 pad;
    char comm[TASK_COMM_LEN_];
};

struct cgroup_record {
    u64 seq;
    u64 time_ns;
    u64 cgroup_id;
    u32 kind;                      /* 1 mkdir, 2 rmdir */
    u32 level;
    char path[CGROUP_PATH_LEN];
};

#endif /* CTOP_H */
