"""hookq test ENDPOINT: a sample event delivered by a real hookq-worker to a real receiver."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class TestCommand(h.TestCase):
    def add(self, rs, url, *args):
        r = h.hookq(rs, 'endpoint', 'add', '--url', url, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_without_worker_times_out(self):
        with h.RedisServer() as rs:
            ep = self.add(rs, 'http://127.0.0.1:9/hook')
            r = h.hookq(rs, 'test', ep['id'], '--wait', '500ms')
            self.assertEqual(r.returncode, 1)
            self.assertIn('no delivery attempt', r.stderr)
            # the sample event was published, targeted at the endpoint
            ev = h.xrange_dicts(rs, 'hookq:{q}:events')
            self.assertEqual(len(ev), 1)
            self.assertEqual(ev[0][1]['type'], 'hookq.test')
            self.assertEqual(ev[0][1]['endpoint'], ep['id'])
            h.hookq(rs, 'endpoint', 'disable', ep['id'])
            r = h.hookq(rs, 'test', ep['id'], '--wait', '500ms')
            self.assertEqual(r.returncode, 1)
            self.assertIn('disabled', r.stderr)
            r = h.hookq(rs, 'test', 'ep_nope')
            self.assertEqual(r.returncode, 1)
            self.assertIn('not found', r.stderr)

    def test_with_worker(self):
        def handler(req, nth):
            if req.path == '/fail':
                return (500, {}, b'nope')
            return (200, {}, b'ok')
        with h.RedisServer() as rs, h.Receiver(handler) as rcv, h.Worker(rs):
            good = self.add(rs, rcv.url('/ok'), '--events', 'order.*')
            bad = self.add(rs, rcv.url('/fail'))
            r = h.hookq(rs, 'test', good['id'], '--wait', '20s')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('delivered', r.stdout)
            reqs = rcv.for_path('/ok')
            self.assertEqual(len(reqs), 1)
            body = json.loads(reqs[0].body)
            self.assertEqual(body['type'], 'hookq.test')
            self.assertEqual(body['data']['endpoint'], good['id'])
            self.assertTrue(h.sw_verify(good['secret'], reqs[0].headers, reqs[0].body))
            # only the targeted endpoint got it
            self.assertEqual(rcv.for_path('/fail'), [])
            r = h.hookq(rs, 'test', bad['id'], '--wait', '20s', '--json')
            self.assertEqual(r.returncode, 1)
            out = json.loads(r.stdout)
            self.assertNotEqual(out['outcome'], 'delivered')
            self.assertEqual(out['status'], '500')
            self.assertIn('not delivered', r.stderr)


if __name__ == '__main__':
    h.main()
