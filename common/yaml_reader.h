/* yaml_reader.h -- a settings file read into dotted keys with their line numbers.
 *
 * For YAML made of nested mappings ("sections") of plain keys whose leaves are single
 * values or lists of single values. Read as entries, in file order:
 *
 *   redis:             "redis"           YREAD_MAPPING               line 1
 *     url: x           "redis.url"       YREAD_VALUE "x"             line 2
 *   retry:             "retry"           YREAD_MAPPING               line 3
 *     schedule: [1s]   "retry.schedule"  YREAD_LIST {"1s"} (line 4)  line 4
 *
 * A mapping's own entry comes before the entries inside it, so a caller that does not
 * expect a mapping there can say so before anything inside. Which keys exist is the
 * caller's business; the reader only knows YAML. Every scalar is text (tags and quoting
 * are not interpreted), anchors (&a) are ignored, and aliases (*a) are not resolved but
 * returned as YREAD_ALIAS so the caller can name the key. A list item that is not a
 * single value, a key that is not one, and a second document are errors.
 *
 * The prefix is yread_, not yaml_: that namespace, YAML_READER_ERROR included, is
 * libyaml's. */
#ifndef HQ_YAML_READER_H
#define HQ_YAML_READER_H
#include <stddef.h>

/* Limits, checked before anything is kept; the caller bounds the text's size. */
#define YREAD_DEPTH_MAX   8    /* levels of keys: "a.b.c.d.e.f.g.h" */
#define YREAD_KEY_MAX     128  /* bytes of a dotted key, with its NUL */
#define YREAD_ITEMS_MAX   1024 /* items in one list */
#define YREAD_ENTRIES_MAX 4096 /* entries in one document */

typedef enum yread_kind {
    YREAD_VALUE,   /* key: text */
    YREAD_LIST,    /* key: [a, b]  or  key: followed by "- a" lines */
    YREAD_MAPPING, /* key: followed by its own keys, which come next as "key.sub" */
    YREAD_ALIAS,   /* key: *anchor */
} yread_kind;

typedef struct yread_entry {
    yread_kind kind;
    char *key;          /* dotted path from the top level: "redis.url" */
    size_t line;        /* 1-based line of the key */
    char *value;        /* YREAD_VALUE: the text, "" for an empty one; else NULL */
    int empty;          /* YREAD_VALUE: nothing after the colon, not even "" (YAML null) */
    char **items;       /* YREAD_LIST: n_items texts; else NULL */
    size_t *item_lines; /* YREAD_LIST: the 1-based line of each item */
    size_t n_items;
    int truncated; /* YREAD_LIST: cut short by the error (only in a document with one) */
} yread_entry;

typedef struct yread_doc {
    yread_entry *entries; /* in file order */
    size_t n;
} yread_doc;

/* Read len bytes of YAML text (need not be NUL-terminated). An empty document, or one
 * of comments only, has no entries. name is only used in messages (a file path).
 *
 * HQ_OK with *out set, or HQ_ERR with err = "NAME:LINE: problem", e.g.
 *   "hookq.yaml:3: YAML: did not find expected key while parsing a block mapping"
 *   "hookq.yaml:4: key 'retry.schedule': list items must be plain values"
 * ("out of memory" has no place). On HQ_ERR *out still holds the entries before the
 * problem, so a caller can first report a problem of its own that comes earlier in the
 * file; if the problem is inside a list, that list is the last entry, truncated, with the
 * items before it. *out is NULL only if there was no memory for it, and belongs to the
 * caller either way: free it with yread_free. */
int yread_parse(const char *name, const char *text, size_t len, yread_doc **out, char *err,
                size_t errlen);
void yread_free(yread_doc *doc); /* NULL-safe */

#endif
