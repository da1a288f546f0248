"""Consecutive failures and auto-disable, exactly at the threshold."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


def disabled_events(rs):
    return [f for _, f in u.entries(rs, u.EVENTS) if f.get('type') == 'endpoint.disabled']


class WorkerDisable(h.TestCase):

    def test_threshold_with_three_racing_workers(self):
        def handler(req, nth):
            return (500, {}, b'')
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'), '--events', 'x')
            for i in range(60):
                u.xadd_event(rs, 'x', str(i))
            # one attempt per job (the retry is an hour away): 60 failures race
            e = u.env(endpoints_disable_after=10, retry_schedule='1h',
                      retry_max_retry_after='1h')
            ws = [h.Worker(rs, env=e, name='w%d' % i).start() for i in range(3)]
            try:
                key = 'hookq:{%s}:endpoint' % ep
                self.assertEventually(lambda: rs.call('HGET', key, 'enabled') == 'false', 20)
                self.assertEventually(lambda: len(disabled_events(rs)) >= 1)
                time.sleep(1.0)
            finally:
                for w in ws:
                    w.stop()
            evs = disabled_events(rs)
            self.assertEqual(1, len(evs))  # exactly one worker disabled it
            data = json.loads(evs[0]['data'])
            self.assertEqual(ep, data['endpoint_id'])
            self.assertEqual(10, data['failures'])  # at exactly the threshold
            reason = rs.call('HGET', key, 'disabled_reason')
            self.assertIn('10 consecutive', reason)
            self.assertGreaterEqual(len(rcv.requests), 10)

    def test_success_at_threshold_minus_one_resets(self):
        # fail 4, succeed 1, fail 4: never 5 in a row, so never disabled; then the 5th
        # consecutive failure disables
        plan = [500] * 4 + [204] + [500] * 5

        def handler(req, nth):
            return (plan[nth], {}, b'') if plan[nth] != 204 else None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            key = 'hookq:{%s}:endpoint' % ep
            fkey = 'hookq:{%s}:failures' % ep
            e = u.env(endpoints_disable_after=5, retry_schedule='1h')
            with h.Worker(rs, env=e) as w:
                for i in range(len(plan)):
                    u.send(rs, 'x', str(i))
                    self.assertTrue(rcv.wait_for(i + 1, 10), w.log())
                    self.assertEventually(lambda: len(u.log_entries(rs, ep)) == i + 1)
                    if i == 3:
                        self.assertEqual('4', rs.call('GET', fkey))
                    if i == 4:
                        self.assertIsNone(rs.call('GET', fkey))  # reset by the success
                    if i < len(plan) - 1:
                        self.assertEqual('true', rs.call('HGET', key, 'enabled'), i)
                self.assertEventually(lambda: rs.call('HGET', key, 'enabled') == 'false')
                self.assertEqual(0, w.stop())
            self.assertEqual('5', rs.call('GET', fkey))
            r = h.hookq(rs, 'endpoint', 'enable', ep)
            self.assertEqual(0, r.returncode, r.stderr)
            self.assertIsNone(rs.call('GET', fkey))


if __name__ == '__main__':
    h.main()
