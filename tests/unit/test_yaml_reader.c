/* test_yaml_reader.c -- the YAML reader on its own, without config's keys: nested mappings
 * flattened to dotted keys in file order, lists with the line of each item, what is and is
 * not interpreted (quotes, tags, anchors, aliases), errors as "NAME:LINE: problem" with
 * the entries before the problem still returned, and every limit on both sides of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq.h"
#include "yaml_reader.h"

/* Parse a copy of text that ends exactly at its length (the reader must not need a NUL). */
static int parse(const char *text, yread_doc **doc, char *err, size_t errlen) {
    size_t len = strlen(text);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    int rc = yread_parse("t.yaml", copy, len, doc, err, errlen);
    free(copy);
    return rc;
}

static yread_doc *parse_ok(const char *text) {
    yread_doc *doc = NULL;
    char err[HQ_ERRLEN] = "";
    if (parse(text, &doc, err, sizeof(err)) != HQ_OK)
        fail_msg("refused: %s", err);
    assert_non_null(doc);
    return doc;
}

/* Refused with exactly "t.yaml:" + want; returns the partial document. */
static yread_doc *parse_bad(const char *text, const char *want) {
    yread_doc *doc = NULL;
    char err[HQ_ERRLEN] = "", exp[HQ_ERRLEN];
    assert_int_equal(parse(text, &doc, err, sizeof(err)), HQ_ERR);
    snprintf(exp, sizeof(exp), "t.yaml:%s", want);
    if (strncmp(err, exp, strlen(exp)) != 0)
        fail_msg("got '%s', want prefix '%s'", err, exp);
    assert_non_null(doc);
    return doc;
}

static void check_entry(const yread_doc *d, size_t i, yread_kind kind, const char *key,
                        size_t line) {
    assert_true(i < d->n);
    const yread_entry *e = &d->entries[i];
    if (e->kind != kind || strcmp(e->key, key) != 0 || e->line != line)
        fail_msg("entry %zu: kind %d '%s' line %zu, want kind %d '%s' line %zu", i, (int)e->kind,
                 e->key, e->line, (int)kind, key, line);
    if (kind == YREAD_VALUE)
        assert_non_null(e->value);
    else
        assert_null(e->value);
    if (kind != YREAD_LIST) {
        assert_null(e->items);
        assert_int_equal(e->n_items, 0);
    }
}

static void check_value(const yread_doc *d, size_t i, const char *key, size_t line,
                        const char *value) {
    check_entry(d, i, YREAD_VALUE, key, line);
    assert_string_equal(d->entries[i].value, value);
}

static void test_nested_maps_become_dotted_keys(void **state) {
    (void)state;
    yread_doc *d = parse_ok("# settings\n"
                            "redis:\n"
                            "  url: redis://h:1/0\n"
                            "  deep:\n"
                            "    er: x\n"
                            "    est:\n"
                            "      leaf: 1\n"
                            "log:\n"
                            "  level: debug\n"
                            "top: value\n");
    assert_int_equal(d->n, 9);
    check_entry(d, 0, YREAD_MAPPING, "redis", 2); /* a mapping's entry precedes its keys */
    check_value(d, 1, "redis.url", 3, "redis://h:1/0");
    check_entry(d, 2, YREAD_MAPPING, "redis.deep", 4);
    check_value(d, 3, "redis.deep.er", 5, "x");
    check_entry(d, 4, YREAD_MAPPING, "redis.deep.est", 6);
    check_value(d, 5, "redis.deep.est.leaf", 7, "1");
    check_entry(d, 6, YREAD_MAPPING, "log", 8);
    check_value(d, 7, "log.level", 9, "debug");
    check_value(d, 8, "top", 10, "value");
    yread_free(d);

    /* Flow style reads the same; a dotted key is taken as written; keys repeat freely
     * (whether that is allowed is the caller's call). */
    d = parse_ok("{a: {b: 1, c: {}}, x.y: 2, a: {b: 3}}\n");
    assert_int_equal(d->n, 6);
    check_entry(d, 0, YREAD_MAPPING, "a", 1);
    check_value(d, 1, "a.b", 1, "1");
    check_entry(d, 2, YREAD_MAPPING, "a.c", 1);
    check_value(d, 3, "x.y", 1, "2");
    check_entry(d, 4, YREAD_MAPPING, "a", 1);
    check_value(d, 5, "a.b", 1, "3");
    yread_free(d);
}

