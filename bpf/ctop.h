/* ctop: constants and record layouts shared by the eBPF programs. User space reads records through the compiled
 * program's tables (bcc's ctypes types) and takes the slot numbers below from this file (ctop/ebpf/layout.py). */
#ifndef CTOP_H
#define CTOP_H

/* Options come in as -D compiler flags from ctop/ebpf/loader.py; these defaults keep the file compilable. */
#ifndef THREADS_MAX
#define THREADS_MAX 32768          /* array mode: pid_max; hash mode: bound on tracked threads */
#endif
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
/* REAL_PARENT_OFFSET, TGID_OFFSET: offsets of task_struct.real_parent and .tgid from BTF (ppid of execs). */
/* CURRENT_CGROUP_V2: bpf_get_current_cgroup_id() names cgroups of the tracked (cgroup2) hierarchy. */

#define RUNQ_SLOTS 28              /* slot s >= 1 holds waits in [2^(s+9), 2^(s+10)) ns; slot 0 below 1024 ns */
#define EXEC_LOG_SIZE 256
#define OOM_LOG_SIZE 64
#define CGROUP_LOG_SIZE 256
#define EXEC_FILENAME_LEN 128
#define CGROUP_PATH_LEN 256
#define TASK_COMM_LEN_ 16

/* prev_state bits of sched_switch (TASK_REPORT): a task switched out for the last time. */
#define STATE_EXIT_DEAD 0x10
#define STATE_EXIT_ZOMBIE 0x20

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
#define N_SEQS 3

#define VALID_BASELINE (1ULL << 63) /* thread_state.last: bit set once a run_delay/timestamp baseline is known */

struct thread_state {
    u64 cgroup_id;                 /* 0: unknown (the slot is free) */
    u64 last;                      /* run_delay at the last switch-out, or wake-up/preemption time; | VALID */
};

struct cgroup_counters {
    u64 runq_hist[RUNQ_SLOTS];
    u64 runq_sum_ns;
    u64 runq_count;
    u64 runq_max_ns;
    u64 nvcsw;
    u64 nivcsw;
    u64 preempted_by_others;
    u64 preempted_by_host;
    u64 forks;
    u64 execs;
    u64 exits;
    u64 oom_kills;
};

struct exec_record {
    u64 seq;                       /* 1-based; 0 = empty slot */
    u64 time_ns;                   /* bpf_ktime_get_ns() */
    u64 cgroup_id;
    u32 pid;
    u32 ppid;
    char comm[TASK_COMM_LEN_];
    char filename[EXEC_FILENAME_LEN];
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
