"""docs/openapi.yaml against the real hookq-api, both ways, every request through curl (docs/openapi.md).

- The document is what tests/tools/openapi_merge.py makes of docs/openapi/*.yaml, and is
  well-formed for this test (openapi_check.lint).
- `hookq-api --routes` serves exactly the documented (method, path) pairs, with the
  documented operationIds.
- Every documented operation, sent its documented example against a fixture set (one
  endpoint, one source, one published event, one inbound payload, made from the create
  operations' own examples), answers its x-hookq-success status with a body that
  validates against the documented schema; and the errors every operation can give
  (401 without a key, 400/415/422 for a bad body, 404 for an unknown id, 400 for a bad
  page, 405 for another method, 503 with Redis down) come as documented.

Nothing is skipped: a missing docs/openapi.yaml fails. Each live check collects every
mismatch and fails once with the whole list, so one run shows a fragment author all of
what to fix.
"""
import contextlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse

import apiutil as au
import harness as h
import openapi_check as oc

SPEC = os.path.join(h.SRC, 'docs', 'openapi.yaml')
TOOLS = os.path.join(h.SRC, 'tests', 'tools')
MERGE = os.path.join(TOOLS, 'openapi_merge.py')
# The fixture set is made by these operations, in this order, from their examples.
FIXTURE_OPS = (('createEndpoint', 'endpoint'), ('createSource', 'source'),
               ('publishEvent', 'event'), ('receiveInbound', 'payload'))
# The fixture source verifies nothing (so receiveInbound's example can be sent unsigned)
# and so cannot dedupe; the rest of createSource's example (its event type header, say) is
# kept. Fields the body schema does not have are left out.
FIXTURE_BODY = {'createSource': {'verification': {'type': 'none'}, 'dedupe': False}}
# Which fixture fills {id}: the collection right after /v1/.
ID_BY_COLLECTION = {'endpoints': 'endpoint', 'events': 'event', 'sources': 'source'}
PARAM_FIXTURE = {'payload_id': 'payload', 'source_id': 'source'}
UNKNOWN_FIELD = 'x_hookq_unknown_field'
WRONG_KEY = 'not-a-key-of-this-server-0123456789'

sys.path.insert(0, TOOLS)
import openapi_merge  # noqa: E402  (tests/tools is not a package)

_spec = None


def spec():
    global _spec
    if _spec is None:
        if not os.path.exists(SPEC):
            raise AssertionError('%s is missing: run python3 tests/tools/openapi_merge.py' % SPEC)
        _spec = oc.load_spec(SPEC)
    return _spec


# ---- HTTP ---------------------------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.ctype = headers.get('content-type', '').split(';')[0].strip().lower()
        self.text = raw.decode('utf-8', 'replace')
        self.body, self.json_error = None, None
        if self.ctype in oc.JSON_TYPES or self.ctype.endswith('+json'):
            try:
                self.body = json.loads(raw)
            except ValueError as e:
                self.json_error = str(e)


