"""10,000 jobs due in the same millisecond, 3 workers promoting concurrently:
each is promoted exactly once."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


class WorkerPromote(h.TestCase):

    def test_10000_due_same_ms_promoted_once(self):
        with h.RedisServer() as rs, h.Receiver() as rcv:
            # a disabled endpoint: each promoted job is acknowledged with exactly one
            # "disabled" delivery-log entry and no HTTP, so counting entries counts
            # promotions
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            self.assertEqual(0, h.hookq(rs, 'endpoint', 'disable', ep).returncode)
            ev = u.xadd_event(rs, 'x', '1')
            rs.call('XGROUP', 'CREATE', u.EVENTS, 'fanout', '$')  # nothing to fan out
            n = 10000
            due = int(time.time() * 1000) + 1500
            for k in range(0, n, 1000):
                args = ['ZADD', u.DELAY]
                for i in range(k, k + 1000):
                    args += [due, '%s %s 2 dlv_%d' % (ev, ep, i)]
                rs.call(*args)
            e = u.env(delivery_log_maxlen=100000)
            ws = [h.Worker(rs, env=e, name='w%d' % i).start() for i in range(3)]
            try:
                self.assertEventually(lambda: rs.call('ZCARD', u.DELAY) == 0, 30)
                self.assertEventually(
                    lambda: rs.call('XLEN', 'hookq:{%s}:log' % ep) >= n, 60)
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0, 30)
                time.sleep(0.5)
            finally:
                for w in ws:
                    self.assertEqual(0, w.stop())
            self.assertEqual(n, rs.call('XLEN', 'hookq:{%s}:log' % ep))
            self.assertEqual(0, rs.call('XLEN', u.JOBS))
            self.assertEqual([], rcv.requests)
            promoted_by = {w.log().count('promote:') > 0 for w in ws}
            self.assertIn(True, promoted_by)


if __name__ == '__main__':
    h.main()
