"""Secrets never leak: they never appear in logs or in the delivery log.

Redis runs with --requirepass; endpoints have signing secrets (one mid-rotation, one with
the GitHub-style signature). The worker runs at debug level through successes, failures,
retries, dead letters, a malformed event and a Redis restart (so reconnect errors are
logged too). Then the endpoint secrets (whole and their base64 part) and the Redis
password are searched for in: the worker's log; every Redis key except the endpoint hashes
(which must hold the secrets); the CLI's views of the delivery log, dead letters and
endpoints; and everything receivers were sent (only signatures may go over the wire).
"""
import base64
import os
import time

import harness as h
from test_security_ssrf import add_endpoint, dead_for, log_of, publish

P = 'hookq'
EVENTS = P + ':{q}:events'


def dump_redis(rs):
    """Every key and value as text, except the endpoint hashes. Returns (text, keys)."""
    parts, keys, cursor = [], [], '0'
    while True:
        cursor, batch = rs.call('SCAN', cursor, 'COUNT', 1000)
        keys += batch
        if cursor == '0':
            break
    for k in keys:
        if k.endswith(':endpoint'):
            continue
        t = rs.call('TYPE', k)
        if t == 'string':
            v = [rs.call('GET', k, raw=True)]
        elif t == 'hash':
            v = rs.call('HGETALL', k, raw=True)
        elif t == 'set':
            v = rs.call('SMEMBERS', k, raw=True)
        elif t == 'zset':
            v = rs.call('ZRANGE', k, 0, -1, raw=True)
        elif t == 'list':
            v = rs.call('LRANGE', k, 0, -1, raw=True)
        elif t == 'stream':
            v = []
            for eid, fields in rs.call('XRANGE', k, '-', '+', raw=True):
                v += [eid] + fields
        else:
            v = []
        parts.append(k.encode() + b' ' + b' '.join(x or b'' for x in v))
    return b'\n'.join(parts).decode('utf-8', 'replace'), keys


class SecretsTest(h.TestCase):

    def test_secrets_and_redis_password_never_appear(self):
        password = 'rpw' + os.urandom(12).hex()
        with h.RedisServer(password=password, appendonly=True) as rs, \
                h.Receiver(lambda req, nth: (500, {}, b'nope') if req.path == '/fail' else None) as rcv:
            old = 'whsec_' + base64.b64encode(os.urandom(32)).decode()
            until = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(time.time() + 3600))
            ok_ep, ok_secret = add_endpoint(rs, rcv.url('/ok'), secret_old=old,
                                            secret_old_until=until, github_signature='true')
            fail_ep, fail_secret = add_endpoint(rs, rcv.url('/fail'))
            gone_port = h.free_port()  # nothing listens there: connection errors
            down_ep, down_secret = add_endpoint(rs, 'http://127.0.0.1:%d/x' % gone_port)
            secrets = [ok_secret, old, fail_secret, down_secret]
            needles = [password] + secrets + [s[len('whsec_'):] for s in secrets]

            env = {'HOOKQ_LOG_LEVEL': 'debug', 'HOOKQ_RETRY_SCHEDULE': '200ms',
                   'HOOKQ_RETRY_JITTER': '0', 'HOOKQ_REDIS_RECONNECT_MAX': '1s'}
            with h.Worker(rs, env=env) as w:
                ok_ids = publish(rs, ok_ep, n=3, etype='secret.probe')
                publish(rs, fail_ep, n=2, etype='secret.probe')
                publish(rs, down_ep, n=2, etype='secret.probe')
                rs.call('XADD', EVENTS, '*', 'type', 'secret.probe', 'data', '{broken')
                self.assertTrue(rcv.wait_for(3, 20, path='/ok'), w.log()[-3000:])
                self.assertEventually(lambda: len(dead_for(rs, fail_ep)) == 2
                                      and len(dead_for(rs, down_ep)) == 2, 30, w.log()[-3000:])

                # A Redis restart: the worker logs connection errors and reconnects.
                rs.restart()
                more = publish(rs, ok_ep, n=2, etype='secret.probe')
                self.assertTrue(rcv.wait_for(5, 30, path='/ok'), w.log()[-3000:])
                self.assertTrue(w.alive(), w.log()[-3000:])
                self.assertEqual(w.stop(), 0)
                wlog = w.log()

            # The runs above did happen: the logs being searched are not empty.
            self.assertGreaterEqual(len(log_of(rs, ok_ep)), 5)
            self.assertGreaterEqual(len(log_of(rs, fail_ep)), 4)
            got = {r.headers.get('webhook-id') for r in rcv.for_path('/ok')}
            self.assertEqual(got, set(ok_ids + more))
            for r in rcv.for_path('/ok'):
                # Both secrets signed during the rotation; the check proves they were used.
                self.assertTrue(h.sw_verify(ok_secret, r.headers, r.body))
                self.assertTrue(h.sw_verify(old, r.headers, r.body))
            self.assertIn('debug', wlog.lower())

            places = {'worker log': wlog}
            places['redis'], keys = dump_redis(rs)
            self.assertTrue(any(k.endswith(':dead') for k in keys))
            for args in (['deliveries', ok_ep], ['deliveries', fail_ep], ['deliveries', down_ep],
                         ['dead', 'list'], ['endpoint', 'list'], ['stats']):
                for fmt in ([], ['--json']):
                    res = h.hookq(rs, *(fmt + args))
                    self.assertEqual(res.returncode, 0, res)
                    places['hookq ' + ' '.join(fmt + args)] = res.stdout + res.stderr
            sent = []
            for r in rcv.requests:
                sent.append(r.path + ' ' + repr(sorted(r.headers.items())) + ' ' +
                            r.body.decode('utf-8', 'replace'))
            places['requests sent to receivers'] = '\n'.join(sent)

            for where, text in places.items():
                for needle in needles:
                    with self.subTest(where=where, needle=needle[:10] + '...'):
                        self.assertNotIn(needle, text)


if __name__ == '__main__':
    h.main()
