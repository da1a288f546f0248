"""Failed attempts' counters are written in batches (one fail.lua per endpoint per
results round), with the semantics of one write per attempt:

- the failure counter follows the completion order inside a round: after each round of
  mixed answers it holds the failures since the last success, as the delivery log
  (written in completion order) shows them;
- failures that cross endpoints.disable_after in one round disable once, at exactly the
  threshold, with one endpoint.disabled event and one log line.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


def disabled_events(rs):
    return [json.loads(f['data']) for _, f in u.entries(rs, u.EVENTS)
            if f.get('type') == 'endpoint.disabled']


def expected_count(outcomes, start):
    """The counter after outcomes ('delivered' / 'retry' / 'dead') applied in order."""
    n = start
    for o in outcomes:
        n = 0 if o == 'delivered' else n + 1
    return n


class WorkerFailBatch(h.TestCase):

    def test_counter_follows_completion_order_within_a_round(self):
        # each round: 4 events sent at once (the endpoint's first window is 4, so they
        # are in flight together and mostly finish in the same results round), answered
        # 500 or 204 by the plan; the counter must match the log's order every time
        plans = ['fsff', 'sfsf', 'fffs', 'fssf', 'ssff', 'ffff', 'sfff', 'fsfs', 'ffsf']
        plan = ''.join(plans)

        def handler(req, nth):
            i = json.loads(req.body)['data']['i']
            time.sleep(0.02)  # the round's answers arrive together
            return (500, {}, b'no') if plan[i] == 'f' else None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            fkey = 'hookq:{%s}:failures' % ep
            e = u.env(retry_schedule='1h', retry_max_retry_after='1h',
                      endpoints_disable_after=1000, delivery_per_endpoint=4)
            with h.Worker(rs, env=e) as w:
                i = 0
                for rnd in plans:
                    rs.pipeline([('XADD', u.EVENTS, '*', 'type', 'x', 'data',
                                  json.dumps({'i': i + k})) for k in range(len(rnd))])
                    i += len(rnd)
                    self.assertEventually(lambda: len(u.log_entries(rs, ep)) == i, 10, w.log())
                    outcomes = [f['outcome'] for _, f in u.log_entries(rs, ep)]
                    want = expected_count(outcomes, 0)
                    got = int(rs.call('GET', fkey) or 0)
                    self.assertEqual(want, got, 'after %s: log order %s' % (rnd, outcomes))
                self.assertEqual(0, w.stop())
            self.assertEqual(len(plan), len(rcv.requests))
            self.assertEqual('true', rs.call('HGET', 'hookq:{%s}:endpoint' % ep, 'enabled'))

    def test_threshold_crossed_in_one_round_disables_once(self):
        def handler(req, nth):
            time.sleep(0.05)
            return (500, {}, b'down')
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'), '--events', 'x')
            key = 'hookq:{%s}:endpoint' % ep
            e = u.env(endpoints_disable_after=3, retry_schedule='1h', retry_max_retry_after='1h',
                      delivery_per_endpoint=4, log_level='info')
            w = h.Worker(rs, env=e).start()
            try:
                self.assertEventually(lambda: 'endpoints: loaded 1' in w.log(), 10, w.log())
                rs.pipeline([('XADD', u.EVENTS, '*', 'type', 'x', 'data', str(i))
                             for i in range(8)])
                self.assertEventually(lambda: rs.call('HGET', key, 'enabled') == 'false', 10)
                self.assertEventually(lambda: len(u.log_entries(rs, ep)) == 8
                                      and rs.call('XPENDING', u.JOBS, 'deliver')[0] == 0)
            finally:
                self.assertEqual(0, w.stop())
            self.assertEqual(disabled_events(rs),
                             [{'endpoint_id': ep, 'reason': 'consecutive failures',
                               'failures': 3}])
            self.assertEqual('3', rs.call('GET', 'hookq:{%s}:failures' % ep),
                             'failures after the disable are not counted')
            self.assertIn('3 consecutive failed attempts', rs.call('HGET', key, 'disabled_reason'))
            self.assertEqual(1, w.log().count('disabled after 3 consecutive failures'), w.log())
            # one attempt each (the retry is an hour away), the rest dropped as disabled
            n = len(rcv.requests)
            self.assertGreaterEqual(n, 3)
            self.assertEqual(n, rs.call('ZCARD', u.DELAY))
            outcomes = [f['outcome'] for _, f in u.log_entries(rs, ep)]
            self.assertEqual((n, 8 - n), (outcomes.count('retry'), outcomes.count('disabled')))


if __name__ == '__main__':
    h.main()
