/* timer_heap.c -- see timer_heap.h. heap[] holds ids ordered by due[id]; pos[id] is the
 * id's index in heap[] or -1, so an id is moved or removed without a search. */
#include "timer_heap.h"
#include <stdlib.h>

struct timer_heap {
    int n;        /* ids: 0..n-1 */
    int len;      /* ids in the heap */
    int *heap;    /* [len] ids, heap-ordered by due */
    int *pos;     /* [n] index in heap or -1 */
    int64_t *due; /* [n] */
};

timer_heap *theap_new(int n_ids) {
    if (n_ids <= 0)
        return NULL;
    timer_heap *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n = n_ids;
    t->heap = calloc((size_t)n_ids, sizeof *t->heap);
    t->pos = malloc((size_t)n_ids * sizeof *t->pos);
    t->due = calloc((size_t)n_ids, sizeof *t->due);
    if (!t->heap || !t->pos || !t->due) {
        theap_free(t);
        return NULL;
    }
    for (int i = 0; i < n_ids; i++)
        t->pos[i] = -1;
    return t;
}

void theap_free(timer_heap *t) {
    if (!t)
        return;
    free(t->heap);
    free(t->pos);
    free(t->due);
    free(t);
}

static void place(timer_heap *t, int i, int id) {
    t->heap[i] = id;
    t->pos[id] = i;
}

static void sift_up(timer_heap *t, int i) {
    int id = t->heap[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (t->due[t->heap[parent]] <= t->due[id])
            break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, id);
}

static void sift_down(timer_heap *t, int i) {
    int id = t->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= t->len)
            break;
        if (c + 1 < t->len && t->due[t->heap[c + 1]] < t->due[t->heap[c]])
            c++;
        if (t->due[id] <= t->due[t->heap[c]])
            break;
        place(t, i, t->heap[c]);
        i = c;
    }
    place(t, i, id);
}

static int valid(const timer_heap *t, int id) {
    return t && id >= 0 && id < t->n;
}

void theap_set(timer_heap *t, int id, int64_t due) {
    if (!valid(t, id))
        return;
    int i = t->pos[id];
    t->due[id] = due;
    if (i < 0) {
        i = t->len++;
        place(t, i, id);
    }
    sift_up(t, i);
    sift_down(t, t->pos[id]);
}

void theap_set_earlier(timer_heap *t, int id, int64_t due) {
    if (valid(t, id) && (t->pos[id] < 0 || due < t->due[id]))
        theap_set(t, id, due);
}

void theap_cancel(timer_heap *t, int id) {
    if (!valid(t, id) || t->pos[id] < 0)
        return;
    int i = t->pos[id];
    t->pos[id] = -1;
    int last = t->heap[--t->len];
    if (i == t->len)
        return;
    place(t, i, last);
    sift_up(t, i);
    sift_down(t, t->pos[last]);
}

int theap_is_set(const timer_heap *t, int id) {
    return valid(t, id) && t->pos[id] >= 0;
}

int64_t theap_due(const timer_heap *t, int id) {
    return theap_is_set(t, id) ? t->due[id] : THEAP_NEVER;
}

int64_t theap_next(const timer_heap *t) {
    return t && t->len > 0 ? t->due[t->heap[0]] : THEAP_NEVER;
}

int theap_pop_due(timer_heap *t, int64_t now) {
    if (!t || t->len == 0 || t->due[t->heap[0]] > now)
        return -1;
    int id = t->heap[0];
    theap_cancel(t, id);
    return id;
}
