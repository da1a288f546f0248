/* api_sources.c -- /v1/sources: inbound webhook sources (create, list, read, change,
 * delete) and the payloads they received. POST /v1/in/{id} is api_inbound.c; the record
 * and its validation are api_source_store.c. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "api.h"
#include "api_source_store.h"
#include "envelope.h"
#include "hq.h"
#include "log.h"
#include "redis_keys.h"
#include "pipeline.h"
#include "timestamp.h"

#define LIST_BATCH 256    /* HGETALLs per pipeline while listing */
#define SCAN_COUNT "1000" /* keys per SCAN while deleting dedupe keys */

/* Replace a source's hash in one step, so no reader sees half of an update. An update
 * of a source deleted meanwhile must not bring it back.
 * KEYS[1] the source hash; ARGV[1] "create" | "update", ARGV[2..] field/value pairs.
 * Returns 1, or 0 when updating a hash that is gone. */
static const char save_lua[] =
    "if ARGV[1] == 'update' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], unpack(ARGV, 2))\n"
    "return 1\n";

/* A page of payloads without their bodies (which may be megabytes each).
 * KEYS[1] the payloads stream; ARGV[1] XREVRANGE start ("+" or "(<id>"), ARGV[2] count.
 * Returns XREVRANGE's reply with every "body" field and value left out. */
static const char page_lua[] =
    "local r = redis.call('XREVRANGE', KEYS[1], ARGV[1], '-', 'COUNT', ARGV[2])\n"
    "for _, e in ipairs(r) do\n"
    "  local f, out = e[2], {}\n"
    "  for j = 1, #f, 2 do\n"
    "    if f[j] ~= 'body' then out[#out + 1] = f[j]; out[#out + 1] = f[j + 1] end\n"
    "  end\n"
    "  e[2] = out\n"
    "end\n"
    "return r\n";

/* ---- loading ---------------------------------------------------------------------------- */

/* Load source id for the caller into s. 1 when found and the caller may see it; 0 with the
 * answer set otherwise (404 for a missing one and for another tenant's, so a tenant key
 * never learns that it exists). */
static int load(api_req *rq, const char *id, source *s) {
    char key[KEY_MAX], err[HQ_ERRLEN];
    redisReply *rep;
    int rc;
    memset(s, 0, sizeof(*s));
    if (!source_id_valid(id) || source_key(rq->ctx->prefix, id, "source", key, sizeof(key)))
        goto missing;
    if (!(rep = api_cmdv(rq, (const char *const[]){"HGETALL", key, NULL})))
        return 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 0) {
        freeReplyObject(rep);
        goto missing;
    }
    rc = source_from_hash(s, id, rep, err, sizeof(err));
    freeReplyObject(rep);
    if (rc != HQ_OK) {
        source_clear(s);
        api_problem(rq, 500, "internal", NULL, "%s", err);
        return 0;
    }
    if (!api_tenant_allowed(rq, s->tenant)) {
        source_clear(s);
        goto missing;
    }
    return 1;
missing:
    api_problem(rq, 404, "not_found", NULL, "source %.100s not found", id);
    return 0;
}

/* Write s's hash (creating: a new source; else: only while it still exists). HQ_OK, or
 * HQ_ERR with the answer set. */
static int save(api_req *rq, const source *s, int creating) {
    char key[KEY_MAX];
    const char **fields = NULL;
    size_t *lens = NULL, n = 0;
    char *store = NULL;
    const char **argv = NULL;
    size_t *argvlen = NULL;
    rconn_script script;
    redisReply *rep = NULL;
    int rc = HQ_ERR;
    source_script(&script, "source_save", save_lua);
    if (source_key(rq->ctx->prefix, s->id, "source", key, sizeof(key)) != HQ_OK ||
        source_to_hash(s, &fields, &lens, &n, &store) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    argv = calloc(n + 2, sizeof(*argv));
    argvlen = calloc(n + 2, sizeof(*argvlen));
    if (!argv || !argvlen) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    argv[0] = key;
    argvlen[0] = strlen(key);
    argv[1] = creating ? "create" : "update";
    argvlen[1] = strlen(argv[1]);
    memcpy(argv + 2, fields, n * sizeof(*argv));
    memcpy(argvlen + 2, lens, n * sizeof(*argvlen));
    if (!(rep = api_eval(rq, &script, 1, (int)n + 2, argv, argvlen)))
        goto cleanup;
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1) {
        api_problem(rq, 404, "not_found", NULL, "source %s not found", s->id);
        goto cleanup;
    }
    rc = HQ_OK;
cleanup:
    if (rep)
        freeReplyObject(rep);
    free(argv);
    free(argvlen);
    free(fields);
    free(lens);
    free(store);
    return rc;
}

