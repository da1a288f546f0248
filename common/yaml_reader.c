/* yaml_reader.c -- libyaml's event stream walked into dotted entries (yaml_reader.h).
 *
 * Events rather than libyaml's document loader: the loader builds the whole node graph
 * before we could look at it, while events come one at a time with their line, so every
 * limit is checked before anything is kept. An entry joins the document once it is
 * complete (a mapping's at its start, since its contents are entries of their own), so
 * the partial document returned with an error is safe to read; the one exception, a list
 * cut short by the problem, is marked as such. */
#include "yaml_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "hq.h"

typedef struct reader {
    yaml_parser_t p;
    const char *name;
    yread_doc *doc;
    size_t cap; /* of doc->entries */
    char *err;
    size_t errlen;
} reader;

static size_t mark_line(const yaml_mark_t *m) {
    return m->line + 1;
}

static int fail(reader *r, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(reader *r, size_t line, const char *fmt, ...) {
    char m[HQ_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    return hq_seterr(r->err, r->errlen, "%s:%zu: %s", r->name, line, m);
}

static int oom(reader *r) {
    return hq_seterr(r->err, r->errlen, "out of memory");
}

static int next_event(reader *r, yaml_event_t *ev) {
    if (yaml_parser_parse(&r->p, ev))
        return HQ_OK;
    const char *problem = r->p.problem ? r->p.problem : "syntax error";
    size_t line = mark_line(&r->p.problem_mark);
    if (r->p.context)
        return fail(r, line, "YAML: %s %s", problem, r->p.context);
    return fail(r, line, "YAML: %s", problem);
}

static void entry_clear(yread_entry *e) {
    free(e->key);
    free(e->value);
    for (size_t i = 0; i < e->n_items; i++)
        free(e->items[i]);
    free(e->items);
    free(e->item_lines);
    memset(e, 0, sizeof(*e));
}

/* Room for one more entry? HQ_ERR, without a message, if the limit or memory says no. */
static int room(reader *r) {
    yread_doc *d = r->doc;
    if (d->n == YREAD_ENTRIES_MAX)
        return HQ_ERR;
    if (d->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        yread_entry *grown = realloc(d->entries, cap * sizeof(*grown));
        if (!grown)
            return HQ_ERR;
        d->entries = grown;
        r->cap = cap;
    }
    return HQ_OK;
}

/* Append e, whose strings it owns; if that fails they are freed. */
static int push(reader *r, yread_entry *e) {
    if (room(r) != HQ_OK) {
        if (r->doc->n == YREAD_ENTRIES_MAX)
            fail(r, e->line, "more than %d keys; is this the right file?", YREAD_ENTRIES_MAX);
        else
            oom(r);
        entry_clear(e);
        return HQ_ERR;
    }
    r->doc->entries[r->doc->n++] = *e;
    return HQ_OK;
}

static int push_value(reader *r, const char *key, size_t line, const yaml_event_t *ev) {
    yread_entry e = {.kind = YREAD_VALUE, .line = line};
    e.key = strdup(key);
    e.value = strdup((const char *)ev->data.scalar.value);
    e.empty = ev->data.scalar.length == 0 && ev->data.scalar.plain_implicit;
    if (!e.key || !e.value) {
        entry_clear(&e);
        return oom(r);
    }
    return push(r, &e);
}

static int push_bare(reader *r, yread_kind kind, const char *key, size_t line) {
    yread_entry e = {.kind = kind, .line = line};
    e.key = strdup(key);
    if (!e.key)
        return oom(r);
    return push(r, &e);
}

/* The items of a sequence whose start event was read, pushed once the sequence ends, or
 * as truncated if a problem inside it ends the reading (the error stays the problem's). */
static int read_list(reader *r, const char *key, size_t line) {
    yread_entry e = {.kind = YREAD_LIST, .line = line};
    size_t cap = 0;
    e.key = strdup(key);
    if (!e.key)
        return oom(r);
    for (;;) {
        yaml_event_t ev;
        if (next_event(r, &ev) != HQ_OK)
            goto cut_short;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        size_t iline = mark_line(&ev.start_mark);
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            fail(r, iline, "key '%s': list items must be plain values", key);
            goto cut_short;
        }
        if (e.n_items == YREAD_ITEMS_MAX) {
            yaml_event_delete(&ev);
            fail(r, iline, "key '%s': more than %d list items", key, YREAD_ITEMS_MAX);
            goto cut_short;
        }
        if (e.n_items == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **items = realloc(e.items, ncap * sizeof(*items));
            if (items)
                e.items = items;
            size_t *lines = items ? realloc(e.item_lines, ncap * sizeof(*lines)) : NULL;
            if (lines)
                e.item_lines = lines;
            if (!items || !lines) {
                yaml_event_delete(&ev);
                oom(r);
                goto cut_short;
            }
            cap = ncap;
        }
        char *item = strdup((const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (!item) {
            oom(r);
            goto cut_short;
        }
        e.items[e.n_items] = item;
        e.item_lines[e.n_items] = iline;
        e.n_items++;
    }
    return push(r, &e);
cut_short:
    e.truncated = 1;
    if (room(r) == HQ_OK)
        r->doc->entries[r->doc->n++] = e;
    else
        entry_clear(&e);
    return HQ_ERR;
}

static int read_mapping(reader *r, const char *prefix, int depth);

/* The value of key (read at line, depth levels down), up to its last event. */
static int read_value(reader *r, const char *key, size_t line, int depth) {
    yaml_event_t ev;
    int rc;
    if (next_event(r, &ev) != HQ_OK)
        return HQ_ERR;
    switch (ev.type) {
    case YAML_SCALAR_EVENT:
        rc = push_value(r, key, line, &ev);
        break;
    case YAML_MAPPING_START_EVENT:
        /* The mapping's entry goes first, even when what is inside is too deep. */
        rc = push_bare(r, YREAD_MAPPING, key, line);
        if (rc == HQ_OK && depth >= YREAD_DEPTH_MAX)
            rc = fail(r, line, "key '%s': YAML nested too deeply (more than %d levels)", key,
                      YREAD_DEPTH_MAX);
        if (rc == HQ_OK)
            rc = read_mapping(r, key, depth + 1);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = read_list(r, key, line);
        break;
    case YAML_ALIAS_EVENT:
        rc = push_bare(r, YREAD_ALIAS, key, line);
        break;
    default:
        rc = fail(r, line, "unexpected YAML structure");
        break;
    }
    yaml_event_delete(&ev);
    return rc;
}

/* The pairs of a mapping whose start event was read; its keys become prefix.key. */
static int read_mapping(reader *r, const char *prefix, int depth) {
    char key[YREAD_KEY_MAX];
    for (;;) {
        yaml_event_t ev;
        if (next_event(r, &ev) != HQ_OK)
            return HQ_ERR;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return HQ_OK;
        }
        size_t line = mark_line(&ev.start_mark);
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            return fail(r, line, "keys must be plain names");
        }
        const char *name = (const char *)ev.data.scalar.value;
        int n = prefix ? snprintf(key, sizeof(key), "%s.%s", prefix, name)
                       : snprintf(key, sizeof(key), "%s", name);
        yaml_event_delete(&ev);
        if (n < 0 || (size_t)n >= sizeof(key))
            return fail(r, line, "key name too long");
        if (read_value(r, key, line, depth) != HQ_OK)
            return HQ_ERR;
    }
}

static int read_document(reader *r) {
    yaml_event_t ev;
    int rc = HQ_ERR;
    if (next_event(r, &ev) != HQ_OK) /* stream start */
        return HQ_ERR;
    yaml_event_delete(&ev);
    if (next_event(r, &ev) != HQ_OK)
        return HQ_ERR;
    if (ev.type == YAML_STREAM_END_EVENT) { /* empty text */
        yaml_event_delete(&ev);
        return HQ_OK;
    }
    yaml_event_delete(&ev); /* document start */
    if (next_event(r, &ev) != HQ_OK)
        return HQ_ERR;
    if (ev.type == YAML_MAPPING_START_EVENT)
        rc = read_mapping(r, NULL, 1);
    else if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0 &&
             ev.data.scalar.plain_implicit)
        rc = HQ_OK; /* "---" and comments only */
    else
        rc = fail(r, mark_line(&ev.start_mark), "the top level must be a mapping of sections");
    yaml_event_delete(&ev);
    if (rc != HQ_OK)
        return rc;
    if (next_event(r, &ev) != HQ_OK) /* document end */
        return HQ_ERR;
    yaml_event_delete(&ev);
    if (next_event(r, &ev) != HQ_OK)
        return HQ_ERR;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = fail(r, mark_line(&ev.start_mark), "only one YAML document is allowed");
    yaml_event_delete(&ev);
    return rc;
}

int yread_parse(const char *name, const char *text, size_t len, yread_doc **out, char *err,
                size_t errlen) {
    reader r = {.name = name ? name : "<yaml>", .err = err, .errlen = errlen};
    int rc;
    *out = NULL;
    r.doc = calloc(1, sizeof(*r.doc));
    if (!r.doc)
        return hq_seterr(err, errlen, "out of memory");
    if (!yaml_parser_initialize(&r.p)) {
        free(r.doc);
        return hq_seterr(err, errlen, "out of memory");
    }
    yaml_parser_set_input_string(&r.p, (const unsigned char *)text, len);
    rc = read_document(&r);
    yaml_parser_delete(&r.p);
    *out = r.doc;
    return rc;
}

void yread_free(yread_doc *doc) {
    if (!doc)
        return;
    for (size_t i = 0; i < doc->n; i++)
        entry_clear(&doc->entries[i]);
    free(doc->entries);
    free(doc);
}