static void test_values_are_text(void **state) {
    (void)state;
    yread_doc *d = parse_ok("a:\n"
                            "b: ''\n"
                            "c: \"\"\n"
                            "d: ~\n"
                            "e: !!int 12\n"
                            "f: \"quoted: # not a comment\"\n"
                            "g: |\n"
                            "  two\n"
                            "  lines\n"
                            "h: 'it''s'\n"
                            "\"i j\": \"tab\\there\"\n");
    assert_int_equal(d->n, 9);
    /* Only nothing-at-all is "empty"; quoted empties and ~ are values like any other. */
    check_value(d, 0, "a", 1, "");
    assert_true(d->entries[0].empty);
    check_value(d, 1, "b", 2, "");
    assert_false(d->entries[1].empty);
    check_value(d, 2, "c", 3, "");
    assert_false(d->entries[2].empty);
    check_value(d, 3, "d", 4, "~");
    assert_false(d->entries[3].empty);
    check_value(d, 4, "e", 5, "12");
    check_value(d, 5, "f", 6, "quoted: # not a comment");
    check_value(d, 6, "g", 7, "two\nlines\n");
    check_value(d, 7, "h", 10, "it's");
    check_value(d, 8, "i j", 11, "tab\there");
    yread_free(d);
}

static void test_lists(void **state) {
    (void)state;
    yread_doc *d = parse_ok("retry:\n"
                            "  schedule:\n"
                            "    - 30s\n"
                            "    - \"2m\"\n"
                            "\n"
                            "    - 1h\n"
                            "  flow: [a, 'b c', \"\"]\n"
                            "  none: []\n");
    assert_int_equal(d->n, 4);
    check_entry(d, 1, YREAD_LIST, "retry.schedule", 2);
    const yread_entry *e = &d->entries[1];
    assert_int_equal(e->n_items, 3);
    assert_string_equal(e->items[0], "30s");
    assert_string_equal(e->items[1], "2m");
    assert_string_equal(e->items[2], "1h");
    assert_int_equal(e->item_lines[0], 3);
    assert_int_equal(e->item_lines[1], 4);
    assert_int_equal(e->item_lines[2], 6);
    assert_false(e->truncated);
    check_entry(d, 2, YREAD_LIST, "retry.flow", 7);
    e = &d->entries[2];
    assert_int_equal(e->n_items, 3);
    assert_string_equal(e->items[1], "b c");
    assert_string_equal(e->items[2], "");
    check_entry(d, 3, YREAD_LIST, "retry.none", 8);
    assert_int_equal(d->entries[3].n_items, 0);
    yread_free(d);

    yread_doc *bad =
        parse_bad("k:\n  - a\n  - [b]\n", "3: key 'k': list items must be plain values");
    /* The list the problem is in comes back truncated, with the items before it. */
    assert_int_equal(bad->n, 1);
    check_entry(bad, 0, YREAD_LIST, "k", 1);
    assert_true(bad->entries[0].truncated);
    assert_int_equal(bad->entries[0].n_items, 1);
    assert_string_equal(bad->entries[0].items[0], "a");
    yread_free(bad);
    yread_free(parse_bad("k: [a, {b: 1}]\n", "1: key 'k': list items must be plain values"));
    yread_free(parse_bad("k: [&x a, *x]\n", "1: key 'k': list items must be plain values"));
}

static void test_anchors_ignored_aliases_returned(void **state) {
    (void)state;
    yread_doc *d = parse_ok("base: &b\n"
                            "  x: &v 1\n"
                            "other: *b\n"
                            "list: &l [1]\n");
    assert_int_equal(d->n, 4);
    check_entry(d, 0, YREAD_MAPPING, "base", 1);
    check_value(d, 1, "base.x", 2, "1");
    check_entry(d, 2, YREAD_ALIAS, "other", 3); /* not resolved: the caller decides */
    check_entry(d, 3, YREAD_LIST, "list", 4);
    yread_free(d);
    /* An alias needs no anchor to be reported as one. */
    d = parse_ok("a:\n  b: *nowhere\n");
    check_entry(d, 1, YREAD_ALIAS, "a.b", 2);
    yread_free(d);
}

