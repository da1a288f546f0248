"""hookq-api events group: POST /v1/events, GET /v1/events/{id}, POST
/v1/events/{id}/retry, GET /v1/dead, POST /v1/dead/replay.

Against the real hookq-api, redis-server, hookq-worker and HTTP receivers. Endpoints are
made with the CLI (the endpoints routes are another group's); delivery logs and dead
letters are also written straight into Redis where the contract (docs/keys.md) is the
point, so every status and field can be produced on demand. Answers are checked against
the schemas of docs/openapi/events.yaml."""
import hashlib
import http.client
import json
import os
import sys
import threading
import time

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apiutil as au  # noqa: E402
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402

EVENTS, JOBS, DEAD = u.EVENTS, u.JOBS, u.DEAD
JSON = {'Content-Type': 'application/json'}

with open(os.path.join(h.SRC, 'docs', 'openapi', 'events.yaml')) as _f:
    SPEC = yaml.safe_load(_f)


def check_schema(tc, name, obj):
    """obj fits components.schemas[name] of events.yaml (exact: additionalProperties)."""
    schema = {'$ref': '#/components/schemas/' + name, 'components': SPEC['components']}
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError as e:
        tc.fail('%s does not fit %s: %s' % (json.dumps(obj)[:400], name, e.message))


def raw(api, method, path, body=b'', key=au.ADMIN, headers=None):
    """One request; the body comes back as bytes, untouched."""
    hd = dict(headers or {})
    if key:
        hd['Authorization'] = 'Bearer ' + key
    conn = http.client.HTTPConnection('127.0.0.1', api.port, timeout=20 * h.SLOW)
    try:
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body,
                     headers=hd)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def publish(api, body, key=au.ADMIN, headers=None):
    """POST /v1/events with body (a dict, or raw text sent as it is)."""
    text = body if isinstance(body, (str, bytes)) else json.dumps(body)
    st, hd, out = raw(api, 'POST', '/v1/events', text, key, dict(JSON, **(headers or {})))
    return st, hd, json.loads(out) if out else None


def cli(rs, *args):
    r = h.hookq(rs, '--json', *args)
    if r.returncode != 0:
        raise AssertionError('hookq %s: %s %s' % (' '.join(args), r.stdout, r.stderr))
    return json.loads(r.stdout) if r.stdout.strip() else None


def add_ep(rs, url='http://127.0.0.1:9/hook', *args):
    return u.add_endpoint(rs, url, *args)[0]


def problem(tc, answer, status, code, field=None):
    st, hd, body = answer
    tc.assertEqual(st, status, body)
    tc.assertTrue(hd.get('content-type', '').startswith('application/problem+json'), hd)
    tc.assertEqual(body['code'], code, body)
    tc.assertEqual(body['status'], status)
    if field is not None:
        tc.assertEqual(body.get('field'), field, body)
    return body


def log_key(ep):
    return 'hookq:{%s}:log' % ep


def write_log(rs, ep, sid, event_id, attempt, outcome, status, error='', next_try=''):
    return rs.call('XADD', log_key(ep), '*', 'event_id', event_id, 'event', sid, 'type', 'x',
                   'attempt', str(attempt), 'outcome', outcome, 'status', str(status),
                   'latency_ms', '12', 'error', error, 'response', '', 'delivery',
                   'dlv_%d' % attempt, 'worker', 'w1', 'next_try', next_try)


def dead_job(rs, event, endpoint, event_id='evt_x', error='HTTP 500'):
    """A job dead letter whose event is in the events stream (as test_cli_dead.py)."""
    if not rs.call('XRANGE', EVENTS, event, event):
        rs.call('XADD', EVENTS, event, 'id', event_id, 'type', 'order.paid', 'data', '{}')
    return rs.call('XADD', DEAD, '*', 'kind', 'job', 'event', event, 'event_id', event_id,
                   'type', 'order.paid', 'endpoint', endpoint, 'attempt', '6', 'error', error,
                   'status', '500', 'failed_at', '2026-01-01T00:00:00.000Z')


def dead_event(rs):
    return rs.call('XADD', DEAD, '*', 'kind', 'event', 'source', '1-1', 'reason',
                   'data: not JSON', 'f.type', 'x', 'f.data', '{')


class Shared(h.TestCase):
    """One Redis and one hookq-api for the class, Redis emptied before each test."""
    API_ENV = {}

    @classmethod
    def setUpClass(cls):
        cls.rs = h.RedisServer().start()
        cls.api = au.ApiServer(cls.rs, env=cls.API_ENV).start()

    @classmethod
    def tearDownClass(cls):
        cls.api.__exit__(None, None, None)
        cls.rs.__exit__(None, None, None)

    def setUp(self):
        self.rs.call('FLUSHALL')

    def entries(self, key=EVENTS):
        return h.xrange_dicts(self.rs, key)


# ------------------------------------------------------------------------------ publish

