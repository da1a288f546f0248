"""Fanout and signed delivery (real redis-server, real receivers)."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


class WorkerDeliver(h.TestCase):

    def test_patterns_tenants_bodies_and_signatures(self):
        with h.RedisServer() as rs, h.Receiver() as rcv:
            a, sa = u.add_endpoint(rs, rcv.url('/a'), '--events', 'task:*')
            b, sb = u.add_endpoint(rs, rcv.url('/b'), '--events', 'task:created,invoice.paid')
            c, sc = u.add_endpoint(rs, rcv.url('/c'), '--events', '*', '--tenant', 't1')
            d, sd = u.add_endpoint(rs, rcv.url('/d'), '--github-signature',
                                   '--header', 'X-Team: core')
            secrets = {'/a': sa, '/b': sb, '/c': sc, '/d': sd}
            sent = [
                ('task:created', '{"n":1}', ()),
                ('task:done', '{"n":2}', ()),
                ('invoice.paid', '[1, 2,  3]', ()),
                ('invoice.paid', '{"t":"x"}', ('--tenant', 't2')),
                ('other', '"s"', ('--tenant', 't1')),
            ]
            ids = [u.send(rs, t, dd, *extra) for t, dd, extra in sent]
            # expected per path: a task:* ; b exact ; c * tenant t1 (no tenant or t1);
            # d * all
            want = {
                '/a': {ids[0], ids[1]},
                '/b': {ids[0], ids[2], ids[3]},
                '/c': {ids[0], ids[1], ids[2], ids[4]},
                '/d': set(ids),
            }
            with h.Worker(rs, env=u.env()) as w:
                total = sum(len(v) for v in want.values())
                self.assertTrue(rcv.wait_for(total, 15), w.log())
                time.sleep(0.5)
                self.assertEqual(0, w.stop())
            got = {}
            for r in rcv.requests:
                got.setdefault(r.path, []).append(r)
            for path, evs in want.items():
                self.assertEqual(sorted(evs), sorted(r.headers['webhook-id'] for r in got[path]),
                                 path)
            for path, reqs in got.items():
                for r in reqs:
                    self.assertTrue(h.sw_verify(secrets[path], r.headers, r.body), path)
                    body = json.loads(r.body)
                    i = ids.index(r.headers['webhook-id'])
                    # data byte-identical to what was published
                    self.assertIn(b'"data":' + sent[i][1].encode(), r.body)
                    self.assertEqual(sent[i][0], body['type'])
                    self.assertEqual(sent[i][0], r.headers['x-hookq-event-type'])
                    self.assertEqual('1', r.headers['x-hookq-attempt'])
                    self.assertTrue(r.headers['x-hookq-delivery-id'].startswith('dlv_'))
                    self.assertTrue(r.headers['user-agent'].startswith('hookq/'))
                    self.assertEqual('application/json', r.headers['content-type'])
            for r in got['/d']:
                self.assertEqual('core', r.headers['x-team'])
                import hashlib
                import hmac
                mac = hmac.new(sd.encode(), r.body, hashlib.sha256).hexdigest()
                self.assertEqual('sha256=' + mac, r.headers['x-hub-signature-256'])
            # delivery log: one "delivered" entry per delivery, and the PEL is empty
            logs = u.log_entries(rs, a)
            self.assertEqual(2, len(logs))
            for _, f in logs:
                self.assertEqual('delivered', f['outcome'])
                self.assertEqual('204', f['status'])
                self.assertEqual('1', f['attempt'])
            self.assertEqual(0, u.pel_count(rs, u.JOBS, 'deliver'))
            self.assertEqual(0, u.pel_count(rs, u.EVENTS, 'fanout'))
            self.assertEqual(0, rs.call('XLEN', u.JOBS))


if __name__ == '__main__':
    h.main()