static void test_empty_documents(void **state) {
    (void)state;
    static const char *const empty[] = {"",      "\n\n",        "# only a comment\n",
                                        "---\n", "--- \n...\n", "{}\n"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        yread_doc *d = parse_ok(empty[i]);
        assert_int_equal(d->n, 0);
        yread_free(d);
    }
    yread_free(NULL);
}

static void test_errors_name_the_line(void **state) {
    (void)state;
    /* Malformed YAML: libyaml's words, at the line where it gave up. */
    yread_free(parse_bad("a:\n  b: 1\n c: 2\n", "3: YAML: "));
    yread_free(parse_bad("a: [1, 2\n", "2: YAML: "));
    yread_free(parse_bad("a: \"open\n\n", "3: YAML: "));
    yread_free(parse_bad("a:\tb: c\n", "1: YAML: "));
    /* Shapes the reader does not take. */
    yread_free(parse_bad("- a\n- b\n", "1: the top level must be a mapping of sections"));
    yread_free(parse_bad("just text\n", "1: the top level must be a mapping"));
    yread_free(parse_bad("\n*a\n", "2: the top level must be a mapping"));
    yread_free(parse_bad("? [a, b]\n: c\n", "1: keys must be plain names"));
    yread_free(parse_bad("x:\n  ? {k: v}\n  : c\n", "2: keys must be plain names"));
    yread_free(parse_bad("a: 1\n---\nb: 2\n", "2: only one YAML document is allowed"));

    /* The entries before a problem come back, so a caller can report an earlier one. */
    yread_doc *d = parse_bad("a: 1\nb:\n  c: 2\n  d: [\n", "5: YAML: ");
    assert_int_equal(d->n, 4);
    check_value(d, 0, "a", 1, "1");
    check_entry(d, 1, YREAD_MAPPING, "b", 2);
    check_value(d, 2, "b.c", 3, "2");
    check_entry(d, 3, YREAD_LIST, "b.d", 4);
    assert_true(d->entries[3].truncated);
    yread_free(d);
    /* A value that is itself broken is not returned. */
    d = parse_bad("a: 1\nb: \"open\n", "3: YAML: ");
    assert_int_equal(d->n, 1);
    yread_free(d);

    /* The name is only for messages; without one the message still has a place. */
    char err[HQ_ERRLEN];
    yread_doc *nd = NULL;
    assert_int_equal(yread_parse(NULL, "- x\n", 4, &nd, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "<yaml>:1: the top level must be a mapping of sections");
    yread_free(nd);
    /* err is optional. */
    assert_int_equal(yread_parse("t", "- x\n", 4, &nd, NULL, 0), HQ_ERR);
    yread_free(nd);
}

static void test_text_is_bounded_by_len(void **state) {
    (void)state;
    /* Only len bytes are read: the rest of the buffer is not part of the document. */
    const char *text = "a: 1\nb: [unclosed";
    yread_doc *d = NULL;
    char err[HQ_ERRLEN];
    assert_int_equal(yread_parse("t", text, 5, &d, err, sizeof(err)), HQ_OK);
    assert_int_equal(d->n, 1);
    check_value(d, 0, "a", 1, "1");
    yread_free(d);
}

/* n levels of keys "k1.k2...kn: v", as block YAML. */
static char *nested(int n) {
    char *s = calloc(1, (size_t)n * (size_t)(n + 8) + 16);
    assert_non_null(s);
    size_t j = 0;
    for (int lvl = 1; lvl <= n; lvl++) {
        for (int sp = 1; sp < lvl; sp++)
            s[j++] = ' ';
        j += (size_t)sprintf(s + j, "k%d:%s", lvl, lvl == n ? " v\n" : "\n");
    }
    return s;
}

static void test_depth_limit(void **state) {
    (void)state;
    char *s = nested(YREAD_DEPTH_MAX);
    yread_doc *d = parse_ok(s);
    assert_int_equal(d->n, YREAD_DEPTH_MAX);
    check_value(d, YREAD_DEPTH_MAX - 1, "k1.k2.k3.k4.k5.k6.k7.k8", YREAD_DEPTH_MAX, "v");
    yread_free(d);
    free(s);

    s = nested(YREAD_DEPTH_MAX + 1);
    d = parse_bad(s,
                  "8: key 'k1.k2.k3.k4.k5.k6.k7.k8': YAML nested too deeply (more than 8 levels)");
    /* The mapping that is too deep is still returned, before anything inside it. */
    assert_int_equal(d->n, YREAD_DEPTH_MAX);
    check_entry(d, YREAD_DEPTH_MAX - 1, YREAD_MAPPING, "k1.k2.k3.k4.k5.k6.k7.k8", 8);
    yread_free(d);
    free(s);
    /* Flow style counts the same way. */
    yread_free(parse_bad("a: {b: {c: {d: {e: {f: {g: {h: {i: 1}}}}}}}}\n",
                         "1: key 'a.b.c.d.e.f.g.h': YAML nested too deeply"));
}

static void test_key_length_limit(void **state) {
    (void)state;
    char text[512], want[64];
    /* "sect." + 122 = 127 bytes, the most that fits with the NUL. */
    snprintf(text, sizeof(text), "sect:\n  %0122d: 1\n", 0);
    yread_doc *d = parse_ok(text);
    assert_int_equal(strlen(d->entries[1].key), YREAD_KEY_MAX - 1);
    yread_free(d);
    snprintf(text, sizeof(text), "sect:\n  %0123d: 1\n", 0);
    snprintf(want, sizeof(want), "2: key name too long");
    d = parse_bad(text, want);
    assert_int_equal(d->n, 1);
    yread_free(d);
}

/* "k: [x, x, ...]" with n items. */
static char *list_of(size_t n) {
    char *s = malloc(n * 3 + 16);
    assert_non_null(s);
    size_t j = (size_t)sprintf(s, "k: [");
    for (size_t i = 0; i < n; i++)
        j += (size_t)sprintf(s + j, i ? ",x" : "x");
    strcpy(s + j, "]\n");
    return s;
}

static void test_list_and_entry_limits(void **state) {
    (void)state;
    char *s = list_of(YREAD_ITEMS_MAX);
    yread_doc *d = parse_ok(s);
    assert_int_equal(d->entries[0].n_items, YREAD_ITEMS_MAX);
    yread_free(d);
    free(s);
    s = list_of(YREAD_ITEMS_MAX + 1);
    d = parse_bad(s, "1: key 'k': more than 1024 list items");
    assert_int_equal(d->n, 1);
    assert_true(d->entries[0].truncated);
    assert_int_equal(d->entries[0].n_items, YREAD_ITEMS_MAX);
    yread_free(d);
    free(s);

    /* YREAD_ENTRIES_MAX keys read; one more is an error on its line. */
    size_t cap = (YREAD_ENTRIES_MAX + 1) * 12 + 1, j = 0;
    char *many = malloc(cap);
    assert_non_null(many);
    for (int i = 0; i <= YREAD_ENTRIES_MAX; i++)
        j += (size_t)snprintf(many + j, cap - j, "k%d: 1\n", i);
    char *last = strrchr(many, 'k');
    *last = '\0'; /* just YREAD_ENTRIES_MAX lines */
    d = parse_ok(many);
    assert_int_equal(d->n, YREAD_ENTRIES_MAX);
    yread_free(d);
    *last = 'k';
    d = parse_bad(many, "4097: more than 4096 keys");
    assert_int_equal(d->n, YREAD_ENTRIES_MAX);
    yread_free(d);
    free(many);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_maps_become_dotted_keys),
        cmocka_unit_test(test_values_are_text),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_anchors_ignored_aliases_returned),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_text_is_bounded_by_len),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_key_length_limit),
        cmocka_unit_test(test_list_and_entry_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