def send(port, method, path, body=None, ctype=None, key=au.ADMIN, headers=None):
    """One request through the real curl binary (the client docs/api.md shows), on a fresh
    connection. body: bytes as they are, anything else as JSON. A text/event-stream answer
    never ends: curl gives up after a second and only its first bytes are looked at."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs['Authorization'] = 'Bearer ' + key
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs['Content-Type'] = ctype or 'application/json'
    argv = ['curl', '-sS', '-i', '--http1.1', '-X', method, '--max-time', str(1.5 * h.SLOW),
            # curl adds "Expect: 100-continue" to big bodies; keep requests as sent
            '-H', 'Expect:']
    for k, v in hdrs.items():
        argv += ['-H', '%s: %s' % (k, v)]
    if data is not None:
        argv += ['--data-binary', '@-']
    argv.append('http://127.0.0.1:%d%s' % (port, path))
    p = subprocess.run(argv, input=data, capture_output=True, timeout=30 * h.SLOW)
    out = p.stdout
    head, sep, raw = out.partition(b'\r\n\r\n')
    while head.startswith(b'HTTP/1.1 100') and sep:
        head, sep, raw = raw.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    if not sep or not lines[0].startswith('HTTP/'):
        raise AssertionError('curl %s %s: exit %d, no answer: %r' % (method, path, p.returncode,
                                                                    p.stderr[-300:]))
    rh = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        rh[k.strip().lower()] = v.strip()
    stream = rh.get('content-type', '').startswith('text/event-stream')
    # 28: the time limit, expected for a stream only
    if p.returncode != 0 and not (stream and p.returncode == 28):
        raise AssertionError('curl %s %s: exit %d: %r' % (method, path, p.returncode,
                                                          p.stderr[-300:]))
    return Answer(int(lines[0].split()[1]), rh, raw[:256] if stream else raw)


def unknown_id(real):
    """An id shaped like real (same prefix, same length) that no object has."""
    if len(real) <= 4:
        return real + 'ZZZZ'
    return real[:-4] + ('0000' if real.endswith('ZZZZ') else 'ZZZZ')


def param_example(doc, p):
    if 'example' in p:
        return p['example']
    s = oc.top_schema(doc, p.get('schema')) or {}
    return s.get('example', s.get('default'))


# ---- the live checks ----------------------------------------------------------------------

class Live:
    """One server's worth of checks: requests built from the document, answers checked
    against it, mismatches collected in problems."""

    def __init__(self, api, doc):
        self.api = api
        self.doc = doc
        self.v = oc.Validator(doc)
        self.ops = oc.operations(doc)
        self.by_id = {op.id: op for op in self.ops}
        self.problems = []
        self.seen = set()  # (operationId, status) answered

    def fail(self, op, label, msg):
        """Note a mismatch (once: the same one from two passes is one problem)."""
        self.problems.append('%s %s (%s) [%s]: %s' % (op.method, op.path, op.id, label, msg))

    def fill(self, op, fx, unknown=None):
        """The path with its parameters from the fixtures; the one named unknown gets an
        id no object has. None (and a problem) when a parameter has no fixture."""
        segs = op.path.split('/')
        out = []
        for seg in segs:
            if seg.startswith('{') and seg.endswith('}'):
                name = seg[1:-1]
                kind = PARAM_FIXTURE.get(name)
                if name == 'id':
                    kind = ID_BY_COLLECTION.get(segs[2] if len(segs) > 2 else '')
                if kind is None:
                    self.fail(op, 'path', 'no fixture fills {%s} (the test knows {id} under '
                              '/v1/endpoints, /v1/events, /v1/sources, {payload_id}, {source_id})'
                              % name)
                    return None
                if kind not in fx:
                    self.fail(op, 'path', 'not sent: it needs the fixture %s, which could not be '
                              'made' % kind)
                    return None
                val = unknown_id(fx[kind]) if name == unknown else fx[kind]
                seg = urllib.parse.quote(val, safe='')
            out.append(seg)
        return '/'.join(out)

    def request(self, op, fx, unknown=None, query=None, key='default', body='example',
                ctype=None, fixture=False):
        """Send op's documented request: its example body (with FIXTURE_BODY over it when
        making a fixture), the examples of its required query parameters and of every
        header parameter that has one (an inbound sender's event type header, say).
        Returns the Answer, or None when the request could not be built."""
        path = self.fill(op, fx, unknown)
        if path is None:
            return None
        q, hdrs = {}, {}
        for p in op.params():
            if p.get('required') and p.get('in') == 'query':
                q[p['name']] = param_example(self.doc, p)
            elif p.get('in') == 'header' and param_example(self.doc, p) is not None:
                hdrs[p['name']] = str(param_example(self.doc, p))
        q.update(query or {})
        if q:
            path += '?' + urllib.parse.urlencode(q)
        if key == 'default':
            key = au.ADMIN if op.secured else None
        media = op.body_media()
        if body == 'example':
            body = None
            if media and 'example' in media[1]:
                body = media[1]['example']
                if fixture and isinstance(body, dict):
                    props = (oc.top_schema(self.doc, media[1].get('schema')) or {}).get(
                        'properties') or {}
                    body = dict(body, **{k: v for k, v in FIXTURE_BODY.get(op.id, {}).items()
                                         if k in props})
                json_media = media[0] in oc.JSON_TYPES or media[0].endswith('+json')
                if not json_media and isinstance(body, str):
                    body = body.encode()  # a raw body (text/plain, */*): sent as written
                if ctype is None:
                    ctype = media[0] if media[0] != '*/*' else \
                        'text/plain' if isinstance(body, bytes) else 'application/json'
        return send(self.api.port, op.method, path, body, ctype, key, hdrs)

    def check(self, op, ans, want, label, code=None, field=None):
        """ans has status want, a documented Content-Type, a body that validates against
        the documented schema (and Problem, for an error), the documented required
        headers, and the given problem code/field. Returns whether all held."""
        n = len(self.problems)
        if ans is None:
            return False
        self.seen.add((op.id, ans.status))
        if ans.status != want:
            self.fail(op, label, 'answered %d, not %d: %s' % (ans.status, want, ans.text[:300]))
            return False
        r = op.response(ans.status)
        if r is None:
            self.fail(op, label, 'answered %d, which it does not document' % ans.status)
            return False
        content = r.get('content') or {}
        if not content:
            if ans.raw:
                self.fail(op, label, '%d is documented without a body, but one came: %r'
                          % (ans.status, ans.text[:200]))
        elif ans.ctype not in content:
            self.fail(op, label, 'Content-Type %r is not documented for %d (%s)'
                      % (ans.ctype, ans.status, ', '.join(content)))
        elif ans.json_error:
            self.fail(op, label, 'the %s body is not JSON (%s): %r'
                      % (ans.ctype, ans.json_error, ans.text[:200]))
        elif ans.body is not None and 'schema' in content[ans.ctype]:
            for e in self.v.errors(ans.body, content[ans.ctype]['schema']):
                self.fail(op, label, 'the %d body does not match its schema: %s\n    body: %s'
                          % (ans.status, e, ans.text[:400]))
        for hn, hv in (r.get('headers') or {}).items():
            hv = oc.deref(self.doc, hv)
            got = ans.headers.get(hn.lower())
            if hv.get('required') and got is None:
                self.fail(op, label, 'header %s is documented as required for %d but did not '
                          'come' % (hn, ans.status))
            elif got is not None and 'schema' in hv:
                for e in self.v.errors(got, hv['schema'], hn):
                    self.fail(op, label, 'header ' + e)
        if ans.status >= 400:
            if not isinstance(ans.body, dict):
                self.fail(op, label, 'an error without a problem+json body: %r' % ans.text[:200])
            else:
                for e in self.v.errors(ans.body, {'$ref': '#/components/schemas/Problem'}):
                    self.fail(op, label, 'not a Problem: %s' % e)
                if code and ans.body.get('code') != code:
                    self.fail(op, label, 'code %r, not %r' % (ans.body.get('code'), code))
                if field and ans.body.get('field') != field:
                    self.fail(op, label, 'field %r, not %r' % (ans.body.get('field'), field))
        return len(self.problems) == n

    def fixtures(self, check):
        """A fresh fixture set {kind: id}, made by the create operations from their
        examples (each answer checked against the document when check). A fixture that
        cannot be made is a problem and is left out; what needs it then reports that."""
        fx = {}
        for op_id, kind in FIXTURE_OPS:
            op = self.by_id.get(op_id)
            if op is None:
                self.problems.append('the document has no %s: the fixture %s is made by its '
                                     'example' % (op_id, kind))
                continue
            if any('{%s}' % p in op.path for p in PARAM_FIXTURE) and 'source' not in fx:
                continue  # receiveInbound without a source: createSource said why
            ans = self.request(op, fx, fixture=True)
            if check:
                self.check(op, ans, op.success, 'fixture')
            if ans is None or not 200 <= ans.status < 300:
                self.fail(op, 'fixture', 'making the fixture %s from the example answered %s: %s'
                          % (kind, ans and ans.status, ans and ans.text[:300]))
                continue
            got = None
            if isinstance(ans.body, dict):
                got = ans.body.get('id', ans.body.get(kind + '_id'))
            if not got and kind == 'payload':
                got = self.payload_from_list(fx['source'])
            if not isinstance(got, str) or not got:
                self.fail(op, 'fixture', 'the answer has no "id" (or "%s_id") of the new %s: %s'
                          % (kind, kind, ans.text[:300]))
                continue
            fx[kind] = got
        return fx

    def payload_from_list(self, source_id):
        ans = send(self.api.port, 'GET', '/v1/sources/%s/payloads'
                   % urllib.parse.quote(source_id, safe=''))
        try:
            return ans.body['data'][0]['id']
        except (TypeError, KeyError, IndexError):
            return None

    def report(self):
        """The problems, each once, in the order found."""
        return list(dict.fromkeys(self.problems))

    def observed_report(self):
        """Documented statuses no check saw: not proof they are wrong, but worth a look."""
        out = []
        for op in self.ops:
            for st in sorted(op.responses()):
                if (op.id, int(st)) not in self.seen:
                    out.append('%s %s' % (op.id, st))
        return out


    # ---- the passes ----

    def sweep(self):
        """Every operation's documented success, then its documented errors, then 405s.
        Returns the shared fixture set."""
        fx = self.fixtures(check=True)
        others = [op for op in self.ops if op.id not in dict(FIXTURE_OPS)]
        # Reads first, on the shared fixtures, then the live stream; then each change (and
        # each delete, last) on a fixture set of its own, so every operation meets the
        # fresh objects x-hookq-success is defined against. The create operations that
        # made the fixtures run again there with their examples as written.
        for op in others:
            if op.method == 'GET' and not op.streams():
                self.check(op, self.request(op, fx), op.success, 'success')
        for op in others:
            if op.streams():
                self.check(op, self.request(op, fx), op.success, 'success (stream)')
        for op in sorted((op for op in self.ops if op.method != 'GET'),
                         key=lambda o: o.method == 'DELETE'):
            self.check(op, self.request(op, self.fixtures(check=False)), op.success, 'success')
        for op in self.ops:
            self.errors_of(op, fx)
        self.methods_not_allowed(fx)
        return fx

    def errors_of(self, op, fx):
        """The errors op must document because it can always produce them."""
        if op.secured:
            self.check(op, self.request(op, fx, key=None), 401, 'no key', 'unauthorized')
            self.check(op, self.request(op, fx, key=WRONG_KEY), 401, 'wrong key', 'unauthorized')
        if op.strict_body():
            ex = op.body_media()[1].get('example')
            if isinstance(ex, dict):
                bad = dict(ex)
                bad[UNKNOWN_FIELD] = 1
                self.check(op, self.request(op, fx, body=bad), 422, 'unknown field',
                           'unknown_field', UNKNOWN_FIELD)
            self.check(op, self.request(op, fx, body=b'{"url": '), 400, 'malformed JSON',
                       'invalid_json')
            self.check(op, self.request(op, fx, ctype='text/plain'), 415, 'text/plain body',
                       'unsupported_media_type')
        for name in op.path_params():
            self.check(op, self.request(op, fx, unknown=name), 404, 'unknown {%s}' % name,
                       'not_found')
        names = {(p.get('name'), p.get('in')) for p in op.params()}
        if ('limit', 'query') in names:
            self.check(op, self.request(op, fx, query={'limit': '0'}), 400, 'limit=0',
                       'invalid_parameter', 'limit')
        if ('cursor', 'query') in names:
            self.check(op, self.request(op, fx, query={'cursor': '!!!!'}), 400, 'cursor=!!!!',
                       'invalid_cursor')

    def methods_not_allowed(self, fx):
        """Each documented path answers an undocumented method with 405 and an Allow that
        names exactly the documented methods."""
        paths = {}
        for op in self.ops:
            paths.setdefault(op.path, []).append(op)
        schema = {'$ref': '#/components/responses/MethodNotAllowed/content/'
                  'application~1problem+json/schema'}
        for path, ops in paths.items():
            methods = {op.method for op in ops}
            other = next(m for m in ('PUT', 'PATCH', 'DELETE', 'POST', 'GET') if m not in methods)
            url = self.fill(ops[0], fx)
            if url is None:
                continue
            ans = send(self.api.port, other, url)
            label = '%s %s' % (other, path)
            if ans.status != 405:
                self.problems.append('%s: answered %d, not 405: %s'
                                     % (label, ans.status, ans.text[:200]))
                continue
            allow = {m.strip() for m in ans.headers.get('allow', '').split(',') if m.strip()}
            if allow != methods:
                self.problems.append('%s: Allow is %r; the document has %s for this path'
                                     % (label, ans.headers.get('allow'),
                                        ', '.join(sorted(methods))))
            for e in self.v.errors(ans.body, schema):
                self.problems.append('%s: the 405 body: %s' % (label, e))

    def outage(self, fx):
        """With Redis down: 503 as documented, or (x-hookq-no-redis) the usual success."""
        for op in self.ops:
            if op.op.get('x-hookq-no-redis'):
                self.check(op, self.request(op, fx), op.success, 'Redis down, x-hookq-no-redis')
            else:
                self.check(op, self.request(op, fx), 503, 'Redis down', 'redis_unavailable')


class ApiOpenApi(h.TestCase):
    # ---- the document ----

    def test_merged_document_is_up_to_date(self):
        spec()
        p = subprocess.run([sys.executable, MERGE, '--check'], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, 'docs/openapi.yaml is not the merge of '
                         'docs/openapi/*.yaml:\n' + p.stderr)

    def test_lint(self):
        errors = oc.lint(spec())
        if errors:
            self.fail('%d problems in docs/openapi.yaml:\n%s' % (len(errors), '\n'.join(errors)))

    def test_routes_match_the_document(self):
        proc = subprocess.Popen(h._vg_wrap([os.path.join(h.BIN, 'hookq-api'), '--routes']),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60 * h.SLOW)
        h._vg_check(proc.pid, 'hookq-api --routes')
        self.assertEqual(proc.returncode, 0, err)
        served = {}
        for line in out.splitlines():
            parts = line.split()
            self.assertEqual(len(parts), 3, 'a --routes line is not "METHOD PATH NAME": %r' % line)
            served[(parts[0], parts[1])] = parts[2]
        self.assertGreater(len(served), 1, out)
        documented = {(op.method, op.path): op.id for op in oc.operations(spec())}
        problems = ['served but not documented: %s %s (%s)' % (m, p, n)
                    for (m, p), n in sorted(served.items()) if (m, p) not in documented]
        problems += ['documented but not served: %s %s (%s)' % (m, p, n)
                     for (m, p), n in sorted(documented.items()) if (m, p) not in served]
        problems += ['%s %s: operationId %s, but the route is named %s'
                     % (m, p, documented[m, p], n)
                     for (m, p), n in sorted(served.items())
                     if (m, p) in documented and documented[m, p] != n]
        if problems:
            self.fail('%d differences between the route table and docs/openapi.yaml:\n%s'
                      % (len(problems), '\n'.join(problems)))

    # ---- the server, as documented ----

    def test_every_operation_answers_as_documented(self):
        doc = spec()
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            lv = Live(api, doc)
            fx = lv.sweep()
            rs.stop()  # last: nothing after needs Redis
            lv.outage(fx)
            never = lv.observed_report()
            if never:
                sys.stderr.write('documented statuses no check produced (%d; fine if another '
                                 'test does): %s\n' % (len(never), ', '.join(never)))
            problems = lv.report()
            if problems:
                self.fail('%d mismatches between docs/openapi.yaml and the server:\n%s'
                          % (len(problems), '\n'.join(problems)))


# ---- the tools the test trusts --------------------------------------------------------------

DOC = {'components': {'schemas': {
    'Thing': {'type': 'object', 'additionalProperties': False, 'required': ['id'],
              'properties': {'id': {'type': 'string', 'pattern': '^th_'},
                             'n': {'type': ['integer', 'null'], 'minimum': 1, 'maximum': 5},
                             'at': {'type': 'string', 'format': 'date-time'},
                             'tags': {'type': 'array', 'items': {'type': 'string',
                                                                 'minLength': 1,
                                                                 'maxLength': 3}}}},
    'Page': {'type': 'object', 'additionalProperties': False,
             'required': ['data', 'next_cursor'],
             'properties': {'data': {'type': 'array',
                                     'items': {'$ref': '#/components/schemas/Thing'}},
                            'next_cursor': {'type': ['string', 'null']}}}}}}


class Validator(h.TestCase):
    def setUp(self):
        self.v = oc.Validator(DOC)

    def ok(self, inst, schema):
        self.assertEqual(self.v.errors(inst, schema), [], inst)

    def bad(self, inst, schema, why):
        errs = self.v.errors(inst, schema)
        self.assertTrue(errs, '%r should not match %r' % (inst, schema))
        self.assertTrue(any(why in e for e in errs), errs)

    def test_types(self):
        self.ok(None, {'type': ['string', 'null']})
        self.ok('x', {'type': ['string', 'null']})
        self.bad(1, {'type': ['string', 'null']}, 'not string or null')
        self.ok(3, {'type': 'integer'})
        self.ok(3.0, {'type': 'integer'})
        self.bad(3.5, {'type': 'integer'}, 'not integer')
        self.bad(True, {'type': 'integer'}, 'not integer')  # JSON true is not a number
        self.bad(True, {'type': 'number'}, 'not number')
        self.ok(2, {'type': 'number'})
        self.bad({}, {'type': 'array'}, 'not array')
        self.bad([], {'type': 'object'}, 'not object')

    def test_objects_and_refs(self):
        ref = {'$ref': '#/components/schemas/Page'}
        self.ok({'data': [{'id': 'th_1', 'n': None, 'at': '2026-11-23T10:00:00.000Z',
                           'tags': ['a', 'abc']}], 'next_cursor': None}, ref)
        self.bad({'data': []}, ref, "required property 'next_cursor'")
        self.bad({'data': [{'id': 'th_1', 'colour': 'red'}], 'next_cursor': None}, ref,
                 "property 'colour' is not in the schema")
        self.bad({'data': [{'id': 'x_1'}], 'next_cursor': 'c'}, ref, 'does not match ^th_')
        self.bad({'data': [{'id': 'th_1', 'n': 9}], 'next_cursor': 'c'}, ref, 'above maximum')
        self.bad({'data': [{'id': 'th_1', 'n': 0}], 'next_cursor': 'c'}, ref, 'below minimum')
        self.bad({'data': [{'id': 'th_1', 'tags': ['']}], 'next_cursor': 'c'}, ref, 'shorter')
        self.bad({'data': [{'id': 'th_1', 'tags': ['abcd']}], 'next_cursor': 'c'}, ref, 'longer')
        self.bad({'data': [{'id': 'th_1', 'at': '2026-11-23 10:00'}], 'next_cursor': 'c'}, ref,
                 'not a date-time')
        self.bad({'data': [{'id': 'th_1', 'at': '2026-11-23T10:00:00'}], 'next_cursor': 'c'},
                 ref, 'not a date-time')
        self.bad({'id': 'th_1'}, {'$ref': '#/components/schemas/Nope'}, 'resolves to nothing')
        self.ok({'a': 1, 'b': 2}, {'type': 'object', 'additionalProperties': {'type': 'integer'}})
        amap = {'type': 'object', 'additionalProperties': {'type': 'integer'}}
        self.bad({'a': 1, 'b': 'x'}, amap, 'at $.b')

    def test_enum_const_and_combinators(self):
        self.ok('a', {'enum': ['a', 'b']})
        self.bad('c', {'enum': ['a', 'b']}, 'not one of')
        self.bad(True, {'const': 1}, 'is not 1')  # JSON equality, not Python's
        self.ok(1.0, {'const': 1})
        self.ok(1.5, {'oneOf': [{'type': 'integer'}, {'type': 'number'}]})
        self.bad(1, {'oneOf': [{'type': 'integer'}, {'type': 'number'}]}, 'matches 2 branches')
        self.bad('x', {'oneOf': [{'type': 'integer'}, {'type': 'null'}]}, 'none of oneOf')
        self.ok('x', {'anyOf': [{'type': 'integer'}, {'type': 'string'}]})
        self.bad([], {'anyOf': [{'type': 'integer'}, {'type': 'string'}]}, 'none of anyOf')
        both = {'allOf': [{'type': 'string'}, {'maxLength': 2}]}
        self.ok('ab', both)
        self.bad('abc', both, 'longer')
        self.bad('x', {'not': {'type': 'string'}}, 'under not')
        self.bad([1, 1], {'type': 'array', 'uniqueItems': True}, 'repeated')
        self.bad([], {'type': 'array', 'minItems': 1}, 'fewer than 1')
        self.bad(1, False, 'no value')
        self.ok(1, True)

    def test_problem_schema_is_the_server_shape(self):
        # What api_problem writes, and what it never writes.
        p = {'$ref': '#/components/schemas/Problem'}
        v = oc.Validator(spec())
        good = {'type': 'urn:hookq:problem:not_found', 'title': 'Not Found', 'status': 404,
                'code': 'not_found', 'detail': 'no such thing'}
        self.assertEqual(v.errors(good, p), [])
        self.assertEqual(v.errors(dict(good, field='url'), p), [])
        self.assertTrue(v.errors(dict(good, extra=1), p))
        self.assertTrue(v.errors({k: good[k] for k in good if k != 'code'}, p))
        self.assertTrue(v.errors(dict(good, type='about:blank'), p))
        nf = {'$ref': '#/components/responses/NotFound/content/application~1problem+json/schema'}
        self.assertEqual(v.errors(good, nf), [])
        self.assertTrue(v.errors(dict(good, code='gone', type='urn:hookq:problem:gone'), nf))

    def test_lint_catches_what_the_test_cannot_check(self):
        doc = {'openapi': '3.1.0', 'security': [{'bearer': []}], 'components': {
            'securitySchemes': {'bearer': {'type': 'http', 'scheme': 'bearer'}}, 'schemas': {
            'A': {'type': 'object', 'nullable': True, 'additionalProperties': False,
                  'properties': {'x': {'type': [None, 'string']},
                                 'y': {'patternProperties': {}}}}}},
            'paths': {'/v1/things/{id}': {'post': {
                'operationId': 'makeThing', 'x-hookq-success': 201,
                'requestBody': {'content': {'application/json': {
                    'schema': {'type': 'object', 'properties': {'a': {'type': 'string'}}},
                    'example': {'a': 1}}}},
                'responses': {'201': {'description': 'made', 'content': {'application/json': {
                    'schema': {'$ref': '#/components/schemas/Missing'}}}},
                    '4XX': {'description': 'any'}}}}}}
        errs = '\n'.join(oc.lint(doc))
        for want in ('nullable is OpenAPI 3.0', "type None", "'patternProperties' is not one",
                     'no summary', '{id} is not declared', 'must state additionalProperties',
                     'example does not match', 'Missing resolves to nothing', 'exact statuses',
                     'must document 401', 'must document 404', 'must document 503'):
            self.assertIn(want, errs)


class Merge(h.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='hookq-openapi-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        shutil.copy(os.path.join(h.SRC, 'docs', 'openapi', 'base.yaml'), self.dir)

    def frag(self, name, text):
        with open(os.path.join(self.dir, name), 'w') as f:
            f.write(text)

    def test_joins_and_refuses_clashes(self):
        self.frag('a.yaml', 'paths:\n  /v1/a:\n    get:\n      operationId: getA\n'
                  '      responses:\n        200: {description: ok}\n'
                  'components:\n  schemas:\n    A: {type: string}\n')
        self.frag('b.yaml', 'paths:\n  /v1/a:\n    post:\n      operationId: postA\n'
                  '      responses:\n        "201": {description: ok, content: {application/json:'
                  ' {schema: {$ref: "#/components/schemas/A"}}}}\n')
        doc = openapi_merge.merge(self.dir)
        self.assertEqual(list(doc['paths']['/v1/a']), ['get', 'post'])
        self.assertEqual(list(doc['paths']['/v1/a']['get']['responses']), ['200'])  # a string
        self.assertIn('Problem', doc['components']['schemas'])
        out = os.path.join(self.dir + '-out.yaml')
        self.addCleanup(lambda: os.path.exists(out) and os.unlink(out))
        self.assertEqual(openapi_merge.main(['--dir', self.dir, '--out', out]), 0)
        self.assertEqual(openapi_merge.main(['--dir', self.dir, '--out', out, '--check']), 0)
        self.assertEqual(oc.load_spec(out), doc)
        with open(out, 'a') as f:
            f.write('# edited by hand\n')
        with contextlib.redirect_stderr(io.StringIO()) as err:
            self.assertEqual(openapi_merge.main(['--dir', self.dir, '--out', out, '--check']), 1)
        self.assertIn('+# edited by hand', err.getvalue().replace('-# edited', '+# edited'))

        self.frag('c.yaml', 'paths:\n  /v1/a:\n    get: {operationId: again, responses: {}}\n'
                  'components:\n  schemas:\n    A: {type: integer}\n    Problem: {}\n'
                  'info: {title: mine}\n')
        with self.assertRaises(openapi_merge.MergeError) as cm:
            openapi_merge.merge(self.dir)
        msg = str(cm.exception)
        for want in ('GET /v1/a is also defined in a.yaml', 'components/schemas/A is also '
                     'defined in a.yaml', 'components/schemas/Problem is also defined in '
                     'base.yaml', "top-level key 'info' belongs in base.yaml"):
            self.assertIn(want, msg)

    def test_refuses_yaml_that_is_not_json(self):
        self.frag('a.yaml', 'components:\n  schemas:\n    T:\n      type: [string, null]\n'
                  '      example: 2026-11-23T10:00:00Z\n    U: {$ref: "#/components/schemas/V"}\n')
        with self.assertRaises(openapi_merge.MergeError) as cm:
            openapi_merge.merge(self.dir)
        msg = str(cm.exception)
        self.assertIn('null in a type list must be quoted', msg)
        self.assertIn('read as a YAML timestamp', msg)
        self.assertIn('#/components/schemas/V resolves to nothing', msg)


# ---- the live checks themselves, against a fake server that is honest or lies ------------

def _fake_spec():
    """A small document in the fragments' style, on base.yaml's components."""
    doc = oc.load_spec(os.path.join(h.SRC, 'docs', 'openapi', 'base.yaml'))
    R = {'401': {'$ref': '#/components/responses/Unauthorized'},
         '503': {'$ref': '#/components/responses/Unavailable'}}
    body_errors = {'400': {'$ref': '#/components/responses/BadRequest'},
                   '415': {'$ref': '#/components/responses/UnsupportedMediaType'},
                   '422': {'$ref': '#/components/responses/Invalid'}}
    nf = {'404': {'$ref': '#/components/responses/NotFound'}}

    def made(schema, status='201'):
        return {status: {'description': 'made', 'content': {'application/json': {
            'schema': {'$ref': '#/components/schemas/' + schema}}}}}

    def body(props, example, closed=True):
        return {'required': True, 'content': {'application/json': {'example': example, 'schema': {
            'type': 'object', 'additionalProperties': not closed,
            'properties': {k: {'type': 'string'} for k in props}}}}}
    idp = [{'name': 'id', 'in': 'path', 'required': True, 'schema': {'type': 'string'}}]
    doc['paths'] = {
        '/v1/endpoints': {
            'get': {'operationId': 'listEndpoints', 'summary': 's', 'x-hookq-success': 200,
                    'parameters': [{'$ref': '#/components/parameters/Limit'},
                                   {'$ref': '#/components/parameters/Cursor'}],
                    'responses': dict(made('Page', '200'), **{'400': body_errors['400']}, **R)},
            'post': {'operationId': 'createEndpoint', 'summary': 's', 'x-hookq-success': 201,
                     'requestBody': body(['url'], {'url': 'https://example.com/hook'}),
                     'responses': dict(made('Thing'), **body_errors, **R)}},
        '/v1/endpoints/{id}': {
            'parameters': idp,
            'get': {'operationId': 'getEndpoint', 'summary': 's', 'x-hookq-success': 200,
                    'responses': dict(made('Thing', '200'), **nf, **R)},
            'delete': {'operationId': 'deleteEndpoint', 'summary': 's', 'x-hookq-success': 204,
                       'responses': dict({'204': {'description': 'gone'}}, **nf, **R)}},
        '/v1/sources': {
            'post': {'operationId': 'createSource', 'summary': 's', 'x-hookq-success': 201,
                     'requestBody': body(['name'], {'name': 'shop'}),
                     'responses': dict(made('Thing'), **body_errors, **R)}},
        '/v1/events': {
            'post': {'operationId': 'publishEvent', 'summary': 's', 'x-hookq-success': 202,
                     'requestBody': body(['type'], {'type': 'a.b'}),
                     'responses': dict(made('Thing', '202'), **body_errors, **R)}},
        '/v1/in/{source_id}': {
            'post': {'operationId': 'receiveInbound', 'summary': 's', 'x-hookq-success': 202,
                     'security': [],
                     'parameters': [dict(idp[0], name='source_id')],
                     'requestBody': body([], {'any': 'thing'}, closed=False),
                     'responses': dict(made('Thing', '202'), **nf, **{'503': R['503']})}},
        '/v1/stream': {
            'get': {'operationId': 'streamEvents', 'summary': 's', 'x-hookq-success': 200,
                    'responses': dict({'200': {'description': 'events', 'content': {
                        'text/event-stream': {}}}}, **R)}}}
    doc['components']['schemas'].update({
        'Thing': {'type': 'object', 'additionalProperties': False, 'required': ['id'],
                  'properties': {'id': {'type': 'string', 'pattern': '^[a-z]+_[0-9A-Z]{26}$'}}},
        'Page': {'type': 'object', 'additionalProperties': False,
                 'required': ['data', 'next_cursor'],
                 'properties': {'data': {'type': 'array',
                                         'items': {'$ref': '#/components/schemas/Thing'}},
                                'next_cursor': {'type': ['string', 'null']}}}})
    return doc


class _Fake(http.server.BaseHTTPRequestHandler):
    """The fake's routes, answering as _fake_spec says, except for what server.lies
    names; server.down answers 503 to everything."""

    def log_message(self, *a):
        pass

    def answer(self, status, body=None, ctype='application/json', headers=()):
        data = b'' if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def problem(self, status, code, field=None, headers=()):
        p = {'type': 'urn:hookq:problem:' + code, 'title': 'T', 'status': status, 'code': code,
             'detail': 'd'}
        if field:
            p['field'] = field
        self.answer(status, p, 'application/problem+json', headers)

    def handle_any(self):
        srv, lies = self.server, self.server.lies
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        segs = url.path.split('/')[1:]
        n = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(n) if n else b''
        routes = {('v1', 'endpoints'): ('GET', 'POST'), ('v1', 'endpoints', '*'): ('GET', 'DELETE'),
                  ('v1', 'sources'): ('POST',), ('v1', 'events'): ('POST',),
                  ('v1', 'in', '*'): ('POST',), ('v1', 'stream'): ('GET',)}
        shape = tuple(segs[:2]) + (('*',) if len(segs) == 3 else ())
        if shape not in routes:
            return self.problem(404, 'not_found')
        if self.command not in routes[shape]:
            allow = 'GET' if 'allow' in lies else ', '.join(routes[shape])
            return self.problem(405, 'method_not_allowed', headers=[('Allow', allow)])
        if segs[1] != 'in' and self.headers.get('Authorization') != 'Bearer ' + au.ADMIN:
            hdrs = [] if 'www-authenticate' in lies else [('WWW-Authenticate', 'Bearer x')]
            return self.problem(401, 'unauthorized', headers=hdrs)
        if srv.down:
            return self.problem(503, 'redis_unavailable', headers=[('Retry-After', '1')])
        if self.command == 'POST':
            if not (self.headers.get('Content-Type') or '').startswith('application/json'):
                return self.problem(415, 'unsupported_media_type')
            try:
                obj = json.loads(raw)
            except ValueError:
                return self.problem(400, 'invalid_json')
            known = {'endpoints': {'url'}, 'events': {'type'},
                     'sources': {'name'} | ({UNKNOWN_FIELD} if 'unknown' in lies else set())}
            extra = set(obj) - known.get(segs[1], set(obj))
            if extra:
                return self.problem(422, 'unknown_field', sorted(extra)[0])
            if segs[1] == 'in' and segs[2] not in srv.objects:
                return self.problem(404, 'not_found')
            prefix = {'endpoints': 'ep_', 'sources': 'src_', 'events': 'evt_', 'in': 'pl_'}
            srv.count += 1
            oid = '%s%026d' % (prefix[segs[1]], srv.count)
            srv.objects.add(oid)
            return self.answer(201 if segs[1] in ('endpoints', 'sources') else 202, {'id': oid})
        if segs[1] == 'stream':
            self.send_response(200)
            self.send_header('Content-Type', 'application/json' if 'stream' in lies
                             else 'text/event-stream')
            self.end_headers()
            self.wfile.write(b': hello\n\n')
            return
        if len(segs) == 2:
            if 'limit' in q and q['limit'] == '0' and 'limit' not in lies:
                return self.problem(400, 'invalid_parameter', 'limit')
            if 'cursor' in q:
                return self.problem(400, 'invalid_cursor', 'cursor')
            return self.answer(200, {'data': [{'id': i} for i in sorted(srv.objects)
                                              if i.startswith('ep_')], 'next_cursor': None})
        if segs[2] not in srv.objects:
            return self.problem(404, 'missing' if 'code' in lies else 'not_found')
        if self.command == 'DELETE':
            srv.objects.discard(segs[2])
            return self.answer(204)
        return self.answer(200, dict({'id': segs[2]}, **({'colour': 'red'} if 'extra' in lies
                                                          else {})))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class FakeServer:
    def __init__(self, lies=()):
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Fake)
        self.httpd.lies, self.httpd.down = set(lies), False
        self.httpd.objects, self.httpd.count = set(), 0
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class LiveChecks(h.TestCase):
    """The checks can pass, and each one can fail: an honest fake passes them all; a fake
    with one lie of each kind is caught on exactly that lie."""

    def test_fake_document_is_clean(self):
        self.assertEqual(oc.lint(_fake_spec()), [])

    def test_an_honest_server_passes(self):
        with FakeServer() as fake:
            lv = Live(fake, _fake_spec())
            fx = lv.sweep()
            self.assertEqual(sorted(fx), ['endpoint', 'event', 'payload', 'source'])
            self.assertEqual(lv.report(), [])
            fake.httpd.down = True
            lv.outage(fx)
            self.assertEqual(lv.report(), [])
            self.assertIn(('getEndpoint', 404), lv.seen)
            self.assertIn(('createSource', 422), lv.seen)

    def test_each_lie_is_caught(self):
        # lie -> (a problem that must be reported, what every reported problem mentions)
        cases = {
            'extra': ("getEndpoint) [success]: the 200 body does not match its schema: at $: "
                      "property 'colour' is not in the schema", 'colour'),
            'www-authenticate': ('header WWW-Authenticate is documented as required for 401',
                                 'WWW-Authenticate'),
            'unknown': ('createSource) [unknown field]: answered 201, not 422', 'unknown field'),
            'code': ("getEndpoint) [unknown {id}]: code 'missing', not 'not_found'", 'missing'),
            'allow': ("PUT /v1/endpoints: Allow is 'GET'; the document has GET, POST for this "
                      "path", 'Allow is'),
            'stream': ("streamEvents) [success (stream)]: Content-Type 'application/json' is not "
                       "documented for 200", 'text/event-stream'),
            'limit': ('listEndpoints) [limit=0]: answered 200, not 400', 'limit=0'),
        }
        for lie, (want, mark) in cases.items():
            with self.subTest(lie=lie), FakeServer([lie]) as fake:
                lv = Live(fake, _fake_spec())
                lv.sweep()
                got = lv.report()
                self.assertIn(want, '\n'.join(got))
                self.assertEqual([p for p in got if mark not in p], [])


if __name__ == '__main__':
    h.main()
