"""A receiver that answers with bytes that are not HTTP.

A server that reads the request and writes something other than an HTTP response
("hello", an SSH banner, a TLS alert) and closes makes curl fail the transfer ("Received
HTTP/0.9 when not allowed"). That is a failed exchange like a reset connection, not a bad
URL: the attempt is logged with outcome `retry`, status 0 and the error, and the job is
tried again on the retry schedule until its attempts are used up; only then is it
dead-lettered (kind job, the last attempt).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402
import wkmore as m  # noqa: E402

# retry.schedule "1s,1s": 3 attempts, the 2nd about 1 s after the 1st.
SCHEDULE = '1s,1s'
ATTEMPTS = 3
REPLIES = {
    'hello': b'hello\r\n',
    'ssh': b'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n',
    'tls': b'\x15\x03\x01\x00\x02\x02\x46',  # a TLS alert, as a TLS port answers HTTP
}
TIMEOUT = 20


class NotHttp(h.TestCase):

    def test_non_http_answers_are_retried(self):
        servers = {k: m.RawServer(v).__enter__() for k, v in REPLIES.items()}
        try:
            with h.RedisServer() as rs:
                eps = {k: u.add_endpoint(rs, s.url('/' + k), '--events', 'raw.' + k)[0]
                       for k, s in servers.items()}
                with h.Worker(rs, env=u.env(retry_schedule=SCHEDULE)) as w:
                    ids = {k: u.send(rs, 'raw.' + k, '{"k":"%s"}' % k) for k in servers}

                    def done():  # each job has reached its end (a `dead` attempt)
                        return all(any(f['outcome'] == 'dead' for _, f in u.log_entries(rs, ep))
                                   for ep in eps.values())
                    h.wait_until(done, TIMEOUT, interval=0.2)
                    time.sleep(0.3)  # nothing more comes after the last attempt
                    self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])
                    for k, ep in eps.items():
                        with self.subTest(reply=k):
                            log = [f for _, f in u.log_entries(rs, ep)]
                            msg = '%s: delivery log %r; %d connections' % (
                                k, [(f['attempt'], f['outcome'], f['status'], f['error'])
                                    for f in log], servers[k].connections)
                            self.assertTrue(log, msg)
                            first = log[0]
                            self.assertEqual((first['attempt'], first['outcome'], first['status']),
                                             ('1', 'retry', '0'), msg)
                            self.assertTrue(first['error'], msg)
                            self.assertTrue(first['next_try'], msg)
                            self.assertGreaterEqual(len(servers[k].requests()), 2, msg)
                            self.assertEqual(
                                [(f['attempt'], f['outcome']) for f in log],
                                [(str(a), 'retry') for a in range(1, ATTEMPTS)]
                                + [(str(ATTEMPTS), 'dead')], msg)
                            self.assertEqual({f['event_id'] for f in log}, {ids[k]}, msg)
                            self.assertEqual(len(servers[k].requests()), ATTEMPTS, msg)
                            dead = [f for _, f in u.entries(rs, u.DEAD)
                                    if f.get('endpoint') == ep]
                            self.assertEqual([(f['kind'], f['attempt'], f['event_id'])
                                              for f in dead],
                                             [('job', str(ATTEMPTS), ids[k])], msg)
                            self.assertEqual(
                                rs.call('HGET', m.ep_keys(ep)['endpoint'], 'enabled'), 'true')
                    self.assertEqual(m.pending(rs), (0, 0))
                    self.assertEqual(rs.call('ZCARD', u.DELAY), 0)
        finally:
            for s in servers.values():
                s.__exit__(None, None, None)


if __name__ == '__main__':
    h.main()
