/* worker_internal.h -- the worker's internals, shared by its modules (not a public contract).
 *
 * Modules: worker.c the loop, Redis state and reads; fo.c fanout; dl.c jobs (their state
 * machine, event fetch, request building, transfers); rw.c writing results; rc.c
 * reclaim and trimming; epindex.c endpoint table; evcache.c event cache; pipeline.c pipelines. */
#ifndef HQ_WORKER_INTERNAL_H
#define HQ_WORKER_INTERNAL_H
#include <signal.h>
#include <stdint.h>
#include "config.h"
#include "event_cache.h"
#include "envelope.h"
#include "endpoint_index.h"
#include "http_engine.h"
#include "string_map.h"
#include "addr_filter.h"
#include "redis_keys.h"
#include "outcome.h"
#include "pipeline.h"
#include "redis_conn.h"
#include "worker.h"

/* A job's life (STYLE.md rule 5): only job_set changes it, and it logs each change.
 *   FETCH -> READY -> INFLIGHT -> DELIVERED | RETRY | DEAD
 *   FETCH -> DEAD (event trimmed or malformed), READY -> DISABLED | DROPPED | DEFERRED
 * The last six are "done": their result is written to Redis by results_flush, then the job
 * is freed. A job still FETCH/READY/INFLIGHT at shutdown stays pending in Redis. */
typedef enum {
    JOB_FETCH = 0, /* its event must be read from the events stream first */
    JOB_READY,     /* event in hand, waiting for a transfer slot */
    JOB_INFLIGHT,  /* the POST is running */
    JOB_DELIVERED, /* 2xx */
    JOB_RETRY,     /* failed; scheduled again at due_ms */
    JOB_DEAD,      /* out of attempts, final answer, or cannot be delivered at all */
    JOB_DISABLED,  /* endpoint disabled: acknowledged without delivery */
    JOB_DROPPED,   /* endpoint deleted: acknowledged without delivery */
    JOB_DEFERRED,  /* its endpoint is at its in-flight cap and our local queue is full:
                      handed back through the delay zset, same attempt, so one slow
                      endpoint cannot fill the queue and starve the others */
    JOB_NSTATES
} job_state;
/* "fetch", "ready", ... for logs; "new" for anything else. */
const char *job_state_name(job_state s);

enum { JL_FETCH, JL_READY, JL_INFLIGHT, JL_DONE, JL_N }; /* lists jobs live on */

typedef struct job {
    struct job *prev, *next;
    struct worker *w;
    job_state st;
    char sid[48];   /* jobs stream entry id */
    char evsid[48]; /* events stream entry id */
    char *ep_id;
    int attempt;     /* 1-based */
    evcache_ev *ev;  /* reference into the event cache; NULL until fetched */
    char dlv[48];    /* delivery id of the attempt ("" if none made) */
    int attempted;   /* a request was made (an endpoint failure counts) */
    http_result res; /* the attempt's result */
    outcome oc;
    char error[400]; /* why, for dead letters and the log */
    int64_t due_ms;  /* JOB_RETRY: when (wall clock ms) */
} job;

typedef struct jlist {
    job *head, *tail;
    size_t n;
} jlist;

struct worker {
    const cfg *c;
    char name[256];
    volatile sig_atomic_t *stop;
    addr_filter *filter;
    http_engine *http;
    rconn *r;
    epindex *eps;
    evcache *cache;
    strmap *busy;   /* endpoint id -> int* transfers in flight */
    pipeline *rd;   /* the read pipeline (worker_read); its replies live through fanout */
    pipeline *fo;   /* fanout.lua */
    pipeline *fx;   /* event fetches */
    pipeline *wr;   /* results */
    pipeline *side; /* commands to send with the next results flush (bad entries, trims) */
    jlist lists[JL_N];
    size_t max_held; /* jobs held at once (delivery.concurrency * 2) */
    char k_events[KEY_MAX], k_jobs[KEY_MAX], k_delay[KEY_MAX], k_dead[KEY_MAX];
    char k_version[KEY_MAX];
    int64_t ep_version; /* of the loaded table; -1 = never loaded */
    int reloaded;       /* reloaded during this loop iteration */
    int64_t loaded_at;  /* mono us when the table was last loaded */
    int64_t read_at;    /* mono us when the last jobs/events read was sent: an endpoint id
                           unknown to a table loaded before it forces a reload */
    int64_t next_version, next_promote, next_reclaim, next_trim, next_fanout; /* mono ms */
    int jobs_backlog; /* the last jobs read came back full: deliver before fanning out more */
    int redis_up;
    int redis_full; /* the last results write was refused with OOM (maxmemory) */
    int64_t next_connect, backoff_ms;
    int stopping;
    int64_t stop_deadline;
    uint64_t rng;
    uint64_t n_delivered, n_failed;
};

/* worker.c */
uint64_t worker_rand(worker *w);
void worker_down(worker *w, const char *why); /* Redis I/O error: go to reconnect mode */
int worker_reload(worker *w);                 /* reload the endpoint table now */
void worker_groups(worker *w);                /* create the consumer groups (BUSYGROUP ignored) */
int worker_reply_nogroup(const redisReply *r);
size_t worker_held(const worker *w);
size_t worker_room(const worker *w);
const redisReply *worker_stream_entries(const redisReply *xread); /* entries of the 1st stream */
/* Append "XADD dead * kind K source SID reason R f.name value ..." for a bad entry. */
void worker_dead_entry(worker *w, pipeline *p, const char *kind, const redisReply *entry,
                       const char *reason);

/* fo.c: fan out events entries (XREADGROUP or XAUTOCLAIM reply entries). claims (may
 * be NULL) gives each entry's delivery count, for max_claims. */
void fanout_fanout(worker *w, const redisReply *entries, const int64_t *claims);
/* Parse one events stream entry ([id, [field, value, ...]]). HQ_ERR + the reason. */
int fanout_parse(const cfg *c, const redisReply *entry, envelope *e, char *err, size_t errlen);
int fanout_entry_ok(const redisReply *entry);

/* dl.c */
void job_set(worker *w, job *j, job_state st, const char *why);
void job_free(worker *w, job *j);
void job_take(worker *w, const redisReply *entries, const int64_t *claims);
void job_fetch(worker *w);
void job_dispatch(worker *w);

/* rw.c */
void results_flush(worker *w);
/* An error reply: OOM switches the "Redis full" state (logged once per change), anything
 * else is logged with what. 0 if rep is not an error. */
int results_reply_error(worker *w, const redisReply *rep, const char *what);
void results_set_full(worker *w, int full, const char *why);

/* rc.c */
void reclaim_tick(worker *w);

#endif
