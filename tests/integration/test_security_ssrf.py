"""SSRF defence, end to end through hookq-worker.

With security.allow_private_networks off, every spelling of a loopback address must be
refused at connect time: a canary TCP listener counting accepted connections sees none,
and each delivery fails at once, without retry, with a reason in the delivery log and
the dead-letter stream. Redirects are never followed (a 3xx from an allowed host to the
canary makes no canary connection) and proxy variables from the environment are ignored.
A control run with private networks allowed proves every spelling does reach the canary,
so the zero counts above are the filter's doing and not a dead URL.

Endpoints are written straight into Redis as docs/keys.md describes them, so these tests
depend only on the worker and the documented key schema.
"""
import base64
import http.server
import os
import re
import socket
import threading
import time

import harness as h

P = 'hookq'
EVENTS = P + ':{q}:events'
DEAD = P + ':{q}:dead'
DELAY = P + ':{q}:delay'

# What a refusal must say: the filter names the address class ("loopback address
# 127.0.0.1") or says it was blocked. curl's own "Couldn't connect" text is not enough:
# an operator must see that hookq refused, not that the receiver was down.
BLOCK_RE = re.compile(r'loopback|block|not allowed|forbidden|ssrf|denied|private|'
                      r'refused (address|connection to)|address .*refused', re.I)

CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'


def new_ep_id():
    return 'ep_' + ''.join(CROCKFORD[b % 32] for b in os.urandom(26))


def iso_now():
    t = time.time()
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)) + '.%03dZ' % (int(t * 1000) % 1000)


def add_endpoint(rs, url, events='*', **extra):
    """Register an endpoint the way docs/keys.md lays it out; returns (id, secret)."""
    eid = new_ep_id()
    secret = 'whsec_' + base64.b64encode(os.urandom(32)).decode()
    now = iso_now()
    fields = {'url': url, 'events': events, 'secret': secret, 'enabled': 'true',
              'github_signature': 'false', 'headers': '[]', 'created_at': now,
              'updated_at': now}
    fields.update(extra)
    flat = [x for kv in fields.items() for x in kv]
    rs.call('HSET', '%s:{%s}:endpoint' % (P, eid), *flat)
    rs.call('SADD', P + ':endpoints', eid)
    rs.call('INCR', P + ':{q}:endpoints:version')
    return eid, secret


def publish(rs, eid, n=1, etype='ssrf.probe'):
    """n events targeted at endpoint eid; returns their event ids."""
    ids = []
    for _ in range(n):
        evid = 'evt_' + os.urandom(8).hex()
        rs.call('XADD', EVENTS, '*', 'id', evid, 'type', etype, 'data', '{"probe":true}',
                'endpoint', eid)
        ids.append(evid)
    return ids


def log_of(rs, eid):
    return [f for _, f in h.xrange_dicts(rs, '%s:{%s}:log' % (P, eid))]


def dead_for(rs, eid):
    return [f for _, f in h.xrange_dicts(rs, DEAD) if f.get('endpoint') == eid]


class Canary:
    """Plain TCP listeners on 127.0.0.1:port and [::1]:port (same port) counting accepted
    connections. Whatever connects gets a 204 back, so a leak would also show up as a
    successful delivery."""

    def __init__(self, v6=True):
        self.accepts = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.socks = []
        for _ in range(50):
            s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s4.bind(('127.0.0.1', 0))
            port = s4.getsockname()[1]
            socks = [s4]
            if v6:
                s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    s6.bind(('::1', port))
                except OSError:
                    s4.close()
                    s6.close()
                    continue
                socks.append(s6)
            self.socks = socks
            self.port = port
            break
        if not self.socks:
            raise RuntimeError('no port free on both 127.0.0.1 and ::1')
        for s in self.socks:
            s.listen(64)
            s.settimeout(0.2)
        self.threads = [threading.Thread(target=self._loop, args=(s,), daemon=True)
                        for s in self.socks]

    def _loop(self, s):
        while not self.stopped.is_set():
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepts += 1
            threading.Thread(target=self._answer, args=(c,), daemon=True).start()

    @staticmethod
    def _answer(c):
        c.settimeout(3)
        buf = b''
        try:
            while b'\r\n\r\n' not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, body = buf.split(b'\r\n\r\n', 1)
            m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
            need = int(m.group(1)) if m else 0
            while len(body) < need:
                chunk = c.recv(65536)
                if not chunk:
                    break
                body += chunk
            c.sendall(b'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n')
        except OSError:
            pass
        finally:
            c.close()

    def count(self):
        with self.lock:
            return self.accepts

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        for t in self.threads:
            t.join(2)
        for s in self.socks:
            s.close()


