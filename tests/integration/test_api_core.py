"""hookq-api core: health, auth, routing errors, body limits, Redis outage -> 503."""
import socket
import time

import apiutil as au
import harness as h


class ApiCore(h.TestCase):
    def test_health_and_auth(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            st, hd, body = api.call('GET', '/v1/health', key=None)
            self.assertEqual(st, 200)
            self.assertEqual(body['status'], 'ok')
            st, hd, body = api.call('GET', '/v1/endpoints', key=None)
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')
            self.assertIn('Bearer', hd['www-authenticate'])
            st, hd, body = api.call('GET', '/v1/endpoints', key='wrong-key-0123456789')
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')
            # the key must never reach the log
            self.assertNotIn('wrong-key-0123456789', api.log())
            self.assertNotIn(au.ADMIN, api.log())

    def test_curl_client(self):
        # The same answers through curl, the client the docs use.
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            st, hd, body = api.curl('GET', '/v1/health', key=None)
            self.assertEqual((st, body['status']), (200, 'ok'))
            st, hd, body = api.curl('DELETE', '/v1/events')
            au.problem_ok(self, st, hd, body, 405, 'method_not_allowed')
            st, hd, body = api.curl('GET', '/v1/endpoints', key='nope-nope-nope-nope')
            au.problem_ok(self, st, hd, body, 401, 'unauthorized')

    def test_routing_errors(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            st, hd, body = api.call('GET', '/v1/nothing-here')
            au.problem_ok(self, st, hd, body, 404, 'not_found')
            st, hd, body = api.call('PUT', '/v1/endpoints')
            au.problem_ok(self, st, hd, body, 405, 'method_not_allowed')
            self.assertEqual(hd['allow'], 'GET, POST')
            st, hd, body = api.call('GET', '/v1/endpoints/')
            au.problem_ok(self, st, hd, body, 404, 'not_found')

    def test_body_cap(self):
        with h.RedisServer() as rs, au.ApiServer(rs, env={'HOOKQ_API_MAX_BODY': '4KiB'}) as api:
            st, hd, body = api.call('POST', '/v1/events', raw='x' * 5000,
                                    headers={'Content-Type': 'application/json'})
            au.problem_ok(self, st, hd, body, 413, 'body_too_large')
            # chunked, no Content-Length: caught as it grows
            s = socket.create_connection(('127.0.0.1', api.port))
            s.sendall(b'POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
                      au.ADMIN.encode() + b'\r\nTransfer-Encoding: chunked\r\n'
                      b'Content-Type: application/json\r\n\r\n')
            for _ in range(10):
                s.sendall(b'400\r\n' + b'y' * 1024 + b'\r\n')
            s.sendall(b'0\r\n\r\n')
            s.settimeout(10)
            resp = b''
            while b'\r\n\r\n' not in resp:
                chunk = s.recv(4096)
                if not chunk:
                    break
                resp += chunk
            s.close()
            self.assertTrue(resp.startswith(b'HTTP/1.1 413'), resp[:200])

    def test_redis_outage_503_and_recovery(self):
        with h.RedisServer() as rs:
            with au.ApiServer(rs) as api:
                self.assertEqual(api.call('GET', '/v1/health', key=None)[0], 200)
                rs.stop()
                t0 = time.time()
                st, hd, body = api.call('GET', '/v1/health', key=None)
                au.problem_ok(self, st, hd, body, 503, 'redis_unavailable')
                self.assertIn('retry-after', hd)
                self.assertLess(time.time() - t0, 5 * h.SLOW)
                rs.start()
                h.wait_until(lambda: api.call('GET', '/v1/health', key=None)[0] == 200,
                             timeout=10 * h.SLOW)


if __name__ == '__main__':
    h.main()