/* The caller's tenant rules for a body's "tenant": a tenant key may name only its own
 * tenant (absent or null: its own). HQ_OK, or HQ_ERR with 403 set. */
static int bind_tenant(api_req *rq, json_t *body) {
    const char *mine = api_tenant(rq);
    json_t *t = json_object_get(body, "tenant");
    if (!mine)
        return HQ_OK;
    if (t && !json_is_null(t) && (!json_is_string(t) || strcmp(json_string_value(t), mine))) {
        api_forbidden(rq, "tenant");
        return HQ_ERR;
    }
    json_object_set_new(body, "tenant", json_string(mine));
    return HQ_OK;
}

static int invalid(api_req *rq, const char *field, const char *err) {
    return api_problem(rq, 422, "invalid_field", field[0] ? field : NULL, "%s", err);
}

/* ---- routes ------------------------------------------------------------------------------- */

int api_source_create(api_req *rq) {
    char field[64], err[HQ_ERRLEN], key[KEY_MAX], loc[64];
    source s = {0};
    redisReply *rep;
    json_t *body = api_body_object(rq, 0);
    if (!body)
        return API_DONE;
    if (api_fields_known(rq, body, source_fields) != HQ_OK || bind_tenant(rq, body) != HQ_OK)
        goto cleanup;
    if (source_apply_json(&s, body, 1, field, sizeof(field), err, sizeof(err)) != HQ_OK) {
        invalid(rq, field, err);
        goto cleanup;
    }
    if (source_id_new(s.id, sizeof(s.id)) != HQ_OK ||
        source_set_key(rq->ctx->prefix, key, sizeof(key)) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "cannot make a source id");
        goto cleanup;
    }
    s.created_at = s.updated_at = ts_now_ms();
    /* The set first: a crash between the two leaves an id that lists skip (no hash), never
     * a source that no list shows. */
    if (!(rep = api_cmdv(rq, (const char *const[]){"SADD", key, s.id, NULL})))
        goto cleanup;
    freeReplyObject(rep);
    if (save(rq, &s, 1) != HQ_OK)
        goto cleanup;
    LOG_I("api: source %s created (verification %s, tenant %s)", s.id,
          json_string_value(json_object_get(s.verification, "type")), s.tenant ? s.tenant : "-");
    snprintf(loc, sizeof(loc), "/v1/sources/%s", s.id);
    api_header_add(rq, "Location", loc);
    /* The one answer that shows the secrets: the caller just chose them. */
    api_json(rq, 201, source_to_json(&s, 1));
cleanup:
    json_decref(body);
    source_clear(&s);
    return API_DONE;
}

int api_source_get(api_req *rq) {
    source s;
    if (!load(rq, api_param(rq, 0), &s))
        return API_DONE;
    api_json(rq, 200, source_to_json(&s, 0));
    source_clear(&s);
    return API_DONE;
}

int api_source_patch(api_req *rq) {
    char field[64], err[HQ_ERRLEN];
    source s;
    json_t *body = api_body_object(rq, 0);
    if (!body)
        return API_DONE;
    if (api_fields_known(rq, body, source_fields) != HQ_OK) {
        json_decref(body);
        return API_DONE;
    }
    if (!load(rq, api_param(rq, 0), &s)) {
        json_decref(body);
        return API_DONE;
    }
    /* A tenant key may leave "tenant" out (it stays), or name its own tenant. */
    if (json_object_get(body, "tenant") && bind_tenant(rq, body) != HQ_OK)
        goto cleanup;
    if (source_apply_json(&s, body, 0, field, sizeof(field), err, sizeof(err)) != HQ_OK) {
        invalid(rq, field, err);
        goto cleanup;
    }
    s.updated_at = ts_now_ms();
    if (save(rq, &s, 0) != HQ_OK)
        goto cleanup;
    api_json(rq, 200, source_to_json(&s, 0));
cleanup:
    json_decref(body);
    source_clear(&s);
    return API_DONE;
}

