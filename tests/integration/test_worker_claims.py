"""A job that keeps crashing its worker is dead-lettered after max claims."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


class WorkerClaims(h.TestCase):

    def test_max_claims_dead_letter(self):
        def handler(req, nth):
            time.sleep(2)  # long enough for the test to "crash" the worker meanwhile
            return None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            e = u.env(delivery_timeout='3s', delivery_visibility_timeout='4s',
                      delivery_max_claims=2)
            u.send(rs, 'x', '1')
            crashes = 0
            # read once + claimed twice = 3 crashes; the 3rd claim dead-letters it
            while crashes < 3:
                with h.Worker(rs, env=e, name='c%d' % crashes) as w:
                    self.assertTrue(rcv.wait_for(crashes + 1, 15), w.log())
                    w.kill()  # SIGKILL mid-delivery, like a crash
                    crashes += 1
            with h.Worker(rs, env=e, name='last') as w:
                self.assertEventually(lambda: len(u.entries(rs, u.DEAD)) == 1, 15)
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0)
                self.assertEqual(0, w.stop())
            self.assertEqual(3, len(rcv.requests))  # not delivered a 4th time
            (_, f), = u.entries(rs, u.DEAD)
            self.assertEqual(('job', ep), (f['kind'], f['endpoint']))
            self.assertIn('claimed 3 times', f['error'])


if __name__ == '__main__':
    h.main()
