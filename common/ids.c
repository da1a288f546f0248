/* ids.c -- ULID-layout ids: 48 bits of wall-clock ms, then 80 random bits, Crockford
 * base32, monotonic per process: within one millisecond the 80-bit part is the previous
 * id's plus one, so ids made by one process strictly increase.
 *
 * id_new runs once per delivery, and a CSPRNG call each time (RAND_bytes, plus the
 * getpid syscall of OpenSSL's fork check) was 3-4% of worker CPU. So the process keeps
 * one generator: seeded from RAND_bytes once, drawing 80 fresh bits per new millisecond
 * from xoshiro256**, and re-seeded in a forked child (pthread_atfork) so parent and child
 * never continue the same sequence. Ids are unique and ordered, not secret: nothing may
 * rely on them being unguessable. This static state is the module's one deliberate global
 * (like the log level); a mutex guards it because the producer library may be called
 * from several threads. */
#include "ids.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "hq.h"
#include "timestamp.h"

#define ID_BODY_LEN    26
#define ID_RND_HI_MASK 0xFFFFULL /* the random part is hi:16 bits, lo:64 bits */

/* Crockford's alphabet is in ASCII order, so string order equals numeric order. */
static const char id_b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

typedef struct id_gen {
    pthread_mutex_t mu;
    int seeded;       /* 0 at start and in a freshly forked child */
    int atfork_ok;    /* 0 if the fork handler could not be registered: check getpid */
    pid_t pid;        /* owner of the seed, only used when !atfork_ok */
    uint64_t last_ms; /* time field of the last id */
    uint64_t hi, lo;  /* random field of the last id */
    uint64_t s[4];    /* xoshiro256** state */
} id_gen;

static id_gen id_g = {.mu = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

/* fork with the lock held by no one else, so the child's copy is consistent */
static void id_fork_prepare(void) {
    pthread_mutex_lock(&id_g.mu);
}

static void id_fork_parent(void) {
    pthread_mutex_unlock(&id_g.mu);
}

static void id_fork_child(void) {
    id_g.seeded = 0;
    pthread_mutex_unlock(&id_g.mu);
}

static void id_register_atfork(void) {
    id_g.atfork_ok = pthread_atfork(id_fork_prepare, id_fork_parent, id_fork_child) == 0;
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t id_next64(id_gen *g) {
    uint64_t r = rotl(g->s[1] * 5, 7) * 9, t = g->s[1] << 17;
    g->s[2] ^= g->s[0];
    g->s[3] ^= g->s[1];
    g->s[1] ^= g->s[2];
    g->s[0] ^= g->s[3];
    g->s[2] ^= t;
    g->s[3] = rotl(g->s[3], 45);
    return r;
}

static int id_seed(id_gen *g) {
    unsigned char b[sizeof(g->s)];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return HQ_ERR;
    memcpy(g->s, b, sizeof(b));
    if (!(g->s[0] | g->s[1] | g->s[2] | g->s[3]))
        g->s[0] = 1; /* the one state xoshiro cannot leave */
    g->seeded = 1;
    g->pid = getpid();
    g->last_ms = 0; /* the next id draws fresh bits, whatever its time */
    return HQ_OK;
}

/* The next (ms, hi, lo) under the lock: fresh bits for a new millisecond, else +1. A
 * clock that steps back keeps the last time, so the order survives NTP corrections. */
static int id_step(id_gen *g, uint64_t now, uint64_t *ms, uint64_t *hi, uint64_t *lo) {
    if (!g->seeded || (!g->atfork_ok && g->pid != getpid())) {
        if (id_seed(g) != HQ_OK)
            return HQ_ERR;
    }
    if (now > g->last_ms) {
        g->last_ms = now;
        g->lo = id_next64(g);
        g->hi = id_next64(g) & ID_RND_HI_MASK;
    } else {
        g->lo++;
        if (g->lo == 0)
            g->hi = (g->hi + 1) & ID_RND_HI_MASK;
        if (g->lo == 0 && g->hi == 0) {
            /* 2^80 ids in one ms cannot happen from a counter this size, but a draw
             * close to the top can: move to the next ms rather than wrap below the
             * last id */
            g->last_ms++;
            g->lo = id_next64(g);
            g->hi = id_next64(g) & ID_RND_HI_MASK;
        }
    }
    *ms = g->last_ms;
    *hi = g->hi;
    *lo = g->lo;
    return HQ_OK;
}

int id_new(const char *prefix, char *out, size_t outlen) {
    if (!prefix)
        prefix = "";
    size_t plen = strlen(prefix);
    if (!out || outlen < plen + ID_BODY_LEN + 1)
        return HQ_ERR;
    pthread_once(&id_once, id_register_atfork);
    uint64_t ms, hi, lo;
    uint64_t now = (uint64_t)ts_now_ms() & 0xFFFFFFFFFFFFULL;
    pthread_mutex_lock(&id_g.mu);
    int rc = id_step(&id_g, now, &ms, &hi, &lo);
    pthread_mutex_unlock(&id_g.mu);
    if (rc != HQ_OK)
        return HQ_ERR;

    char *p = out;
    memcpy(p, prefix, plen);
    p += plen;
    /* 10 chars carry 50 bits; the top two are zero for 48-bit time. */
    for (int i = 9; i >= 0; i--) {
        p[i] = id_b32[ms & 31];
        ms >>= 5;
    }
    p += 10;
    /* 80 random bits = 16 chars: the top 20 bits (hi:16, lo's top 4), then lo's 60 */
    uint64_t top = hi << 4 | lo >> 60;
    for (int i = 3; i >= 0; i--) {
        p[i] = id_b32[top & 31];
        top >>= 5;
    }
    for (int i = 15; i >= 4; i--) {
        p[i] = id_b32[lo & 31];
        lo >>= 5;
    }
    p[16] = '\0';
    return HQ_OK;
}
static int id_char_ok(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int id_valid(const char *id, char *err, size_t errlen) {
    if (!id || id[0] == '\0')
        return hq_seterr(err, errlen, "bad id: empty");
    /* Bounded scan: a huge input is rejected without reading all of it. */
    size_t n = strnlen(id, ID_MAX + 1);
    if (n > ID_MAX)
        return hq_seterr(err, errlen, "bad id: longer than %d chars", ID_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (id_char_ok((char)c))
            continue;
        if (c >= 0x20 && c < 0x7f)
            return hq_seterr(err, errlen,
                             "bad id '%s': character '%c' not allowed (use A-Z a-z 0-9 _ -)", id,
                             c);
        return hq_seterr(err, errlen,
                         "bad id: byte 0x%02x at position %zu not allowed (use A-Z a-z 0-9 _ -)", c,
                         i);
    }
    return HQ_OK;
}