/* UNLINK every P:{id}:dedupe:* key. They expire by themselves within a day, but a
 * deleted source leaves nothing behind. HQ_OK, or HQ_ERR with the answer set. */
static int delete_dedupe(api_req *rq, const char *id) {
    char match[KEY_MAX], cursor[32] = "0";
    if (source_key(rq->ctx->prefix, id, "dedupe:*", match, sizeof(match)) != HQ_OK)
        return HQ_OK;
    do {
        redisReply *rep = api_cmdv(
            rq, (const char *const[]){"SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT, NULL});
        if (!rep)
            return HQ_ERR;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            api_problem(rq, 500, "redis_error", NULL, "unexpected reply to SCAN");
            return HQ_ERR;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        if (keys->elements) {
            const char **argv = calloc(keys->elements + 1, sizeof(*argv));
            redisReply *del;
            if (!argv) {
                freeReplyObject(rep);
                api_problem(rq, 500, "internal", NULL, "out of memory");
                return HQ_ERR;
            }
            argv[0] = "UNLINK";
            for (size_t i = 0; i < keys->elements; i++)
                argv[i + 1] = keys->element[i]->str;
            del = api_cmd(rq, (int)keys->elements + 1, argv, NULL);
            free(argv);
            if (!del) {
                freeReplyObject(rep);
                return HQ_ERR;
            }
            freeReplyObject(del);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return HQ_OK;
}

int api_source_delete(api_req *rq) {
    char set[KEY_MAX], hash[KEY_MAX], payloads[KEY_MAX];
    redisReply *rep;
    source s;
    if (!load(rq, api_param(rq, 0), &s))
        return API_DONE;
    if (source_set_key(rq->ctx->prefix, set, sizeof(set)) != HQ_OK ||
        source_key(rq->ctx->prefix, s.id, "source", hash, sizeof(hash)) != HQ_OK ||
        source_key(rq->ctx->prefix, s.id, "payloads", payloads, sizeof(payloads)) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "key too long");
        goto cleanup;
    }
    /* The hash first: once it is gone, POST /v1/in refuses (the store script checks it),
     * so nothing writes a payload after its stream is deleted. */
    if (!(rep = api_cmdv(rq, (const char *const[]){"UNLINK", hash, payloads, NULL})))
        goto cleanup;
    freeReplyObject(rep);
    if (!(rep = api_cmdv(rq, (const char *const[]){"SREM", set, s.id, NULL})))
        goto cleanup;
    freeReplyObject(rep);
    if (delete_dedupe(rq, s.id) != HQ_OK)
        goto cleanup;
    LOG_I("api: source %s deleted", s.id);
    api_empty(rq, 204);
cleanup:
    source_clear(&s);
    return API_DONE;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether a listed source shows: the caller may see it and it matches ?tenant=. */
static int shows(const api_req *rq, const source *s, const char *want) {
    if (!api_tenant_allowed(rq, s->tenant))
        return 0;
    return !want || (s->tenant && strcmp(s->tenant, want) == 0);
}

int api_source_list(api_req *rq) {
    char cursor[SOURCE_ID_LEN + 8], set[KEY_MAX], err[HQ_ERRLEN];
    const char *want = api_query(rq, "tenant");
    const char *mine = api_tenant(rq);
    size_t limit, start = 0, found = 0;
    const char **ids = NULL;
    redisReply *members = NULL;
    pipeline *p = NULL;
    json_t *data = NULL;
    const char *next = NULL;
    rconn *r;
    if (api_limit(rq, &limit) != HQ_OK || api_cursor(rq, cursor, sizeof(cursor)) != HQ_OK)
        return API_DONE;
    if (cursor[0] && !source_id_valid(cursor))
        return api_problem(rq, 400, "invalid_cursor", "cursor",
                           "cursor is not one this API returned (pass next_cursor as it came)");
    if (want && envelope_tenant_valid(want, err, sizeof(err)) != HQ_OK)
        return api_problem(rq, 400, "invalid_parameter", "tenant", "tenant: %s", err);
    if (mine && want && strcmp(want, mine) != 0)
        return api_forbidden(rq, "tenant");
    if (source_set_key(rq->ctx->prefix, set, sizeof(set)) != HQ_OK)
        return api_problem(rq, 500, "internal", NULL, "key too long");
    if (!(members = api_cmdv(rq, (const char *const[]){"SMEMBERS", set, NULL})))
        return API_DONE;
    if (members->type != REDIS_REPLY_ARRAY) {
        api_problem(rq, 500, "redis_error", NULL, "unexpected reply to SMEMBERS");
        goto cleanup;
    }
    if (!(ids = calloc(members->elements + 1, sizeof(*ids))) || !(data = json_array()) ||
        !(p = pipeline_new())) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    size_t n = 0;
    for (size_t i = 0; i < members->elements; i++) {
        const char *id = members->element[i]->str;
        if (id && source_id_valid(id) && strcmp(id, cursor) > 0)
            ids[n++] = id;
    }
    qsort(ids, n, sizeof(*ids), cmp_str);
    /* Read the hashes a batch at a time until the page has limit + 1 sources (the one more
     * says whether there is a next page) or the ids run out. */
    while (start < n && found <= limit) {
        size_t batch = n - start < LIST_BATCH ? n - start : LIST_BATCH;
        pipeline_reset(p);
        for (size_t i = 0; i < batch; i++) {
            char key[KEY_MAX];
            source_key(rq->ctx->prefix, ids[start + i], "source", key, sizeof(key));
            pipeline_begin(p, 0, NULL);
            pipeline_arg(p, "HGETALL");
            pipeline_arg(p, key);
            pipeline_end(p);
        }
        if (!(r = api_redis(rq)))
            goto cleanup;
        if (pipeline_exec(p, r, err, sizeof(err)) != HQ_OK) {
            api_redis_failed(rq, err);
            goto cleanup;
        }
        for (size_t i = 0; i < batch && found <= limit; i++) {
            redisReply *h = pipeline_reply(p, i);
            source s = {0};
            if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0)
                continue; /* deleted meanwhile, or the set's id outlived a failed create */
            if (source_from_hash(&s, ids[start + i], h, err, sizeof(err)) != HQ_OK) {
                LOG_W("api: list sources: %s", err);
                source_clear(&s);
                continue;
            }
            if (shows(rq, &s, want ? want : mine)) {
                if (found < limit) {
                    json_array_append_new(data, source_to_json(&s, 0));
                    next = ids[start + i];
                }
                found++;
            }
            source_clear(&s);
        }
        start += batch;
    }
    api_json(rq, 200, api_page(data, found > limit ? next : NULL));
    data = NULL;
cleanup:
    json_decref(data);
    pipeline_free(p);
    free(ids);
    if (members)
        freeReplyObject(members);
    return API_DONE;
}

/* ---- payloads ------------------------------------------------------------------------------- */

/* The fields of one payloads stream entry, by name; NULL when absent. */
static const redisReply *entry_field(const redisReply *fields, const char *name) {
    for (size_t i = 0; fields && i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1];
    return NULL;
}

static const char *entry_str(const redisReply *fields, const char *name) {
    const redisReply *v = entry_field(fields, name);
    return v && v->type == REDIS_REPLY_STRING ? v->str : NULL;
}

/* A payload as the API shows it, without the body. */
static json_t *payload_json(const char *source_id, const char *sid, const redisReply *fields) {
    char pid[PAYLOAD_ID_LEN];
    const char *ct = entry_str(fields, "content_type");
    const char *hdrs = entry_str(fields, "headers");
    const char *size = entry_str(fields, "size");
    json_t *h = hdrs ? json_loads(hdrs, 0, NULL) : NULL;
    payload_id_from_sid(sid, pid, sizeof(pid));
    if (!json_is_object(h)) {
        json_decref(h);
        h = json_object();
    }
    return json_pack("{s:s,s:s,s:s?,s:s?,s:o,s:o,s:I,s:s?,s:s?}", "id", pid, "source_id", source_id,
                     "event_id", entry_str(fields, "event_id"), "type", entry_str(fields, "type"),
                     "content_type", ct ? json_string(ct) : json_null(), "headers", h, "size",
                     (json_int_t)(size ? strtoll(size, NULL, 10) : 0), "source_ip",
                     entry_str(fields, "source_ip"), "received_at",
                     entry_str(fields, "received_at"));
}

int api_source_payloads(api_req *rq) {
    char cursor[PAYLOAD_ID_LEN], key[KEY_MAX], startbuf[PAYLOAD_ID_LEN + 2], count[24];
    const char *next = NULL;
    size_t limit;
    rconn_script script;
    redisReply *rep = NULL;
    json_t *data = NULL;
    source s;
    if (api_limit(rq, &limit) != HQ_OK || api_cursor(rq, cursor, sizeof(cursor)) != HQ_OK)
        return API_DONE;
    if (cursor[0] && !payload_sid_valid(cursor))
        return api_problem(rq, 400, "invalid_cursor", "cursor",
                           "cursor is not one this API returned (pass next_cursor as it came)");
    if (!load(rq, api_param(rq, 0), &s))
        return API_DONE;
    source_script(&script, "source_payload_page", page_lua);
    source_key(rq->ctx->prefix, s.id, "payloads", key, sizeof(key));
    snprintf(startbuf, sizeof(startbuf), "%s%s", cursor[0] ? "(" : "+", cursor);
    snprintf(count, sizeof(count), "%zu", limit + 1);
    if (!(rep = api_eval(rq, &script, 1, 3, (const char *[]){key, startbuf, count}, NULL)))
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY || !(data = json_array())) {
        api_problem(rq, 500, "internal", NULL, "unexpected reply listing payloads");
        goto cleanup;
    }
    for (size_t i = 0; i < rep->elements && i < limit; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        json_array_append_new(data, payload_json(s.id, e->element[0]->str, e->element[1]));
        next = e->element[0]->str;
    }
    api_json(rq, 200, api_page(data, rep->elements > limit ? next : NULL));
    data = NULL;
cleanup:
    json_decref(data);
    if (rep)
        freeReplyObject(rep);
    source_clear(&s);
    return API_DONE;
}

/* The whole payload. Its body goes into the answer as received when it is JSON (spliced
 * in, so big numbers and key order survive), else as a JSON string. */
static int answer_payload(api_req *rq, const char *source_id, const char *sid,
                          const redisReply *fields) {
    const redisReply *body = entry_field(fields, "body");
    const char *is_json = entry_str(fields, "json");
    json_t *j = payload_json(source_id, sid, fields);
    char *head = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    char *tail = NULL, *out = NULL;
    const char *btext = "\"\"";
    size_t blen = 2, hl;
    struct MHD_Response *resp;
    json_decref(j);
    if (!head)
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    if (body && body->type == REDIS_REPLY_STRING) {
        if (is_json && strcmp(is_json, "true") == 0) {
            btext = body->str;
            blen = body->len;
        } else {
            /* Inbound bodies are checked to be UTF-8 before they are stored. */
            json_t *str = json_stringn(body->str, body->len);
            tail = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
            json_decref(str);
            if (!tail) {
                free(head);
                return api_problem(rq, 500, "internal", NULL, "out of memory");
            }
            btext = tail;
            blen = strlen(tail);
        }
    }
    hl = strlen(head) - 1; /* without the closing brace */
    if (!(out = malloc(hl + 8 + blen + 2))) {
        free(head);
        free(tail);
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    }
    memcpy(out, head, hl);
    memcpy(out + hl, ",\"body\":", 8);
    memcpy(out + hl + 8, btext, blen);
    out[hl + 8 + blen] = '}';
    free(head);
    free(tail);
    resp = MHD_create_response_from_buffer(hl + 9 + blen, out, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(out);
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return api_take_response(rq, 200, resp);
}

int api_source_payload_get(api_req *rq) {
    char sid[PAYLOAD_ID_LEN], key[KEY_MAX];
    const char *pid = api_param(rq, 1);
    redisReply *rep = NULL;
    source s;
    if (!load(rq, api_param(rq, 0), &s))
        return API_DONE;
    if (payload_id_to_sid(pid, sid, sizeof(sid)) != HQ_OK) {
        api_problem(rq, 404, "not_found", NULL, "payload %.100s not found", pid);
        goto cleanup;
    }
    source_key(rq->ctx->prefix, s.id, "payloads", key, sizeof(key));
    if (!(rep = api_cmdv(rq, (const char *const[]){"XRANGE", key, sid, sid, NULL})))
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1 ||
        rep->element[0]->type != REDIS_REPLY_ARRAY || rep->element[0]->elements != 2) {
        api_problem(rq, 404, "not_found", NULL, "payload %.100s not found", pid);
        goto cleanup;
    }
    answer_payload(rq, s.id, sid, rep->element[0]->element[1]);
cleanup:
    if (rep)
        freeReplyObject(rep);
    source_clear(&s);
    return API_DONE;
}
