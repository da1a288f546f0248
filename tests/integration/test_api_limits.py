"""hookq-api under slow and hostile clients: slowloris, per-address and total connection
caps, idle timeout, oversized headers. Everything on loopback; bounded in time."""
import socket
import time

import apiutil as au
import harness as h


def partial(port, src='127.0.0.1'):
    """A connection that sends half a request line and then nothing."""
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(('127.0.0.1', port))
    s.sendall(b'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ')
    return s


def health(port, src='127.0.0.1', timeout=5):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(timeout)
    try:
        s.connect(('127.0.0.1', port))
        s.sendall(b'GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = b''
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data
    except OSError:
        return b''
    finally:
        s.close()


def closed_by_peer(s, wait):
    s.settimeout(wait)
    try:
        return s.recv(1) == b''
    except socket.timeout:
        return False
    except OSError:
        return True


class ApiLimits(h.TestCase):
    def test_slowloris_cannot_hold_the_server(self):
        env = {'HOOKQ_API_MAX_CONNECTIONS_PER_IP': '20', 'HOOKQ_API_IDLE_TIMEOUT': '2s'}
        with h.RedisServer() as rs, au.ApiServer(rs, env=env) as api:
            held = [partial(api.port) for _ in range(30)]
            try:
                time.sleep(0.3)
                # Past the per-address cap, the attacker's own address is refused...
                self.assertNotIn(b'200 OK', health(api.port, timeout=2))
                # ...while another address is served at once.
                self.assertIn(b'"status":"ok"', health(api.port, src='127.0.0.2'))
                # Silence closes the half-sent requests: then the address is served again.
                deadline = time.time() + 8 * h.SLOW
                open_ones = list(held)
                while open_ones and time.time() < deadline:
                    open_ones = [s for s in open_ones if not closed_by_peer(s, 0.2)]
                self.assertEqual(open_ones, [], 'idle timeout did not close partial requests')
                self.assertIn(b'"status":"ok"', health(api.port))
            finally:
                for s in held:
                    s.close()

    def test_total_connection_cap(self):
        env = {'HOOKQ_API_MAX_CONNECTIONS': '16', 'HOOKQ_API_MAX_CONNECTIONS_PER_IP': '0',
               'HOOKQ_API_IDLE_TIMEOUT': '3s'}
        with h.RedisServer() as rs, au.ApiServer(rs, env=env) as api:
            held = [partial(api.port, src='127.0.0.%d' % (2 + i % 8)) for i in range(16)]
            try:
                time.sleep(0.3)
                self.assertNotIn(b'200 OK', health(api.port, src='127.0.0.20', timeout=2))
            finally:
                for s in held:
                    s.close()
            h.wait_until(lambda: b'200 OK' in health(api.port, src='127.0.0.20'), 5 * h.SLOW)
            self.assertIn(b'200 OK', health(api.port, src='127.0.0.20'))

    def test_oversized_headers_431(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            s = socket.create_connection(('127.0.0.1', api.port), timeout=5)
            try:
                s.sendall(b'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * 70000 +
                          b'\r\n\r\n')
            except OSError:
                pass  # the server may close before reading it all
            data = b''
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            s.close()
            self.assertTrue(data.startswith(b'HTTP/1.1 431'), data[:100])
            # and the server is fine afterwards
            self.assertIn(b'200 OK', health(api.port))

    def test_many_headers_and_long_url_answer_cleanly(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            st, hd, body = api.call('GET', '/v1/endpoints/' + 'x' * 3000)
            self.assertIn(st, (404, 414, 431))
            st, hd, body = api.call('GET', '/v1/health', key=None,
                                    headers={'X-H%d' % i: 'v' for i in range(200)})
            self.assertEqual(st, 200)


if __name__ == '__main__':
    h.main()
