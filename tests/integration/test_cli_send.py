"""hookq send and the C producer API (publish_example) against a real Redis."""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EVENTS = 'hookq:{q}:events'


def events(rs):
    return h.xrange_dicts(rs, EVENTS)


class SendTest(h.RedisTestCase):
    def send(self, *args, ok=True, **kw):
        r = h.hookq(self.rs, 'send', *args, **kw)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_send_generated_id(self):
        r = self.send('task:transition', '{"task":42}')
        eid = r.stdout.strip()
        self.assertRegex(eid, r'^evt_[0-9A-Z]{26}$')
        ev = events(self.rs)
        self.assertEqual(len(ev), 1)
        sid, f = ev[0]
        self.assertEqual(f['id'], eid)
        self.assertEqual(f['type'], 'task:transition')
        self.assertEqual(f['data'], '{"task":42}')
        self.assertNotIn('tenant', f)
        self.assertNotIn('endpoint', f)
        # ts is unix ms close to the stream id's time
        self.assertLess(abs(int(f['ts']) - int(sid.split('-')[0])), 5000)
        r2 = self.send('task:transition', '{"task":43}')
        self.assertNotEqual(r2.stdout.strip(), eid)
        self.assertEqual(self.rs.call('XLEN', EVENTS), 2)

    def test_send_default_data_tenant_endpoint(self):
        self.send('order.paid', '--tenant', 'acme', '--endpoint', 'ep_01TARGET')
        f = events(self.rs)[0][1]
        self.assertEqual(f['data'], '{}')
        self.assertEqual(f['tenant'], 'acme')
        self.assertEqual(f['endpoint'], 'ep_01TARGET')

    def test_send_with_id_is_idempotent(self):
        r1 = self.send('order.paid', '{"n":1}', '--id', 'order-42-paid')
        r2 = self.send('order.paid', '{"n":2}', '--id', 'order-42-paid')
        self.assertEqual(r1.stdout.strip(), 'order-42-paid')
        self.assertEqual(r2.stdout.strip(), 'order-42-paid')
        ev = events(self.rs)
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0][1]['data'], '{"n":1}')
        self.assertEqual(self.rs.call('GET', 'hookq:{q}:idem:order-42-paid'), ev[0][0])
        ttl = self.rs.call('PTTL', 'hookq:{q}:idem:order-42-paid')
        self.assertGreater(ttl, 23 * 3600 * 1000)
        self.assertLessEqual(ttl, 24 * 3600 * 1000)
        js = json.loads(self.send('order.paid', '{}', '--id', 'order-42-paid', '--json').stdout)
        self.assertEqual(js, {'id': 'order-42-paid', 'stream_id': ev[0][0], 'duplicate': True})
        # a different id publishes
        self.send('order.paid', '{}', '--id', 'order-43-paid')
        self.assertEqual(self.rs.call('XLEN', EVENTS), 2)

    def test_idempotency_ttl_from_env(self):
        self.send('a.b', '{}', '--id', 'short-lived', env={'HOOKQ_EVENTS_IDEMPOTENCY_TTL': '1m'})
        ttl = self.rs.call('PTTL', 'hookq:{q}:idem:short-lived')
        self.assertGreater(ttl, 0)
        self.assertLessEqual(ttl, 60000)

    def test_concurrent_sends_of_one_id_publish_once(self):
        def one(i):
            return h.hookq(self.rs, 'send', 'order.paid', '{"i":%d}' % i, '--id', 'same-id')
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
            results = list(ex.map(one, range(20)))
        for r in results:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), 'same-id')
        self.assertEqual(self.rs.call('XLEN', EVENTS), 1)

    def test_data_from_stdin_and_file_byte_exact(self):
        body = '{\n  "text": "caf\u00e9 \u2603 \\"q\\" \\u00e9",\n  "n": [1, 2.5e3, null, true]\n}\n'
        r = self.send('doc.created', '-', input=body)
        f = events(self.rs)[0][1]
        self.assertEqual(f['id'], r.stdout.strip())
        self.assertEqual(f['data'], body)
        with tempfile.NamedTemporaryFile('wb', suffix='.json', delete=False) as tf:
            tf.write(body.encode())
        try:
            self.send('doc.created', '@' + tf.name)
        finally:
            os.unlink(tf.name)
        raw = self.rs.call('XRANGE', EVENTS, '-', '+', raw=True)
        datas = [dict(zip(e[1][0::2], e[1][1::2]))[b'data'] for e in raw]
        self.assertEqual(datas, [body.encode(), body.encode()])

    def test_send_rejects_bad_input(self):
        cases = [
            (['bad type', '{}'], 'type'),
            (['a..b', '{}'], 'type'),
            (['a.b', '{"x":'], 'data'),
            (['a.b', '{} {}'], 'data'),
            (['a.b', '{}', '--id', 'has.dot'], 'id'),
            (['a.b', '{}', '--id', 'x' * 129], 'id'),
            (['a.b', '{}', '--tenant', 'a b'], 'tenant'),
            (['a.b', '@/nonexistent/file.json'], '/nonexistent/file.json'),
        ]
        for args, word in cases:
            r = self.send(*args, ok=False)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(word, r.stderr, args)
            self.assertTrue(r.stderr.startswith('hookq: '), r.stderr)
        deep = '[' * 40 + ']' * 40
        r = self.send('a.b', deep, ok=False)
        self.assertEqual(r.returncode, 1)
        r = self.send('a.b', '[1,2,3,4,5,6,7,8]', ok=False, env={'HOOKQ_EVENTS_MAX_PAYLOAD': '8'})
        self.assertEqual(r.returncode, 1)
        self.assertIn('data', r.stderr)
        self.assertEqual(self.rs.call('XLEN', EVENTS), 0)

    def test_oom_is_reported(self):
        self.rs.call('CONFIG', 'SET', 'maxmemory', '1')
        try:
            r = self.send('a.b', '{}', ok=False)
            r2 = self.send('a.b', '{}', '--id', 'oom-id', ok=False)
        finally:
            self.rs.call('CONFIG', 'SET', 'maxmemory', '0')
        self.assertEqual(r.returncode, 1)
        self.assertIn('out of memory', r.stderr)
        self.assertEqual(r2.returncode, 1)
        self.assertIn('out of memory', r2.stderr)
        self.assertEqual(self.rs.call('EXISTS', 'hookq:{q}:idem:oom-id'), 0)

    def test_publish_example_program(self):
        prog = os.path.join(h.BIN, 'publish_example')
        r = subprocess.run([prog, self.rs.url, 'invoice.paid', '{"amount":100}'],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        eid = r.stdout.strip()
        self.assertTrue(eid.startswith('evt_'))
        ev = events(self.rs)
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0][1]['id'], eid)
        self.assertEqual(ev[0][1]['type'], 'invoice.paid')
        self.assertEqual(ev[0][1]['data'], '{"amount":100}')
        # with an id, twice: one event
        for _ in range(2):
            r = subprocess.run([prog, self.rs.url, 'invoice.paid', '{}', 'inv-7'],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), 'inv-7')
        self.assertEqual(self.rs.call('XLEN', EVENTS), 2)
        # errors come back with a code and message
        r = subprocess.run([prog, self.rs.url, 'bad type', '{}'], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn('invalid argument', r.stderr)
        r = subprocess.run([prog, 'redis://127.0.0.1:1/0', 'a.b', '{}'], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn('cannot connect to Redis at 127.0.0.1:1', r.stderr)


if __name__ == '__main__':
    h.main()