class Publish(Shared):
    API_ENV = {'HOOKQ_EVENTS_MAX_PAYLOAD': '8KiB', 'HOOKQ_API_MAX_BODY': '16KiB'}

    def test_accepted_and_written_as_the_library_writes(self):
        data = '{"order": 7,  "amount":1.50e+2}'
        t0 = int(time.time() * 1000)
        st, hd, out = publish(self.api, '{"type":"order.paid","data":%s}' % data)
        self.assertEqual(st, 202, out)
        check_schema(self, 'EventAccepted', out)
        self.assertTrue(out['id'].startswith('evt_') and len(out['id']) == 30, out)
        self.assertEqual(out['type'], 'order.paid')
        self.assertIsNone(out['tenant'])
        self.assertIsNone(out['endpoint'])
        self.assertFalse(out['duplicate'])
        (sid, f), = self.entries()
        self.assertEqual(sid, out['stream_id'])
        self.assertEqual(set(f), {'id', 'type', 'ts', 'data'})
        self.assertEqual(f['id'], out['id'])
        self.assertEqual(f['data'], data)
        self.assertLessEqual(t0, int(f['ts']))
        # every option, as the stream fields of docs/keys.md
        st, _, out = publish(self.api, {'type': 'a:b', 'data': None, 'id': 'ord-1',
                                        'tenant': 'acme', 'endpoint': 'ep_1'})
        self.assertEqual(st, 202, out)
        self.assertEqual((out['id'], out['tenant'], out['endpoint']), ('ord-1', 'acme', 'ep_1'))
        f = self.entries()[1][1]
        self.assertEqual((f['id'], f['data'], f['tenant'], f['endpoint']),
                         ('ord-1', 'null', 'acme', 'ep_1'))
        # null for an optional field is "not given"
        st, _, out = publish(self.api, {'type': 'a', 'data': 1, 'tenant': None, 'id': None,
                                        'endpoint': None})
        self.assertEqual(st, 202, out)
        self.assertEqual(set(self.entries()[2][1]), {'id', 'type', 'ts', 'data'})

    def test_every_refusal_names_its_field(self):
        deep = '[' * 33 + ']' * 33
        cases = [
            ('{"data":1}', 422, 'invalid_field', 'type'),
            ('{"type":"a b","data":1}', 422, 'invalid_field', 'type'),
            ('{"type":"","data":1}', 422, 'invalid_field', 'type'),
            ('{"type":"%s","data":1}' % ('x' * 129), 422, 'invalid_field', 'type'),
            ('{"type":7,"data":1}', 422, 'invalid_field', 'type'),
            ('{"type":null,"data":1}', 422, 'invalid_field', 'type'),
            ('{"type":"a"}', 422, 'invalid_field', 'data'),
            ('{"type":"a","data":%s}' % deep, 422, 'invalid_field', 'data'),
            ('{"type":"a","data":%s}' % ('[' * 2000 + ']' * 2000), 422, 'invalid_field', 'data'),
            ('{"type":"a","data":1,"id":"a.b"}', 422, 'invalid_field', 'id'),
            ('{"type":"a","data":1,"id":""}', 422, 'invalid_field', 'id'),
            ('{"type":"a","data":1,"id":5}', 422, 'invalid_field', 'id'),
            ('{"type":"a","data":1,"tenant":"a b"}', 422, 'invalid_field', 'tenant'),
            ('{"type":"a","data":1,"tenant":"\\u0000"}', 422, 'invalid_field', 'tenant'),
            ('{"type":"a","data":1,"endpoint":"e/1"}', 422, 'invalid_field', 'endpoint'),
            ('{"type":"a","data":1,"endpoint":[]}', 422, 'invalid_field', 'endpoint'),
            ('{"type":"a","data":1,"colour":"red"}', 422, 'unknown_field', 'colour'),
            ('{"type":"a","d\\u0061ta":1,"extra":2}', 422, 'unknown_field', 'extra'),
            ('{"type":"a","data":"%s"}' % ('x' * 8200), 413, 'payload_too_large', 'data'),
            ('{"type":"a","data":"\\ud800"}', 422, 'invalid_field', 'data'),
            ('{"type":"a","data":[1,]}', 422, 'invalid_field', 'data'),
            (b'{"type":"a","data":"\xff"}', 422, 'invalid_field', 'data'),
            (b'{"type":"a\xff","data":1}', 422, 'invalid_field', 'type'),
            (b'{"type":"a","data":1,"x\xff":1}', 400, 'invalid_json', None),
            ('{"type":"a","data":1,"data":2}', 400, 'invalid_json', None),
            ('{"type":"a","data":{"x":}', 422, 'invalid_field', 'data'),  # the first problem
            ('{"type":"a","data":1} trailing', 400, 'invalid_json', None),
            ('{"type":"a","data":1', 400, 'invalid_json', None),
            ('{"type":"a","data":[1]', 400, 'invalid_json', None),
            ('{"type":"a","data":1 x}', 400, 'invalid_json', None),
            ('[1]', 400, 'invalid_json', None),
            ('"text"', 400, 'invalid_json', None),
            ('', 400, 'invalid_json', None),
        ]
        for body, status, code, field in cases:
            with self.subTest(body=str(body)[:60]):
                b = problem(self, publish(self.api, body), status, code, field)
                if field in ('type', 'data', 'id', 'tenant', 'endpoint') and status == 422:
                    self.assertTrue(b['detail'].startswith(field + ':'), b)
        # an escaped member name is the member it spells
        self.assertEqual(publish(self.api, '{"typ\\u0065":"a","d\\u0061ta":[1]}')[0], 202)
        self.assertEqual(self.rs.call('XLEN', EVENTS), 1)
        # not JSON at all: 415; over api.max_body: 413 body_too_large (the server's)
        problem(self, self.api.call('POST', '/v1/events', raw='{"type":"a","data":1}',
                                    headers={'Content-Type': 'text/plain'}),
                415, 'unsupported_media_type')
        st, _, b = raw(self.api, 'POST', '/v1/events', '{"type":"a","data":"%s"}' % ('y' * 17000),
                       headers=JSON)
        self.assertEqual((st, json.loads(b)['code']), (413, 'body_too_large'))
        self.assertEqual(self.rs.call('XLEN', EVENTS), 1)

    def test_refuses_exactly_what_the_library_refuses(self):
        """For each input, the API accepts it iff `hookq send` (libhookq) does."""
        env = {'HOOKQ_EVENTS_MAX_PAYLOAD': '8KiB'}
        cases = [
            ('order.paid', '{"n":1}', {}),
            ('order.paid', '123456789012345678901234567890', {}),
            ('order.paid', '1e400', {}),
            ('order.paid', '"\\u0000"', {}),
            ('order.paid', '"\\ud800"', {}),
            ('order paid', '1', {}),
            ('order..paid', '1', {}),
            ('o' * 128, '1', {}),
            ('o' * 129, '1', {}),
            ('x', '[' * 32 + ']' * 32, {}),
            ('x', '[' * 33 + ']' * 33, {}),
            ('x', '"%s"' % ('z' * 8190), {}),
            ('x', '"%s"' % ('z' * 8191), {}),
            ('x', '[1,]', {}),
            ('x', '"\\ud800\\u0041"', {}),
            ('x', '1', {'id': 'a' * 128}),
            ('x', '1', {'id': 'a' * 129}),
            ('x', '1', {'id': 'a:b'}),
            ('x', '1', {'tenant': 't.1:x-y_z'}),
            ('x', '1', {'tenant': 't/1'}),
            ('x', '1', {'tenant': 't' * 129}),
            ('x', '1', {'endpoint': 'ep_x'}),
            ('x', '1', {'endpoint': 'ep.x'}),
        ]
        for typ, data, opts in cases:
            with self.subTest(type=typ[:20], data=data[:20], opts=opts):
                self.rs.call('FLUSHALL')
                body = '{"type":%s,"data":%s%s}' % (
                    json.dumps(typ), data,
                    ''.join(',%s:%s' % (json.dumps(k), json.dumps(v)) for k, v in opts.items()))
                st = publish(self.api, body)[0]
                args = ['send', typ, data] + sum([['--' + k, v] for k, v in opts.items()], [])
                r = h.hookq(self.rs, *args, env=env)
                self.assertIn(st, (202, 422, 413))
                self.assertEqual(st == 202, r.returncode == 0, (st, r.stdout, r.stderr))
                if st == 202 and 'id' not in opts:  # both wrote the same data bytes
                    a, b = [f['data'] for _, f in self.entries()]
                    self.assertEqual(a, data)
                    self.assertEqual(b, data)

    def test_tenant_key_publishes_as_its_tenant(self):
        st, _, out = publish(self.api, {'type': 'a', 'data': 1}, key=au.ACME)
        self.assertEqual((st, out['tenant']), (202, 'acme'))
        self.assertEqual(publish(self.api, {'type': 'a', 'data': 1, 'tenant': 'acme'},
                                 key=au.ACME)[0], 202)
        problem(self, publish(self.api, {'type': 'a', 'data': 1, 'tenant': 'globex'},
                              key=au.ACME), 403, 'forbidden')
        self.assertEqual([f['tenant'] for _, f in self.entries()], ['acme', 'acme'])
        # an admin key publishes for any tenant, or none
        st, _, out = publish(self.api, {'type': 'a', 'data': 1, 'tenant': 'globex'})
        self.assertEqual((st, out['tenant']), (202, 'globex'))

    def test_idempotency_key(self):
        body = {'type': 'order.paid', 'data': {'n': 1}}
        k = {'Idempotency-Key': 'order-7 attempt/1'}
        st, hd, first = publish(self.api, body, headers=k)
        self.assertEqual(st, 202, first)
        self.assertNotIn('idempotent-replayed', hd)
        st, hd, again = publish(self.api, body, headers=k)
        self.assertEqual(st, 202)
        self.assertEqual(hd.get('idempotent-replayed'), 'true')
        self.assertEqual(again, first)
        self.assertEqual(self.rs.call('XLEN', EVENTS), 1)
        # the same key with another body: refused, nothing published
        problem(self, publish(self.api, {'type': 'order.paid', 'data': {'n': 2}}, headers=k),
                422, 'idempotency_key_reused')
        # keys are per caller: the same key from a tenant key is a new request
        st, hd, t1 = publish(self.api, body, key=au.ACME, headers=k)
        self.assertEqual((st, t1['tenant']), (202, 'acme'))
        self.assertNotIn('idempotent-replayed', hd)
        self.assertNotEqual(t1['id'], first['id'])
        st, hd, t2 = publish(self.api, body, key=au.ACME, headers=k)
        self.assertEqual((t2, hd.get('idempotent-replayed')), (t1, 'true'))
        st, hd, g = publish(self.api, body, key=au.GLOBEX, headers=k)
        self.assertNotIn('idempotent-replayed', hd)
        self.assertEqual(self.rs.call('XLEN', EVENTS), 3)
        # the marks: one per caller, {q}-tagged, kept events.idempotency_ttl (24 h)
        hk = hashlib.sha256(k['Idempotency-Key'].encode()).hexdigest()
        marks = sorted(self.rs.call('KEYS', 'hookq:{q}:apiidem:*'))
        self.assertEqual(marks, sorted(['hookq:{q}:apiidem:admin:' + hk,
                                        'hookq:{q}:apiidem:t:acme:' + hk,
                                        'hookq:{q}:apiidem:t:globex:' + hk]))
        pttl = self.rs.call('PTTL', 'hookq:{q}:apiidem:admin:' + hk)
        self.assertTrue(23 * 3600 * 1000 < pttl <= 24 * 3600 * 1000, pttl)
        mark = dict(zip(*[iter(self.rs.call('HGETALL', 'hookq:{q}:apiidem:admin:' + hk))] * 2))
        self.assertEqual(mark['stream_id'], first['stream_id'])
        self.assertEqual(mark['event_id'], first['id'])
        # bad keys
        for bad in ('', 'k' * 256, 'caf\u00e9'.encode('utf-8').decode('latin-1')):
            with self.subTest(key=bad[:10]):
                problem(self, publish(self.api, body, headers={'Idempotency-Key': bad}), 400,
                        'invalid_parameter', 'Idempotency-Key')
        self.assertEqual(publish(self.api, body, headers={'Idempotency-Key': 'k' * 255})[0], 202)
        # validation comes first: an invalid body is refused, and not remembered
        problem(self, publish(self.api, {'type': 'a b', 'data': 1},
                              headers={'Idempotency-Key': 'v'}), 422, 'invalid_field', 'type')
        self.assertEqual(publish(self.api, body, headers={'Idempotency-Key': 'v'})[0], 202)

    def test_idempotency_key_concurrent_requests_publish_once(self):
        body = json.dumps({'type': 'order.paid', 'data': {'n': 42}})
        n = 20
        barrier = threading.Barrier(n)
        results = [None] * n

        def one(i):
            barrier.wait()
            results[i] = publish(self.api, body, headers={'Idempotency-Key': 'race-1'})
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30 * h.SLOW)
        self.assertEqual(self.rs.call('XLEN', EVENTS), 1)
        self.assertEqual({r[0] for r in results}, {202})
        self.assertEqual(len({r[2]['id'] for r in results}), 1)
        self.assertEqual(len({r[2]['stream_id'] for r in results}), 1)
        fresh = [r for r in results if r[1].get('idempotent-replayed') != 'true']
        self.assertEqual(len(fresh), 1)

    def test_producer_id_dedupe(self):
        st, _, a = publish(self.api, {'type': 'a', 'data': 1, 'id': 'ord-9'})
        self.assertEqual((st, a['duplicate']), (202, False))
        st, _, b = publish(self.api, {'type': 'a', 'data': 2, 'id': 'ord-9'})
        self.assertEqual((st, b['id'], b['stream_id'], b['duplicate']),
                         (202, 'ord-9', a['stream_id'], True))
        self.assertEqual(self.rs.call('XLEN', EVENTS), 1)
        self.assertEqual(self.rs.call('GET', 'hookq:{q}:idem:ord-9'), a['stream_id'])
        # with an Idempotency-Key too: the id still dedupes (one script does both)
        st, hd, c = publish(self.api, {'type': 'a', 'data': 3, 'id': 'ord-9'},
                            headers={'Idempotency-Key': 'x1'})
        self.assertEqual((st, c['stream_id'], c['duplicate']), (202, a['stream_id'], True))
        st, hd, d = publish(self.api, {'type': 'a', 'data': 3, 'id': 'ord-9'},
                            headers={'Idempotency-Key': 'x1'})
        self.assertEqual((d, hd.get('idempotent-replayed')), (c, 'true'))
        st, _, e = publish(self.api, {'type': 'a', 'data': 1, 'id': 'ord-10'},
                           headers={'Idempotency-Key': 'x2'})
        self.assertEqual((st, e['duplicate']), (202, False))
        self.assertEqual(self.rs.call('GET', 'hookq:{q}:idem:ord-10'), e['stream_id'])
        # the CLI sees the API's id mark and the other way round
        self.assertEqual(u.send(self.rs, 'a', '1', '--id', 'ord-10'), 'ord-10')
        u.send(self.rs, 'a', '1', '--id', 'ord-11')
        st, _, f = publish(self.api, {'type': 'a', 'data': 1, 'id': 'ord-11'})
        self.assertTrue(f['duplicate'])
        self.assertEqual(self.rs.call('XLEN', EVENTS), 3)