def spellings(port):
    """Every way of writing "this machine" the issue lists (and a couple more)."""
    return {
        'dotted': 'http://127.0.0.1:%d/h' % port,
        'short': 'http://127.1:%d/h' % port,
        'decimal': 'http://2130706433:%d/h' % port,
        'hex-dotted': 'http://0x7f.1:%d/h' % port,
        'hex': 'http://0x7f000001:%d/h' % port,
        'octal': 'http://0177.0.0.1:%d/h' % port,
        'v4-mapped': 'http://[::ffff:127.0.0.1]:%d/h' % port,
        'v6-loopback': 'http://[::1]:%d/h' % port,
        'localhost': 'http://localhost:%d/h' % port,
        'localhost-upper': 'http://LOCALHOST:%d/h' % port,
    }


class AllowedReceiver:
    """An HTTP server on 127.0.0.2 (loopback, but a different address than the canary)
    whose answers are given per path: {path: (status, headers)}."""

    def __init__(self, routes):
        self.hits = {}
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get('content-length') or 0)
                if n:
                    self.rfile.read(n)
                with outer.lock:
                    outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                status, headers = routes.get(self.path, (404, {}))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header('Content-Length', '0')
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(('127.0.0.2', 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path):
        return 'http://127.0.0.2:%d%s' % (self.port, path)

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# Short retries with no jitter: if a refusal were (wrongly) retried, the extra attempts
# would land inside the tests' observation window.
FAST_RETRY = {'HOOKQ_RETRY_SCHEDULE': '1s 1s', 'HOOKQ_RETRY_JITTER': '0',
              'HOOKQ_DELIVERY_TIMEOUT': '5s', 'HOOKQ_DELIVERY_VISIBILITY_TIMEOUT': '15s'}


class SsrfTest(h.TestCase):

    def test_every_loopback_spelling_is_refused_without_connecting(self):
        with h.RedisServer() as rs, Canary() as canary:
            eps = {}
            for name, url in spellings(canary.port).items():
                eps[name] = add_endpoint(rs, url)[0]
            env = dict(FAST_RETRY, HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS='false')
            with h.Worker(rs, env=env) as w:
                for eid in eps.values():
                    publish(rs, eid)
                self.assertEventually(
                    lambda: all(dead_for(rs, e) for e in eps.values()) or not w.alive(), 30,
                    'not every refused delivery reached the dead-letter stream')
                # Long enough for a wrong retry (schedule 1s 1s) to have happened.
                time.sleep(3)
                self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])
                self.assertEqual(canary.count(), 0,
                                 'the canary was reached despite allow_private_networks=false')
                for name, eid in eps.items():
                    with self.subTest(spelling=name, url=spellings(canary.port)[name]):
                        log = log_of(rs, eid)
                        self.assertEqual(len(log), 1, 'expected exactly one attempt: %r' % log)
                        self.assertEqual(log[0].get('outcome'), 'dead', log[0])
                        self.assertEqual(log[0].get('attempt'), '1', log[0])
                        self.assertEqual(log[0].get('status'), '0', log[0])
                        self.assertRegex(log[0].get('error', ''), BLOCK_RE)
                        self.assertEqual(log[0].get('next_try', ''), '', log[0])
                        dead = dead_for(rs, eid)
                        self.assertEqual(len(dead), 1, dead)
                        self.assertEqual(dead[0].get('kind'), 'job', dead[0])
                        self.assertEqual(dead[0].get('attempt'), '1', dead[0])
                        self.assertRegex(dead[0].get('error', ''), BLOCK_RE)
                        members = rs.call('ZRANGE', DELAY, 0, -1)
                        self.assertFalse([m for m in members if eid in m],
                                         'a refused delivery was scheduled for retry')

    def test_same_urls_deliver_when_private_networks_allowed(self):
        # Control: every spelling above is a working URL to the canary.
        with h.RedisServer() as rs, Canary() as canary:
            eps = {name: add_endpoint(rs, url)[0]
                   for name, url in spellings(canary.port).items()}
            env = dict(FAST_RETRY, HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS='true')
            with h.Worker(rs, env=env) as w:
                for eid in eps.values():
                    publish(rs, eid)

                def all_delivered():
                    return all(any(f.get('outcome') == 'delivered' for f in log_of(rs, e))
                               for e in eps.values())
                self.assertEventually(lambda: all_delivered() or not w.alive(), 30)
                self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])
                for name, eid in eps.items():
                    with self.subTest(spelling=name):
                        self.assertTrue(any(f.get('outcome') == 'delivered'
                                            for f in log_of(rs, eid)), log_of(rs, eid))
                self.assertGreaterEqual(canary.count(), len(eps))

    def test_redirect_from_allowed_host_is_not_followed(self):
        with h.RedisServer() as rs, Canary() as canary:
            target = 'http://127.0.0.1:%d/h' % canary.port
            routes = {'/r301': (301, {'Location': target}),
                      '/r302': (302, {'Location': target}),
                      '/r303': (303, {'Location': target}),
                      '/r307': (307, {'Location': target}),
                      '/r308': (308, {'Location': 'http://[::1]:%d/h' % canary.port}),
                      '/ok': (204, {})}
            with AllowedReceiver(routes) as allowed:
                eps = {path: add_endpoint(rs, allowed.url(path))[0] for path in routes}
                env = dict(FAST_RETRY, HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS='false',
                           HOOKQ_SECURITY_ALLOW_CIDRS='127.0.0.2/32')
                with h.Worker(rs, env=env) as w:
                    for eid in eps.values():
                        publish(rs, eid)
                    redirects = [p for p in routes if p != '/ok']
                    # 3 attempts each (schedule "1s 1s"), then dead.
                    self.assertEventually(
                        lambda: all(dead_for(rs, eps[p]) for p in redirects) or not w.alive(),
                        40, 'redirected deliveries did not end in the dead-letter stream')
                    self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])
                    self.assertEqual(canary.count(), 0, 'a redirect was followed to the canary')
                    # The allowed host itself was reached: allow_cidrs works.
                    self.assertTrue(any(f.get('outcome') == 'delivered'
                                        for f in log_of(rs, eps['/ok'])), log_of(rs, eps['/ok']))
                    for p in redirects:
                        with self.subTest(path=p):
                            self.assertEqual(allowed.count(p), 3)
                            log = log_of(rs, eps[p])
                            self.assertEqual([f.get('attempt') for f in log], ['1', '2', '3'])
                            self.assertEqual([f.get('outcome') for f in log],
                                             ['retry', 'retry', 'dead'])
                            self.assertTrue(all(f.get('status') == p[2:] for f in log), log)
                            dead = dead_for(rs, eps[p])
                            self.assertEqual(len(dead), 1)
                            self.assertEqual(dead[0].get('status'), p[2:])

    def test_proxy_variables_from_the_environment_are_ignored(self):
        with h.RedisServer() as rs, Canary(v6=False) as proxy, h.Receiver() as rcv:
            proxy_url = 'http://127.0.0.1:%d' % proxy.port
            env = {'HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS': 'true',
                   'http_proxy': proxy_url, 'HTTP_PROXY': proxy_url,
                   'https_proxy': proxy_url, 'HTTPS_PROXY': proxy_url,
                   'all_proxy': proxy_url, 'ALL_PROXY': proxy_url,
                   'no_proxy': '', 'NO_PROXY': ''}
            eid, secret = add_endpoint(rs, rcv.url('/direct'))
            with h.Worker(rs, env=env) as w:
                ids = publish(rs, eid, n=5)
                self.assertTrue(rcv.wait_for(5, 20, path='/direct'),
                                'deliveries did not arrive directly:\n' + w.log()[-3000:])
                time.sleep(0.5)
                self.assertEqual(proxy.count(), 0, 'the worker used a proxy from the environment')
                got = sorted(r.headers.get('webhook-id') for r in rcv.for_path('/direct'))
                self.assertEqual(got, sorted(ids))
                for r in rcv.for_path('/direct'):
                    self.assertTrue(h.sw_verify(secret, r.headers, r.body))


if __name__ == '__main__':
    h.main()
