/* job.h -- a delivery job's life: one state enum, one transition function, one table of
 * what each final disposition writes to Redis (STYLE.md rule 5). No Redis, no HTTP:
 * everything here is unit-tested on its own (tests/unit/test_job.c).
 *
 *   NEW -> FETCH -> READY -> INFLIGHT -> DELIVERED | RETRY | DEAD
 *   NEW -> READY                     the event was in the cache
 *   NEW | FETCH -> DEAD              malformed, claimed too often, event gone or bad
 *   READY -> DISABLED | DROPPED | DEFERRED
 *   READY -> RETRY | DEAD            the attempt could not even start (bad secret, ...)
 *   READY -> LANED                   a jobs-stream job of an endpoint that now has lanes:
 *                                    moved into them (docs/policies.md "Adoption")
 *
 * job_transition is the only writer of a job's state. Entering and leaving a state own
 * the bookkeeping: which list the job is on and the per-endpoint in-flight counter
 * (incremented on entering INFLIGHT, decremented on leaving it). Any transition not
 * listed above is a bug: it aborts in builds with HOOKQ_CHECKS (tests, CI, Debug) and is
 * refused and logged otherwise. */
#ifndef HQ_JOB_H
#define HQ_JOB_H
#include <stddef.h>
#include <stdint.h>
#include "event_cache.h"
#include "http_engine.h"
#include "outcome.h"

typedef enum {
    JOB_NEW = 0,   /* made by intake, on no list yet */
    JOB_FETCH,     /* its event must be read from the events stream first */
    JOB_READY,     /* event in hand, waiting for a transfer slot */
    JOB_INFLIGHT,  /* the POST is running */
    JOB_DELIVERED, /* 2xx */
    JOB_RETRY,     /* failed; scheduled again at due_ms with attempt + 1 */
    JOB_DEAD,      /* out of attempts, a final answer, or undeliverable */
    JOB_DISABLED,  /* endpoint disabled: acknowledged without a request */
    JOB_DROPPED,   /* endpoint deleted (a reload after the job was read lacks it) */
    JOB_DEFERRED,  /* handed back through the delay zset with the same attempt */
    JOB_LANED,     /* moved into its endpoint's lanes (lane_push.lua), then acknowledged */
    JOB_NSTATES
} job_state;

const char *job_state_name(job_state s); /* "new", "fetch", ...; "?" if out of range */
int job_state_is_final(job_state s);     /* DELIVERED .. DEFERRED */
/* 1 if from -> to is a legal transition (the diagram above). */
int job_transition_ok(job_state from, job_state to);

/* What a final disposition writes to Redis: the one table results.c follows. */
typedef enum {
    JOB_SETTLE_ACK = 0, /* XACK + XDEL with the batch (nothing Redis could refuse) */
    JOB_SETTLE_RETRY,   /* settle.lua: ZADD delay, then XACK + XDEL, atomically */
    JOB_SETTLE_DEAD     /* settle.lua: XADD dead, then XACK + XDEL, atomically */
} job_settle;

typedef enum {
    JOB_FAILURES_KEEP = 0, /* the failure counter is not touched */
    JOB_FAILURES_RESET,    /* DEL P:{ep}:failures (a success) */
    JOB_FAILURES_COUNT     /* fail.lua, when a request was actually made */
} job_failures;

typedef struct job_writes {
    const char *log_outcome; /* delivery log "outcome"; NULL = no log line */
    job_failures failures;
    job_settle settle;
    int attempt_step; /* attempt number of the rescheduled job: attempt + this */
} job_writes;

/* The writes for a final state; NULL for a state that is not final. */
const job_writes *job_writes_of(job_state s);

typedef struct job_table job_table; /* opaque: every job this worker holds */

typedef struct job {
    struct job *prev, *next; /* on the list of its state group (table-internal) */
    job_table *table;
    job_state st;
    char sid[192];  /* jobs stream entry id; a lane job: "lane:<endpoint>:<lane id>" */
    char evsid[48]; /* events stream entry id */
    char *ep_id;
    int attempt;      /* 1-based */
    int64_t read_us;  /* monotonic us when the job was read from Redis */
    evcache_ev *ev;   /* reference into the event cache; NULL until fetched */
    char dlv[48];     /* delivery id of the attempt ("" if none made) */
    int attempted;    /* a request was made (an endpoint failure counts) */
    int fetch_errors; /* error replies reading its event (event_fetch gives up at 5) */
    http_result res;  /* the attempt's result */
    outcome oc;       /* outcome_classify(res) once attempted */
    char error[400];  /* why, for dead letters and the log */
    int64_t due_ms;   /* RETRY / DEFERRED: when (wall clock ms) */
    void *owner;      /* the stage holding it in flight (dispatch), for the callback */
    int64_t wait_ms;  /* mono ms since when dispatch has had it waiting for a slot; 0 */
    /* lanes (docs/policies.md) */
    int lane;          /* claimed from its endpoint's lanes, not read from the jobs stream */
    int lane_ordered;  /* lane: its endpoint was ordered when claimed */
    char lid[48];      /* lane id (the padded events stream id); "" if not lane */
    char *lkey;        /* order key ("" unordered); NULL unless lane or LANED */
    int64_t behind;    /* lane: jobs waiting behind it in its lane when claimed */
    char next_lid[48]; /* lane: the lane id right behind it when claimed, or "" */
    int renew_mark;    /* scratch for reclaim_renew's grouping */
    char lane_act;     /* scratch for results: its lane_settle.lua action */
} job;

/* The lists jobs live on, one per group of states. */
typedef enum {
    JOB_LIST_FETCH = 0,
    JOB_LIST_READY,
    JOB_LIST_INFLIGHT,
    JOB_LIST_DONE,
    JOB_LISTS
} job_list;

job_table *job_table_new(void);    /* NULL on OOM */
void job_table_free(job_table *t); /* NULL-safe; frees every job it holds */

/* A new job in state NEW (copies the strings). NULL on OOM or if a job with this sid is
 * already held (a stream entry is one job: a second read of it is not a second job). */
job *job_new(job_table *t, const char *sid, const char *evsid, const char *ep_id, int attempt,
             int64_t read_us);
/* The one state change. HQ_OK, or HQ_ERR for an illegal transition (aborts with
 * HOOKQ_CHECKS). why (may be NULL) is logged with the job's ids. */
int job_transition(job *j, job_state to, const char *why);
/* Free a job in NEW or a final state (HQ_ERR and nothing freed otherwise). */
int job_free(job *j);

job *job_find(const job_table *t, const char *sid);
job *job_first(const job_table *t, job_list l); /* then j->next */
size_t job_count(const job_table *t, job_list l);
size_t job_held(const job_table *t); /* every job on any list, NEW ones too */
/* Transfers in flight to one endpoint (kept by job_transition). */
int job_inflight_to(const job_table *t, const char *ep_id);

/* Decide what a finished attempt means (pure: the caller supplies the time and a random
 * number for jitter). Fills j->oc and j->error and returns the final state to move to:
 * DELIVERED, RETRY (with j->due_ms) or DEAD. */
typedef struct job_policy {
    const int64_t *schedule_ms; /* retry.schedule */
    size_t schedule_len;
    double jitter;              /* retry.jitter */
    int64_t max_retry_after_ms; /* retry.max_retry_after */
} job_policy;
job_state job_decide(job *j, const http_result *res, const job_policy *p, int64_t now_ms,
                     uint64_t rnd);

#endif