class RedisTrouble(h.TestCase):
    def test_maxmemory_507_outage_503_and_errors_500(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            ep = add_ep(rs)
            ev = publish(api, {'type': 'a', 'data': 1})[2]
            letter = dead_job(rs, ev['stream_id'], ep)
            rs.call('CONFIG', 'SET', 'maxmemory', '1')
            for body, hd in (({'type': 'a', 'data': 1}, {}),
                             ({'type': 'a', 'data': 1, 'id': 'i1'}, {}),
                             ({'type': 'a', 'data': 1}, {'Idempotency-Key': 'k'})):
                with self.subTest(body=body, hd=hd):
                    b = problem(self, publish(api, body, headers=hd), 507, 'redis_full')
                    self.assertIn('maxmemory', b['detail'])
            problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id']), 507, 'redis_full')
            problem(self, api.call('POST', '/v1/dead/replay', {'all': True}), 507, 'redis_full')
            # reads still work at maxmemory (the lookup scripts are no-writes)
            self.assertEqual(api.ok('GET', '/v1/events/' + ev['id'])['id'], ev['id'])
            self.assertEqual(len(api.ok('GET', '/v1/dead')['data']), 1)
            rs.call('CONFIG', 'SET', 'maxmemory', '0')
            self.assertEqual(rs.call('XLEN', EVENTS), 1)
            self.assertEqual(rs.call('EXISTS', JOBS), 0)
            self.assertEqual([i for i, _ in h.xrange_dicts(rs, DEAD)], [letter])
            # Redis refusing a command: 500 redis_error
            rs.call('SET', 'hookq:{q}:dead', 'not a stream')
            problem(self, api.call('GET', '/v1/dead'), 500, 'redis_error')
            rs.call('DEL', 'hookq:{q}:dead')
            rs.call('RENAME', EVENTS, 'saved')
            rs.call('SET', EVENTS, 'not a stream')
            problem(self, publish(api, {'type': 'a', 'data': 1}), 500, 'redis_error')
            problem(self, publish(api, {'type': 'a', 'data': 1}, headers={'Idempotency-Key': 'z'}),
                    500, 'redis_error')
            problem(self, api.call('GET', '/v1/events/' + ev['id']), 500, 'redis_error')
            rs.call('DEL', EVENTS)
            rs.call('RENAME', 'saved', EVENTS)
            self.assertEqual(publish(api, {'type': 'a', 'data': 1})[0], 202)
            # Redis gone: 503 with Retry-After everywhere, then back
            rs.stop()
            for method, path, body in (('POST', '/v1/events', {'type': 'a', 'data': 1}),
                                       ('GET', '/v1/events/' + ev['id'], None),
                                       ('POST', '/v1/events/%s/retry' % ev['id'], None),
                                       ('GET', '/v1/dead', None),
                                       ('POST', '/v1/dead/replay', {'all': True})):
                with self.subTest(path=path):
                    st, hd, b = api.call(method, path, body)
                    problem(self, (st, hd, b), 503, 'redis_unavailable')
                    self.assertEqual(hd.get('retry-after'), '1')
            rs.start()
            self.assertTrue(h.wait_until(lambda: publish(api, {'type': 'a', 'data': 1})[0] == 202,
                                         10 * h.SLOW))


# ------------------------------------------------------------------------------ delivery

class Delivery(h.TestCase):
    def test_data_arrives_byte_for_byte_and_the_event_shows_the_attempt(self):
        data = ('{"amount":1.50e+2, "big":123456789012345678901234567890,'
                '"name":"caf\\u00e9 \\ud83d\\ude00","t":[ true ,false,null, -0.0E-7 ] }')
        with h.RedisServer() as rs, h.Receiver() as rcv, au.ApiServer(rs) as api, \
                h.Worker(rs, env=u.env()) as w:
            ep, secret = u.add_endpoint(rs, rcv.url('/a'))
            st, _, out = publish(api, '{"type":"order.paid","data":%s}' % data)
            self.assertEqual(st, 202, out)
            self.assertTrue(rcv.wait_for(1, 10 * h.SLOW), w.log())
            body = rcv.requests[0].body
            self.assertIn(b'"data":' + data.encode() + b'}', body)
            self.assertTrue(h.sw_verify(secret, rcv.requests[0].headers, body))
            self.assertEqual(json.loads(body)['id'], out['id'])
            self.assertEventually(lambda: len(u.log_entries(rs, ep)) == 1, 10 * h.SLOW)
            st, hd, text = raw(api, 'GET', '/v1/events/' + out['id'])
            self.assertEqual(st, 200, text)
            self.assertEqual(hd['content-type'], 'application/json')
            self.assertIn(b'"data":' + data.encode() + b',', text)
            ev = json.loads(text)
            check_schema(self, 'Event', ev)
            self.assertEqual((ev['id'], ev['stream_id'], ev['type'], ev['tenant'],
                              ev['endpoint']),
                             (out['id'], out['stream_id'], 'order.paid', None, None))
            self.assertEqual(ev['data']['amount'], 150)
            self.assertRegex(ev['timestamp'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
            (d,) = ev['deliveries']
            self.assertEqual((d['endpoint_id'], d['status'], d['truncated']),
                             (ep, 'delivered', False))
            (a,) = d['attempts']
            self.assertEqual((a['attempt'], a['outcome'], a['status'], a['error'],
                              a['next_try']), (1, 'delivered', 204, None, None))
            self.assertEqual(a['delivery'], rcv.requests[0].headers['x-hookq-delivery-id'])
            self.assertIsInstance(a['latency_ms'], int)
            self.assertLessEqual(ev['timestamp'], a['at'])
            self.assertEqual(0, w.stop())

    def test_failure_dead_letter_replay_and_retry(self):
        state = {'fail': True}

        def handler(req, nth):
            return (500, {}, b'down') if state['fail'] else None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv, au.ApiServer(rs) as api, \
                h.Worker(rs, env=u.env(retry_schedule='200ms', retry_jitter=0)) as w:
            ep = add_ep(rs, rcv.url('/a'))
            st, _, out = publish(api, {'type': 'order.paid', 'data': {'n': 1}})
            eid = out['id']
            self.assertEventually(lambda: rs.call('XLEN', DEAD) == 1, 15 * h.SLOW)
            self.assertEventually(lambda: len(u.log_entries(rs, ep)) == 2, 10 * h.SLOW)
            ev = api.ok('GET', '/v1/events/' + eid)
            check_schema(self, 'Event', ev)
            (d,) = ev['deliveries']
            self.assertEqual(d['status'], 'dead')
            self.assertEqual([(a['attempt'], a['outcome'], a['status']) for a in d['attempts']],
                             [(1, 'retry', 500), (2, 'dead', 500)])
            self.assertIsNotNone(d['attempts'][0]['next_try'])
            self.assertIsNone(d['attempts'][1]['next_try'])
            self.assertTrue(d['attempts'][0]['error'])
            # the dead letter, as the API lists it
            page = api.ok('GET', '/v1/dead')
            check_schema(self, 'DeadLetterList', page)
            (dl,) = page['data']
            self.assertEqual((dl['kind'], dl['event'], dl['event_id'], dl['endpoint'],
                              dl['attempt'], dl['status'], dl['type']),
                             ('job', out['stream_id'], eid, ep, 2, 500, 'order.paid'))
            self.assertEqual(dl['id'], rs.call('XRANGE', DEAD, '-', '+')[0][0])
            # replay it: delivered this time
            state['fail'] = False
            res = api.ok('POST', '/v1/dead/replay', {'ids': [dl['id']]})
            check_schema(self, 'DeadReplayResult', res)
            self.assertEqual((res['replayed'], res['replayed_ids'], res['skipped']),
                             (1, [dl['id']], []))
            self.assertEqual(rs.call('XLEN', DEAD), 0)
            self.assertTrue(rcv.wait_for(3, 10 * h.SLOW))
            self.assertEventually(lambda: len(u.log_entries(rs, ep)) == 3, 10 * h.SLOW)
            d = api.ok('GET', '/v1/events/' + eid)['deliveries'][0]
            self.assertEqual(d['status'], 'delivered')
            self.assertEqual([a['attempt'] for a in d['attempts']], [1, 2, 1])
            # and retry it by hand
            st, _, r = api.call('POST', '/v1/events/%s/retry' % eid, {})
            self.assertEqual(st, 202, r)
            check_schema(self, 'EventRetried', r)
            self.assertEqual(r, {'event_id': eid, 'stream_id': out['stream_id'],
                                 'endpoints': [ep]})
            self.assertTrue(rcv.wait_for(4, 10 * h.SLOW))
            self.assertEventually(lambda: len(api.ok('GET', '/v1/events/' + eid)
                                              ['deliveries'][0]['attempts']) == 4, 10 * h.SLOW)
            self.assertEqual(rcv.requests[-1].headers['webhook-id'], eid)
            self.assertEqual(0, w.stop())


# ------------------------------------------------------------------------------ get

class GetEvent(Shared):
    def test_found_by_every_kind_of_id(self):
        rs, api = self.rs, self.api
        gen = publish(api, {'type': 'a', 'data': 1})[2]
        prod = publish(api, {'type': 'a', 'data': 2, 'id': 'ord-1'})[2]
        # 3000 events after them: the generated id's time still finds it at once
        rs.pipeline([('XADD', EVENTS, '*', 'id', 'other-%d' % i, 'type', 'b', 'data', '0')
                     for i in range(3000)])
        rawsid = rs.call('XADD', EVENTS, '*', 'type', 'raw.kind', 'data', '{"raw": 1}')
        legacy = rs.call('XADD', EVENTS, '*', 'id', 'legacy-7', 'type', 'c', 'data', '3')
        self.assertEqual(api.ok('GET', '/v1/events/' + gen['id'])['stream_id'], gen['stream_id'])
        self.assertEqual(api.ok('GET', '/v1/events/ord-1')['stream_id'], prod['stream_id'])
        rawid = 'evt_' + rawsid.replace('-', '')
        ev = api.ok('GET', '/v1/events/' + rawid)
        self.assertEqual((ev['id'], ev['stream_id'], ev['type'], ev['data']),
                         (rawid, rawsid, 'raw.kind', {'raw': 1}))
        # no mark, no time: the newest entries are searched
        self.assertEqual(api.ok('GET', '/v1/events/legacy-7')['stream_id'], legacy)
        self.assertEqual(api.ok('GET', '/v1/events/other-2999')['data'], 0)
        # ... but not the whole stream (docs/api.md "Events": the bound)
        rs.pipeline([('XADD', EVENTS, '*', 'id', 'later-%d' % i, 'type', 'b', 'data', '0')
                     for i in range(5100)])
        problem(self, api.call('GET', '/v1/events/legacy-7'), 404, 'not_found')
        self.assertEqual(api.ok('GET', '/v1/events/' + gen['id'])['stream_id'], gen['stream_id'])
        self.assertEqual(api.ok('GET', '/v1/events/ord-1')['stream_id'], prod['stream_id'])
        self.assertEqual(api.ok('GET', '/v1/events/' + rawid)['stream_id'], rawsid)
        # missing, invalid, and gone (the mark outlived its entry)
        problem(self, api.call('GET', '/v1/events/nothing-here'), 404, 'not_found')
        problem(self, api.call('GET', '/v1/events/evt_01ARZ3NDEKTSV4RRFFQ69G5FAV'), 404,
                'not_found')
        problem(self, api.call('GET', '/v1/events/a.b'), 404, 'not_found')
        rs.call('XDEL', EVENTS, prod['stream_id'])
        b = problem(self, api.call('GET', '/v1/events/ord-1'), 404, 'not_found')
        self.assertIn('no longer', b['detail'])

    def test_tenants_and_malformed_entries(self):
        rs, api = self.rs, self.api
        a = publish(api, {'type': 'a', 'data': 1}, key=au.ACME)[2]
        n = publish(api, {'type': 'a', 'data': 1})[2]
        self.assertEqual(api.ok('GET', '/v1/events/' + a['id'], key=au.ACME)['tenant'], 'acme')
        self.assertEqual(api.ok('GET', '/v1/events/' + a['id'])['tenant'], 'acme')
        problem(self, api.call('GET', '/v1/events/' + a['id'], key=au.GLOBEX), 404, 'not_found')
        problem(self, api.call('GET', '/v1/events/' + n['id'], key=au.ACME), 404, 'not_found')
        bad = rs.call('XADD', EVENTS, '*', 'id', 'bad-1', 'type', 'x', 'data', '{"a":')
        ev = api.ok('GET', '/v1/events/bad-1')
        check_schema(self, 'Event', ev)
        self.assertEqual((ev['stream_id'], ev['data'], ev['deliveries']), (bad, None, []))
        self.assertIn('data', ev['malformed'])
        self.assertNotIn('malformed', api.ok('GET', '/v1/events/' + n['id']))

    def test_status_per_endpoint(self):
        rs, api = self.rs, self.api
        done = add_ep(rs)
        retrying = add_ep(rs, 'http://127.0.0.1:9/r', '--events', 'order.*')
        dead = add_ep(rs, 'http://127.0.0.1:9/d')
        pending = add_ep(rs)
        off = add_ep(rs)
        cli(rs, 'endpoint', 'disable', off)
        other = add_ep(rs, 'http://127.0.0.1:9/o', '--events', 'task:*')
        acme = add_ep(rs, 'http://127.0.0.1:9/acme', '--tenant', 'acme')
        globex = add_ep(rs, 'http://127.0.0.1:9/globex', '--tenant', 'globex')
        ev = publish(api, {'type': 'order.paid', 'data': {}, 'tenant': 'acme'})[2]
        sid, eid = ev['stream_id'], ev['id']
        time.sleep(0.01)
        late = add_ep(rs)  # made after the event: it never had it
        write_log(rs, done, sid, eid, 1, 'retry', 500, 'HTTP 500', '2026-01-01T00:00:00.000Z')
        write_log(rs, done, sid, eid, 2, 'delivered', 200)
        write_log(rs, retrying, sid, eid, 1, 'retry', 503, 'HTTP 503', '2030-01-01T00:00:00.000Z')
        write_log(rs, dead, sid, eid, 1, 'dead', 400, 'HTTP 400')
        write_log(rs, other, sid, eid, 1, 'disabled', 0, 'endpoint disabled')
        write_log(rs, globex, '1-1', 'evt_other', 1, 'delivered', 200)
        got = api.ok('GET', '/v1/events/' + eid)
        check_schema(self, 'Event', got)
        st = {d['endpoint_id']: d['status'] for d in got['deliveries']}
        self.assertEqual(st, {done: 'delivered', retrying: 'retrying', dead: 'dead',
                              pending: 'pending', off: 'disabled', other: 'disabled',
                              acme: 'pending'})
        self.assertNotIn(late, st)
        self.assertNotIn(globex, st)
        by = {d['endpoint_id']: d for d in got['deliveries']}
        self.assertEqual([(a['attempt'], a['outcome'], a['status'], a['error'])
                          for a in by[done]['attempts']],
                         [(1, 'retry', 500, 'HTTP 500'), (2, 'delivered', 200, None)])
        self.assertEqual(by[done]['attempts'][0]['next_try'], '2026-01-01T00:00:00.000Z')
        self.assertEqual(by[pending]['attempts'], [])
        # a tenant key sees its tenant's endpoints only
        mine = api.ok('GET', '/v1/events/' + eid, key=au.ACME)
        self.assertEqual([d['endpoint_id'] for d in mine['deliveries']], [acme])
        # the log read is bounded: 5000 entries after the event, then "truncated"
        rs.pipeline([('XADD', log_key(acme), '*', 'event', '9-9', 'outcome', 'delivered')
                     for _ in range(5000)])
        write_log(rs, acme, sid, eid, 1, 'delivered', 200)
        d = {d['endpoint_id']: d for d in api.ok('GET', '/v1/events/' + eid)['deliveries']}
        self.assertEqual((d[acme]['truncated'], d[acme]['status'], d[acme]['attempts']),
                         (True, 'pending', []))
        self.assertFalse(d[done]['truncated'])


# ------------------------------------------------------------------------------ retry

class Retry(Shared):
    def test_retry_queues_like_the_cli(self):
        rs, api = self.rs, self.api
        all_ = add_ep(rs)
        orders = add_ep(rs, 'http://127.0.0.1:9/o', '--events', 'order.*')
        add_ep(rs, 'http://127.0.0.1:9/t', '--events', 'task:*')
        acme = add_ep(rs, 'http://127.0.0.1:9/a', '--events', 'order.*', '--tenant', 'acme')
        globex = add_ep(rs, 'http://127.0.0.1:9/g', '--tenant', 'globex')
        off = add_ep(rs, 'http://127.0.0.1:9/off', '--events', 'order.*')
        cli(rs, 'endpoint', 'disable', off)
        ev = publish(api, {'type': 'order.paid', 'data': 1, 'tenant': 'acme'})[2]
        st, _, r = api.call('POST', '/v1/events/%s/retry' % ev['id'])
        self.assertEqual(st, 202, r)
        self.assertEqual(sorted(r['endpoints']), sorted([all_, orders, acme]))
        jobs = [f for _, f in self.entries(JOBS)]
        self.assertEqual(sorted(j['endpoint'] for j in jobs), sorted([all_, orders, acme]))
        self.assertEqual({(j['event'], j['attempt']) for j in jobs}, {(ev['stream_id'], '1')})
        # the same as `hookq retry` on the same data
        js = cli(rs, 'retry', ev['id'])
        self.assertEqual(sorted(js['endpoints']), sorted(r['endpoints']))
        # a tenant key: its own endpoints only
        self.assertEqual(api.ok('POST', '/v1/events/%s/retry' % ev['id'], key=au.ACME)
                         ['endpoints'], [acme])
        # one named endpoint: subscriptions do not matter, disabled is refused
        self.assertEqual(api.ok('POST', '/v1/events/%s/retry' % ev['id'],
                                {'endpoint': globex})['endpoints'], [globex])
        problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id'], {'endpoint': off}),
                409, 'conflict', 'endpoint')
        problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id'], {'endpoint': 'ep_no'}),
                404, 'not_found')
        problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id'], {'endpoint': globex},
                               key=au.ACME), 404, 'not_found')
        n = len(self.entries(JOBS))
        # errors
        problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id'], {'endpoint': 'a b'}),
                422, 'invalid_field', 'endpoint')
        problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id'], {'endpoint': 3}),
                422, 'invalid_field', 'endpoint')
        problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id'], {'all': True}),
                422, 'unknown_field', 'all')
        problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id'], raw='[1]',
                               headers=JSON), 400, 'invalid_json')
        problem(self, api.call('POST', '/v1/events/nope/retry'), 404, 'not_found')
        problem(self, api.call('POST', '/v1/events/%s/retry' % ev['id'], key=au.GLOBEX), 404,
                'not_found')
        t = publish(api, {'type': 'nobody.cares', 'data': 1, 'tenant': 'initech'})[2]
        cli(rs, 'endpoint', 'disable', all_)
        problem(self, api.call('POST', '/v1/events/%s/retry' % t['id']), 422,
                'no_matching_endpoint')
        p = publish(api, {'type': 'a', 'data': 1, 'id': 'gone-1'})[2]
        rs.call('XDEL', EVENTS, p['stream_id'])
        b = problem(self, api.call('POST', '/v1/events/gone-1/retry'), 404, 'not_found')
        self.assertIn('events.retention', b['detail'])
        self.assertEqual(len(self.entries(JOBS)), n)


