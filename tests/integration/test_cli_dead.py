"""hookq dead list/replay/purge, retry and deliveries, on entries written directly into
Redis (the worker's side of the contract is docs/keys.md)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEAD = 'hookq:{q}:dead'
JOBS = 'hookq:{q}:jobs'
EVENTS = 'hookq:{q}:events'


class DeadTest(h.RedisTestCase):
    def cli(self, *args, code=0, **kw):
        r = h.hookq(self.rs, *args, **kw)
        self.assertEqual(r.returncode, code, 'hookq %s: %s' % (' '.join(args), r.stderr))
        return r

    def dead_job(self, event, endpoint, event_id='evt_x', error='HTTP 500'):
        # the event is still in the events stream, as a replay needs (see
        # test_cli_replay_trimmed.py for one that is gone)
        if not self.rs.call('XRANGE', EVENTS, event, event):
            self.rs.call('XADD', EVENTS, event, 'id', event_id, 'type', 'order.paid', 'data', '{}')
        return self.rs.call('XADD', DEAD, '*', 'kind', 'job', 'event', event, 'event_id', event_id,
                            'type', 'order.paid', 'endpoint', endpoint, 'attempt', '6',
                            'error', error, 'status', '500', 'failed_at', '2026-01-01T00:00:00.000Z')

    def dead_event(self):
        return self.rs.call('XADD', DEAD, '*', 'kind', 'event', 'source', '1-1',
                            'reason', 'data: not JSON', 'f.type', 'x', 'f.data', '{')

    def add_ep(self, *args):
        r = self.cli('endpoint', 'add', '--url', 'http://127.0.0.1:9/hook', *args)
        return json.loads(r.stdout)['id']

    def test_dead_list(self):
        a = self.dead_job('1-1', 'ep_A', 'evt_a')
        b = self.dead_job('1-2', 'ep_B', 'evt_b', error='connection refused')
        c = self.dead_event()
        js = json.loads(self.cli('dead', 'list', '--json').stdout)
        self.assertEqual([e['dead_id'] for e in js], [c, b, a])  # newest first
        self.assertEqual(js[1]['endpoint'], 'ep_B')
        self.assertEqual(js[1]['error'], 'connection refused')
        js = json.loads(self.cli('dead', 'list', '--endpoint', 'ep_A', '--json').stdout)
        self.assertEqual([e['dead_id'] for e in js], [a])
        js = json.loads(self.cli('dead', 'list', '--limit', '2', '--json').stdout)
        self.assertEqual(len(js), 2)
        text = self.cli('dead', 'list').stdout
        lines = text.strip().split('\n')
        self.assertTrue(lines[0].startswith('ID'))
        self.assertEqual(len(lines), 4)
        self.assertIn('connection refused', text)
        self.assertIn('data: not JSON', text)

    def test_replay_one(self):
        a = self.dead_job('1700000000000-0', 'ep_A')
        b = self.dead_job('1700000000001-0', 'ep_B')
        r = self.cli('dead', 'replay', a)
        self.assertIn('replayed 1', r.stdout)
        jobs = h.xrange_dicts(self.rs, JOBS)
        self.assertEqual(len(jobs), 1)
        self.assertEqual(jobs[0][1], {'event': '1700000000000-0', 'endpoint': 'ep_A',
                                      'attempt': '1'})
        self.assertEqual([e[0] for e in h.xrange_dicts(self.rs, DEAD)], [b])
        r = self.cli('dead', 'replay', a, code=1)
        self.assertIn('not found', r.stderr)

    def test_replay_event_kind_refused(self):
        e = self.dead_event()
        r = self.cli('dead', 'replay', e, code=1)
        self.assertIn('not replayable', r.stdout + r.stderr)
        self.assertEqual(self.rs.call('XLEN', DEAD), 1)
        self.assertEqual(self.rs.call('EXISTS', JOBS), 0)

    def test_replay_by_endpoint_and_all(self):
        self.dead_job('1-1', 'ep_A')
        self.dead_job('1-2', 'ep_B')
        self.dead_job('1-3', 'ep_A')
        ev = self.dead_event()
        js = json.loads(self.cli('dead', 'replay', '--endpoint', 'ep_A', '--json').stdout)
        self.assertEqual(js['replayed'], 2)
        jobs = [f for _, f in h.xrange_dicts(self.rs, JOBS)]
        self.assertEqual([(j['event'], j['endpoint']) for j in jobs], [('1-1', 'ep_A'),
                                                                      ('1-3', 'ep_A')])
        r = self.cli('dead', 'replay', '--all')
        self.assertIn('replayed 1', r.stdout)
        self.assertIn('skipped ' + ev, r.stdout)
        self.assertEqual(self.rs.call('XLEN', JOBS), 3)
        self.assertEqual([e[0] for e in h.xrange_dicts(self.rs, DEAD)], [ev])

    def test_purge(self):
        self.dead_job('1-1', 'ep_A')
        b = self.dead_job('1-2', 'ep_B')
        self.dead_job('1-3', 'ep_A')
        r = self.cli('dead', 'purge', '--endpoint', 'ep_A')
        self.assertIn('purged 2', r.stdout)
        self.assertEqual([e[0] for e in h.xrange_dicts(self.rs, DEAD)], [b])
        js = json.loads(self.cli('dead', 'purge', '--all', '--json').stdout)
        self.assertEqual(js, {'purged': 1})
        self.assertEqual(self.rs.call('XLEN', DEAD), 0)

    def test_retry_matches_like_the_worker(self):
        all_ = self.add_ep()
        orders = self.add_ep('--events', 'order.*')
        tasks = self.add_ep('--events', 'task:*')
        acme = self.add_ep('--events', 'order.*', '--tenant', 'acme')
        globex = self.add_ep('--tenant', 'globex')
        off = self.add_ep('--events', 'order.*')
        self.cli('endpoint', 'disable', off)
        eid = self.cli('send', 'order.paid', '{"n":1}', '--tenant', 'acme').stdout.strip()
        sid = h.xrange_dicts(self.rs, EVENTS)[0][0]
        js = json.loads(self.cli('retry', eid, '--json').stdout)
        self.assertEqual(js['event'], sid)
        self.assertEqual(sorted(js['endpoints']), sorted([all_, orders, acme]))
        jobs = [f for _, f in h.xrange_dicts(self.rs, JOBS)]
        self.assertEqual(sorted(j['endpoint'] for j in jobs), sorted([all_, orders, acme]))
        for j in jobs:
            self.assertEqual(j['event'], sid)
            self.assertEqual(j['attempt'], '1')
        self.assertNotIn(tasks, js['endpoints'])
        self.assertNotIn(globex, js['endpoints'])

    def test_retry_targeted_event_and_explicit_endpoint(self):
        a = self.add_ep('--events', 'x.*')
        b = self.add_ep()
        eid = self.cli('send', 'other.type', '{}', '--endpoint', a).stdout.strip()
        r = self.cli('retry', eid)
        self.assertEqual(r.stdout.strip(), 'queued %s for %s' % (eid, a))
        self.rs.call('DEL', JOBS)
        # explicit endpoint: a manual resend regardless of subscription
        self.cli('retry', eid, '--endpoint', b)
        self.assertEqual([f['endpoint'] for _, f in h.xrange_dicts(self.rs, JOBS)], [b])
        self.cli('endpoint', 'disable', b)
        r = self.cli('retry', eid, '--endpoint', b, code=1)
        self.assertIn('disabled', r.stderr)
        r = self.cli('retry', eid, '--endpoint', 'ep_missing', code=1)
        self.assertIn('not found', r.stderr)

    def test_retry_finds_events_by_id_idem_and_scan(self):
        ep = self.add_ep()
        # producer-chosen id: found through the idempotency mark
        self.cli('send', 'a.b', '{}', '--id', 'chosen-1')
        # many events after it, so a scan would need more than one chunk
        pipe = [('XADD', EVENTS, '*', 'id', 'bulk-%d' % i, 'type', 'a.b', 'data', '{}')
                for i in range(2500)]
        self.rs.pipeline(pipe)
        # a raw producer's event without an id field: default id "evt_" + stream id
        raw_sid = self.rs.call('XADD', EVENTS, '*', 'type', 'a.b', 'data', '{}')
        raw_id = 'evt_' + raw_sid.replace('-', '')
        for want in ('chosen-1', 'bulk-3', raw_id):
            self.rs.call('DEL', JOBS)
            js = json.loads(self.cli('retry', want, '--json').stdout)
            self.assertEqual(js['endpoints'], [ep], want)
            jobs = h.xrange_dicts(self.rs, JOBS)
            self.assertEqual(len(jobs), 1)
            ev = h.xrange_dicts(self.rs, EVENTS, jobs[0][1]['event'], jobs[0][1]['event'])
            self.assertEqual(len(ev), 1)
            self.assertEqual(ev[0][1].get('id', 'evt_' + ev[0][0].replace('-', '')), want)
        r = self.cli('retry', 'evt_nothere', code=1)
        self.assertIn('evt_nothere is not in the events stream', r.stderr)

    def test_retry_no_receiver(self):
        self.add_ep('--events', 'z.*')
        eid = self.cli('send', 'a.b', '{}').stdout.strip()
        r = self.cli('retry', eid, code=1)
        self.assertIn('no enabled endpoint', r.stderr)
        self.assertEqual(self.rs.call('EXISTS', JOBS), 0)

    def test_deliveries(self):
        ep = self.add_ep()
        log = 'hookq:{%s}:log' % ep
        ids = []
        for i, (outcome, status) in enumerate([('retry', '500'), ('delivered', '200'),
                                               ('retry', '0'), ('dead', '503')]):
            ids.append(self.rs.call('XADD', log, '*', 'event_id', 'evt_%d' % i, 'event', '1-%d' % i,
                                    'type', 'order.paid', 'attempt', '1', 'outcome', outcome,
                                    'status', status, 'latency_ms', str(10 + i),
                                    'error', '' if outcome == 'delivered' else 'boom %d' % i,
                                    'response', 'r', 'delivery', 'dlv_%d' % i, 'worker', 'w1',
                                    'next_try', ''))
        js = json.loads(self.cli('deliveries', ep, '--json').stdout)
        self.assertEqual([e['log_id'] for e in js], list(reversed(ids)))
        self.assertEqual(js[0]['outcome'], 'dead')
        self.assertEqual(js[0]['status'], '503')
        self.assertEqual(js[2]['latency_ms'], '11')
        js = json.loads(self.cli('deliveries', ep, '--failed', '--limit', '2', '--json').stdout)
        self.assertEqual([e['event_id'] for e in js], ['evt_3', 'evt_2'])
        text = self.cli('deliveries', ep).stdout
        lines = text.strip().split('\n')
        self.assertEqual(len(lines), 5)
        self.assertIn('EVENT_ID', lines[0])
        self.assertIn('evt_3', lines[1])
        self.assertIn('boom 3', lines[1])
        self.assertIn('evt_0', lines[4])
        r = self.cli('deliveries', 'ep_unknown', code=1)
        self.assertIn('not found', r.stderr)


if __name__ == '__main__':
    h.main()
