"""Every delivery verifies with the Standard Webhooks reference library.

Real deliveries (a plain `redis-cli XADD`-style event with only type and data, events
from `hookq send`, and events sent during a secret rotation, which carry two
signatures) are checked by tests/tools/sw-verify.mjs, which calls the `standardwebhooks`
npm package's Webhook.verify: an implementation independent of hookq's C code. A
tampered body is the control that proves the verifier can say no.
"""
import base64
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402

TOOLS = os.path.join(h.SRC, 'tests', 'tools')


def reference_verify(items):
    """items: list of (secret, headers, body bytes) -> list of 'ok' / 'bad: ...'."""
    node = shutil.which('node')
    if not node:
        raise AssertionError('node is not installed: tests/run.sh installs it')
    if not os.path.isdir(os.path.join(TOOLS, 'node_modules', 'standardwebhooks')):
        raise AssertionError('standardwebhooks is not installed in tests/tools: run '
                             '`npm install` there (tests/run.sh does)')
    lines = ''.join(json.dumps({'secret': s, 'headers': hd,
                                'body_b64': base64.b64encode(b).decode()}) + '\n'
                    for s, hd, b in items)
    r = subprocess.run([node, os.path.join(TOOLS, 'sw-verify.mjs')], input=lines,
                       capture_output=True, text=True, timeout=60, cwd=TOOLS)
    if r.returncode != 0:
        raise AssertionError('sw-verify failed: %s' % r.stderr)
    return r.stdout.splitlines()


class ReferenceVerify(h.TestCase):

    def test_reference_library_accepts_every_delivery(self):
        with h.RedisServer() as rs, h.Receiver() as rcv, h.Worker(rs, env=u.env()) as w:
            ep, old = u.add_endpoint(rs, rcv.url('/hook'), '--events', 'task:*')
            # the raw producer contract: type and data only, as in the README
            rs.call('XADD', u.EVENTS, '*', 'type', 'task:raw', 'data', '{"task":42}')
            u.send(rs, 'task:one', '{"n":1,"s":"\\u00e9t\\u00e9 \u00fcnic\u00f6de"}')
            self.assertTrue(rcv.wait_for(2, 15), w.log())

            r = h.hookq(rs, '--json', 'endpoint', 'rotate-secret', ep)
            self.assertEqual(r.returncode, 0, r.stderr)
            new = json.loads(r.stdout)['secret']
            self.assertNotEqual(new, old)
            for i in range(3):
                u.send(rs, 'task:rotated', '{"i":%d}' % i)
            self.assertTrue(rcv.wait_for(5, 15), w.log())

            reqs = rcv.for_path('/hook')
            self.assertEqual(len(reqs), 5)
            raw = [q for q in reqs if json.loads(q.body)['type'] == 'task:raw']
            self.assertEqual(len(raw), 1)
            self.assertEqual(json.loads(raw[0].body)['data'], {'task': 42})
            rotated = [q for q in reqs if json.loads(q.body)['type'] == 'task:rotated']
            self.assertEqual(len(rotated), 3)

            items = []
            for q in reqs:
                items.append((new if q in rotated else old, q.headers, q.body))
            for q in rotated:
                # two signatures during the rotation: each secret verifies on its own
                self.assertEqual(len(q.headers['webhook-signature'].split()), 2)
                items.append((old, q.headers, q.body))
            tampered = reqs[0].body.replace(b'"data":', b'"data": ')
            items.append((old, reqs[0].headers, tampered))
            items.append((new, reqs[0].headers, reqs[0].body))  # pre-rotation: new key never signed it

            verdicts = reference_verify(items)
            self.assertEqual(len(verdicts), len(items))
            self.assertEqual(verdicts[:-2], ['ok'] * (len(items) - 2), verdicts)
            self.assertTrue(verdicts[-2].startswith('bad'), verdicts[-2])
            self.assertTrue(verdicts[-1].startswith('bad'), verdicts[-1])


if __name__ == '__main__':
    h.main()
