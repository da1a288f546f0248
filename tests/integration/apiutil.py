"""hookq-api under test: the real binary on a free loopback port, against a real Redis.

    import harness as h, apiutil as au
    with h.RedisServer() as rs, au.ApiServer(rs) as api:
        st, hdrs, body = api.call('POST', '/v1/endpoints', {'url': ..., 'events': ['*']})

ADMIN and TENANT_KEYS are the keys every ApiServer is started with (extra env may
override). call() returns (status, headers as a dict with lower-case names, body: the
parsed JSON when the answer is JSON, else the text).
"""
import http.client
import json
import os
import subprocess
import tempfile
import time

import harness as h

ADMIN = 'test-admin-key-0123456789'
ACME = 'test-acme-key-0123456789'
GLOBEX = 'test-globex-key-0123456789'
TENANT_KEYS = 'acme:%s,globex:%s' % (ACME, GLOBEX)


class ApiServer:
    def __init__(self, rs, env=None):
        self.rs = rs
        e = {'HOOKQ_API_LISTEN': '127.0.0.1:0', 'HOOKQ_API_ADMIN_KEYS': ADMIN,
             'HOOKQ_API_TENANT_KEYS': TENANT_KEYS, 'HOOKQ_LOG_LEVEL': 'debug',
             'HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS': 'true'}
        e.update(env or {})
        self.env = h._env(rs, e)
        self.logf = tempfile.NamedTemporaryFile(prefix='hookq-api-', suffix='.log', delete=False)
        self.proc = None
        self.port = None

    def start(self, timeout=10):
        self.proc = subprocess.Popen(h._vg_wrap([os.path.join(h.BIN, 'hookq-api')]),
                                     env=self.env, stdout=subprocess.PIPE, stderr=self.logf,
                                     text=True, cwd=tempfile.gettempdir())
        deadline = time.time() + timeout * h.SLOW
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError('hookq-api exited %s: %s' % (self.proc.returncode,
                                                                   self.log()))
                continue
            if 'listening on port' in line:
                self.port = int(line.split()[-1])
                return self
        raise RuntimeError('hookq-api did not start: ' + self.log())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        if not self.alive():
            self._vg_check()
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout * h.SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self._vg_check()
        return rc

    def _vg_check(self):
        if self.proc is not None and not getattr(self, '_vg_checked', False):
            self._vg_checked = True
            h._vg_check(self.proc.pid, 'hookq-api')

    def log(self):
        with open(self.logf.name, 'r', errors='replace') as f:
            return f.read()

    def url(self, path=''):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def call(self, method, path, body=None, key=ADMIN, headers=None, raw=None, timeout=10):
        """One request on a fresh connection. body: JSON-encoded (unless raw bytes/str
        is given instead); key: Bearer key, None for none."""
        hdrs = dict(headers or {})
        if key is not None:
            hdrs['Authorization'] = 'Bearer ' + key
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault('Content-Type', 'application/json')
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout * h.SLOW)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read()
            rh = {k.lower(): v for k, v in resp.getheaders()}
            ctype = rh.get('content-type', '')
            out = text.decode('utf-8', 'replace')
            if 'json' in ctype and text:
                out = json.loads(text)
            return resp.status, rh, out
        finally:
            conn.close()

    def curl(self, method, path, body=None, key=ADMIN, headers=None, raw=None, timeout=10):
        """call() through the real curl binary (what the docs show users): same arguments
        and return shape."""
        argv = ['curl', '-sS', '-i', '--max-time', str(timeout * h.SLOW), '-X', method]
        hdrs = dict(headers or {})
        if key is not None:
            hdrs['Authorization'] = 'Bearer ' + key
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault('Content-Type', 'application/json')
        for k, v in hdrs.items():
            argv += ['-H', '%s: %s' % (k, v)]
        if data is not None:
            argv += ['--data-binary', '@-']
        argv.append(self.url(path))
        p = subprocess.run(argv, input=data, capture_output=True, timeout=timeout * h.SLOW + 5)
        if p.returncode != 0:
            raise AssertionError('curl %s %s failed: %s' % (method, path, p.stderr.decode()))
        out = p.stdout
        # Skip interim answers (100 Continue) to the final head.
        while True:
            head, _, rest = out.partition(b'\r\n\r\n')
            if head.startswith(b'HTTP/1.1 100') and rest:
                out = rest
                continue
            break
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        rh = {}
        for line in lines[1:]:
            k, _, v = line.partition(':')
            rh[k.strip().lower()] = v.strip()
        text = rest
        if 'json' in rh.get('content-type', '') and text:
            return status, rh, json.loads(text)
        return status, rh, text.decode('utf-8', 'replace')

    def ok(self, method, path, body=None, want=(200, 201, 202, 204), **kw):
        """call() that fails loudly unless the status is in want; returns the body."""
        st, hd, out = self.call(method, path, body, **kw)
        if st not in want:
            raise AssertionError('%s %s -> %d %r' % (method, path, st, out))
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.alive():
            if exc[0] is None:
                self.stop()
            else:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.logf.close()
        try:
            os.unlink(self.logf.name)
        except OSError:
            pass


def problem_ok(tc, st, hd, body, status, code):
    """Assert an RFC 7807 answer with this status and code."""
    tc.assertEqual(st, status, body)
    tc.assertTrue(hd.get('content-type', '').startswith('application/problem+json'), hd)
    tc.assertEqual(body['status'], status)
    tc.assertEqual(body['code'], code, body)
    tc.assertEqual(body['type'], 'urn:hookq:problem:' + code)
    tc.assertTrue(body.get('title') and body.get('detail'), body)