# ------------------------------------------------------------------------------ dead

class Dead(Shared):
    def test_list_newest_first_pages_filters_tenants(self):
        rs, api = self.rs, self.api
        acme = add_ep(rs, 'http://127.0.0.1:9/a', '--tenant', 'acme')
        ids = [dead_job(rs, '1-%d' % i, acme if i % 2 else 'ep_B', 'evt_%d' % i)
               for i in range(1, 8)]
        bad = dead_event(rs)
        rs.call('XADD', DEAD, '*', 'kind', 'job', 'event', '1-1', 'endpoint', 'ep_B',
                'attempt', '3', 'order_key', 'k1', 'overtaken_by', '', 'waiting_behind', '4',
                'future_field', 'x')
        page = api.ok('GET', '/v1/dead')
        check_schema(self, 'DeadLetterList', page)
        got = [d['id'] for d in page['data']]
        self.assertEqual(got[1:], [bad] + ids[::-1])
        self.assertIsNone(page['next_cursor'])
        lanes, mal = page['data'][0], page['data'][1]
        self.assertEqual((lanes['order_key'], lanes['overtaken_by'], lanes['waiting_behind']),
                         ('k1', '', 4))
        self.assertNotIn('future_field', lanes)
        self.assertEqual((mal['kind'], mal['source'], mal['reason'], mal['original']),
                         ('event', '1-1', 'data: not JSON', {'type': 'x', 'data': '{'}))
        j = page['data'][2]
        self.assertEqual((j['attempt'], j['status'], j['error'], j['failed_at']),
                         (6, 500, 'HTTP 500', '2026-01-01T00:00:00.000Z'))
        self.assertRegex(j['at'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
        # pages of 3 walk it all, newest first, with no repeats
        seen, cursor = [], None
        while True:
            q = '/v1/dead?limit=3' + ('&cursor=' + cursor if cursor else '')
            p = api.ok('GET', q)
            self.assertLessEqual(len(p['data']), 3)
            seen += [d['id'] for d in p['data']]
            cursor = p['next_cursor']
            if not cursor:
                break
        self.assertEqual(seen, got)
        # filters
        mine = [d['id'] for d in api.ok('GET', '/v1/dead?endpoint=' + acme)['data']]
        self.assertEqual(mine, [ids[6], ids[4], ids[2], ids[0]])
        p = api.ok('GET', '/v1/dead?endpoint=%s&limit=2' % acme)
        self.assertEqual([d['id'] for d in p['data']], mine[:2])
        p2 = api.ok('GET', '/v1/dead?endpoint=%s&limit=2&cursor=%s' % (acme, p['next_cursor']))
        self.assertEqual([d['id'] for d in p2['data']], mine[2:])
        # tenant keys: their endpoints' letters only (never the malformed ones)
        self.assertEqual([d['id'] for d in api.ok('GET', '/v1/dead', key=au.ACME)['data']],
                         mine)
        self.assertEqual(api.ok('GET', '/v1/dead', key=au.GLOBEX)['data'], [])
        self.assertEqual(api.ok('GET', '/v1/dead?endpoint=ep_B', key=au.ACME)['data'], [])
        # bad parameters
        problem(self, api.call('GET', '/v1/dead?limit=0'), 400, 'invalid_parameter', 'limit')
        problem(self, api.call('GET', '/v1/dead?limit=1001'), 400, 'invalid_parameter')
        problem(self, api.call('GET', '/v1/dead?cursor=%%%'), 400, 'invalid_cursor')
        problem(self, api.call('GET', '/v1/dead?cursor=bm90LWFuLWlk'), 400, 'invalid_cursor')
        problem(self, api.call('GET', '/v1/dead?endpoint=a.b'), 400, 'invalid_parameter',
                'endpoint')
        problem(self, api.call('GET', '/v1/dead', key=None), 401, 'unauthorized')

    def test_filtered_list_is_bounded_and_its_cursor_goes_on(self):
        rs, api = self.rs, self.api
        old = dead_job(rs, '1-1', 'ep_A')
        rs.pipeline([('XADD', DEAD, '*', 'kind', 'job', 'event', '1-1', 'endpoint', 'ep_B')
                     for _ in range(10050)])
        p = api.ok('GET', '/v1/dead?endpoint=ep_A')
        self.assertEqual(p['data'], [])
        self.assertIsNotNone(p['next_cursor'])  # the scan stopped at its bound, not the end
        p = api.ok('GET', '/v1/dead?endpoint=ep_A&cursor=' + p['next_cursor'])
        self.assertEqual([d['id'] for d in p['data']], [old])
        self.assertIsNone(p['next_cursor'])

    def test_replay_by_ids(self):
        rs, api = self.rs, self.api
        a = dead_job(rs, '1700000000000-0', 'ep_A')
        b = dead_job(rs, '1700000000001-0', 'ep_B')
        r = api.ok('POST', '/v1/dead/replay', {'ids': [a, a]})
        self.assertEqual((r['replayed'], r['replayed_ids'], r['skipped'], r['truncated']),
                         (1, [a], [], False))
        (_, j), = self.entries(JOBS)
        self.assertEqual(j, {'event': '1700000000000-0', 'endpoint': 'ep_A', 'attempt': '1'})
        self.assertEqual([i for i, _ in self.entries(DEAD)], [b])
        # a missing id: nothing is replayed (as the CLI)
        problem(self, api.call('POST', '/v1/dead/replay', {'ids': [b, a]}), 404, 'not_found',
                'ids')
        self.assertEqual(rs.call('XLEN', DEAD), 1)
        # malformed letters and letters whose event is gone stay, with the reason
        ev = dead_event(rs)
        gone = dead_job(rs, '1700000000002-0', 'ep_C', 'evt_gone')
        rs.call('XDEL', EVENTS, '1700000000002-0')
        r = api.ok('POST', '/v1/dead/replay', {'ids': [ev, gone, b]})
        check_schema(self, 'DeadReplayResult', r)
        self.assertEqual(r['replayed_ids'], [b])
        why = {s['id']: s['reason'] for s in r['skipped']}
        self.assertIn('not replayable', why[ev])
        self.assertIn('evt_gone', why[gone])
        self.assertIn('events.retention', why[gone])
        self.assertEqual(sorted(i for i, _ in self.entries(DEAD)), sorted([ev, gone]))

    def test_replay_all_endpoint_and_tenants(self):
        rs, api = self.rs, self.api
        acme = add_ep(rs, 'http://127.0.0.1:9/a', '--tenant', 'acme')
        x1 = dead_job(rs, '1-1', acme)
        y = dead_job(rs, '1-2', 'ep_B')
        x2 = dead_job(rs, '1-3', acme)
        ev = dead_event(rs)
        # tenant keys: not another's letters, by id or by all
        problem(self, api.call('POST', '/v1/dead/replay', {'ids': [y]}, key=au.ACME), 404,
                'not_found')
        problem(self, api.call('POST', '/v1/dead/replay', {'ids': [ev]}, key=au.ACME), 404,
                'not_found')
        self.assertEqual(api.ok('POST', '/v1/dead/replay', {'all': True}, key=au.GLOBEX)
                         ['replayed'], 0)
        r = api.ok('POST', '/v1/dead/replay', {'all': True}, key=au.ACME)
        self.assertEqual((r['replayed'], r['replayed_ids'], r['skipped']), (2, [x1, x2], []))
        jobs = [(f['event'], f['endpoint']) for _, f in self.entries(JOBS)]
        self.assertEqual(jobs, [('1-1', acme), ('1-3', acme)])  # oldest first
        # admin: all with an endpoint filter, then everything (the malformed one skipped)
        x3 = dead_job(rs, '1-4', acme)
        r = api.ok('POST', '/v1/dead/replay', {'all': True, 'endpoint': acme})
        self.assertEqual(r['replayed_ids'], [x3])
        r = api.ok('POST', '/v1/dead/replay', {'all': True})
        self.assertEqual((r['replayed_ids'], [s['id'] for s in r['skipped']]), ([y], [ev]))
        self.assertEqual([i for i, _ in self.entries(DEAD)], [ev])

    def test_replay_body_errors(self):
        api = self.api
        for body, code, field in [
                ({}, 'invalid_field', 'ids'),
                ({'all': False}, 'invalid_field', 'ids'),
                ({'all': 'yes'}, 'invalid_field', 'all'),
                ({'ids': []}, 'invalid_field', 'ids'),
                ({'ids': 'x'}, 'invalid_field', 'ids'),
                ({'ids': ['1-1', 'nope']}, 'invalid_field', 'ids'),
                ({'ids': [7]}, 'invalid_field', 'ids'),
                ({'ids': ['1-1'] * 10001}, 'invalid_field', 'ids'),
                ({'ids': ['1-1'], 'all': True}, 'invalid_field', 'all'),
                ({'ids': ['1-1'], 'endpoint': 'ep_A'}, 'invalid_field', 'endpoint'),
                ({'all': True, 'endpoint': 'a b'}, 'invalid_field', 'endpoint'),
                ({'all': True, 'colour': 1}, 'unknown_field', 'colour')]:
            with self.subTest(body=str(body)[:50]):
                problem(self, api.call('POST', '/v1/dead/replay', body), 422, code, field)
        problem(self, api.call('POST', '/v1/dead/replay'), 400, 'invalid_json')
        problem(self, api.call('POST', '/v1/dead/replay', raw='{"ids":', headers=JSON), 400,
                'invalid_json')

    def test_replay_is_bounded_and_races_queue_once(self):
        rs, api = self.rs, self.api
        rs.call('XADD', EVENTS, '1-1', 'id', 'evt_x', 'type', 'order.paid', 'data', '{}')
        rs.pipeline([('XADD', DEAD, '*', 'kind', 'job', 'event', '1-1', 'endpoint', 'ep_A')
                     for _ in range(10001)])
        r = api.ok('POST', '/v1/dead/replay', {'all': True})
        self.assertEqual((r['replayed'], r['truncated']), (10000, True))
        r = api.ok('POST', '/v1/dead/replay', {'all': True})
        self.assertEqual((r['replayed'], r['truncated']), (1, False))
        self.assertEqual(rs.call('XLEN', JOBS), 10001)
        self.assertEqual(rs.call('XLEN', DEAD), 0)
        # two replays of the same letters at once: each letter is queued once
        rs.call('DEL', JOBS)
        rs.pipeline([('XADD', DEAD, '*', 'kind', 'job', 'event', '1-1', 'endpoint', 'ep_A')
                     for _ in range(2000)])
        out = []
        ts = [threading.Thread(target=lambda: out.append(
            api.ok('POST', '/v1/dead/replay', {'all': True}))) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60 * h.SLOW)
        self.assertEqual(sum(o['replayed'] for o in out), 2000)
        self.assertEqual(rs.call('XLEN', JOBS), 2000)


if __name__ == '__main__':
    h.main()
