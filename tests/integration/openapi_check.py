"""docs/openapi.yaml, read and checked: a JSON Schema validator for the subset the
fragments use, a lint of the document's shape, and helpers to walk its operations.

Used by test_api_openapi.py; no network, no pip (PyPI is not reachable from the build
hosts, so there is no jsonschema package: this is the few hundred lines it would be).

    doc = load_spec(path)
    v = Validator(doc)
    v.errors({'status': 'ok'}, {'$ref': '#/components/schemas/Health'})  # [] when valid
    lint(doc)                                                             # [] when clean

The validator knows exactly the keywords in KEYWORDS (and ignores ANNOTATIONS); lint()
refuses a schema using any other, so a keyword this file does not check can never make a
schema look stricter than the test really is.
"""
import math
import re

import yaml

HTTP_METHODS = ('get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace')
TYPES = ('null', 'boolean', 'object', 'array', 'number', 'integer', 'string')
KEYWORDS = frozenset((
    '$ref', 'type', 'enum', 'const', 'properties', 'required', 'additionalProperties',
    'items', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties',
    'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength',
    'pattern', 'format', 'oneOf', 'anyOf', 'allOf', 'not'))
ANNOTATIONS = frozenset((
    'title', 'description', 'example', 'examples', 'default', 'deprecated', 'readOnly',
    'writeOnly', '$comment', 'externalDocs',
    'discriminator'))  # OpenAPI's hint for code generators; the oneOf is what is checked
# date-time as RFC 3339 says, loosely (no calendar check): what timestamp.h writes and more.
DATE_TIME = re.compile(r'^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$')
JSON_TYPES = ('application/json', 'application/problem+json')


def load_spec(path):
    with open(path, encoding='utf-8') as f:
        doc = yaml.load(f, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
    if not isinstance(doc, dict):
        raise ValueError('%s: not a mapping' % path)
    return doc


def resolve_pointer(doc, ref):
    """The value a local $ref ("#/components/schemas/X") names; KeyError if none."""
    if not isinstance(ref, str) or not ref.startswith('#/'):
        raise KeyError(ref)
    node = doc
    for part in ref[2:].split('/'):
        part = part.replace('~1', '/').replace('~0', '~')
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(ref)
    return node


def deref(doc, node, depth=0):
    """node with $ref followed (for parameters, responses, headers: not schemas, whose
    $ref may have siblings)."""
    while isinstance(node, dict) and '$ref' in node:
        if depth > 32:
            raise KeyError('a $ref cycle at %s' % node['$ref'])
        node = resolve_pointer(doc, node['$ref'])
        depth += 1
    return node


def _type_of(v):
    if v is None:
        return 'null'
    if isinstance(v, bool):
        return 'boolean'
    if isinstance(v, dict):
        return 'object'
    if isinstance(v, list):
        return 'array'
    if isinstance(v, int):
        return 'integer'
    if isinstance(v, float):
        return 'number'
    if isinstance(v, str):
        return 'string'
    return type(v).__name__


def _is_type(v, t):
    k = _type_of(v)
    if t == 'number':
        return k in ('integer', 'number')
    if t == 'integer':
        return k == 'integer' or (k == 'number' and math.isfinite(v) and float(v).is_integer())
    return k == t


def json_equal(a, b):
    """Equality as JSON means it: true is not 1, 1 is 1.0."""
    ta, tb = _type_of(a), _type_of(b)
    nums = ('integer', 'number')
    if ta in nums and tb in nums:
        return a == b
    if ta != tb:
        return False
    if ta == 'object':
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if ta == 'array':
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return a == b


def _short(v, n=80):
    s = repr(v)
    return s if len(s) <= n else s[:n] + '...'


class Validator:
    """Validate JSON values against schemas of one OpenAPI 3.1 document (its $refs)."""

    def __init__(self, doc):
        self.doc = doc

    def valid(self, inst, schema):
        return not self.errors(inst, schema)

    def errors(self, inst, schema, where='$'):
        """Every reason inst does not match schema, as 'at <path>: <why>' strings."""
        out = []
        self._check(inst, schema, where, out, 0)
        return out

    def _check(self, inst, s, where, out, depth):
        if depth > 64:
            out.append('at %s: schema nesting over 64 (a $ref cycle?)' % where)
            return
        if s is True or s == {}:
            return
        if s is False:
            out.append('at %s: no value is allowed here' % where)
            return
        if not isinstance(s, dict):
            out.append('at %s: the schema is not an object: %r' % (where, s))
            return
        if '$ref' in s:
            try:
                target = resolve_pointer(self.doc, s['$ref'])
            except KeyError:
                out.append('at %s: $ref %s resolves to nothing' % (where, s['$ref']))
                return
            self._check(inst, target, where, out, depth + 1)
        if 'type' in s:
            types = s['type'] if isinstance(s['type'], list) else [s['type']]
            if not any(_is_type(inst, t) for t in types):
                out.append('at %s: %s is %s, not %s' % (where, _short(inst), _type_of(inst),
                                                        ' or '.join(map(str, types))))
                return  # the rest would only repeat it
        if 'enum' in s and not any(json_equal(inst, e) for e in s['enum']):
            out.append('at %s: %s is not one of %s' % (where, _short(inst), _short(s['enum'])))
        if 'const' in s and not json_equal(inst, s['const']):
            out.append('at %s: %s is not %r' % (where, _short(inst), s['const']))
        k = _type_of(inst)
        if k == 'object':
            self._object(inst, s, where, out, depth)
        elif k == 'array':
            self._array(inst, s, where, out, depth)
        elif k in ('integer', 'number'):
            self._number(inst, s, where, out)
        elif k == 'string':
            self._string(inst, s, where, out)
        for sub in s.get('allOf', ()):
            self._check(inst, sub, where, out, depth + 1)
        if 'anyOf' in s:
            errs = [self.errors(inst, sub, where) for sub in s['anyOf']]
            if all(errs):
                out.append('at %s: matches none of anyOf: %s'
                           % (where, '; '.join(e[0] for e in errs)))
        if 'oneOf' in s:
            errs = [self.errors(inst, sub, where) for sub in s['oneOf']]
            n = sum(1 for e in errs if not e)
            if n == 0:
                out.append('at %s: matches none of oneOf: %s'
                           % (where, '; '.join(e[0] for e in errs)))
            elif n > 1:
                out.append('at %s: matches %d branches of oneOf (exactly one must)' % (where, n))
        if 'not' in s and not self.errors(inst, s['not'], where):
            out.append('at %s: %s matches the schema under not' % (where, _short(inst)))

    def _object(self, inst, s, where, out, depth):
        props = s.get('properties', {})
        for name in s.get('required', ()):
            if name not in inst:
                out.append('at %s: required property %r is missing' % (where, name))
        extra = s.get('additionalProperties', True)
        for name, v in inst.items():
            sub = '%s.%s' % (where, name)
            if name in props:
                self._check(v, props[name], sub, out, depth + 1)
            elif extra is False:
                out.append('at %s: property %r is not in the schema (additionalProperties '
                           'false)' % (where, name))
            elif isinstance(extra, dict):
                self._check(v, extra, sub, out, depth + 1)
        if 'minProperties' in s and len(inst) < s['minProperties']:
            out.append('at %s: fewer than %d properties' % (where, s['minProperties']))
        if 'maxProperties' in s and len(inst) > s['maxProperties']:
            out.append('at %s: more than %d properties' % (where, s['maxProperties']))

    def _array(self, inst, s, where, out, depth):
        if 'items' in s:
            for i, v in enumerate(inst):
                self._check(v, s['items'], '%s[%d]' % (where, i), out, depth + 1)
        if 'minItems' in s and len(inst) < s['minItems']:
            out.append('at %s: fewer than %d items' % (where, s['minItems']))
        if 'maxItems' in s and len(inst) > s['maxItems']:
            out.append('at %s: more than %d items' % (where, s['maxItems']))
        if s.get('uniqueItems'):
            for i in range(len(inst)):
                if any(json_equal(inst[i], inst[j]) for j in range(i)):
                    out.append('at %s[%d]: a repeated item' % (where, i))
                    break

    def _number(self, inst, s, where, out):
        if 'minimum' in s and inst < s['minimum']:
            out.append('at %s: %s is below minimum %s' % (where, inst, s['minimum']))
        if 'maximum' in s and inst > s['maximum']:
            out.append('at %s: %s is above maximum %s' % (where, inst, s['maximum']))
        if 'exclusiveMinimum' in s and inst <= s['exclusiveMinimum']:
            out.append('at %s: %s is not above %s' % (where, inst, s['exclusiveMinimum']))
        if 'exclusiveMaximum' in s and inst >= s['exclusiveMaximum']:
            out.append('at %s: %s is not below %s' % (where, inst, s['exclusiveMaximum']))

    def _string(self, inst, s, where, out):
        if 'minLength' in s and len(inst) < s['minLength']:
            out.append('at %s: %s is shorter than %d' % (where, _short(inst), s['minLength']))
        if 'maxLength' in s and len(inst) > s['maxLength']:
            out.append('at %s: %s is longer than %d' % (where, _short(inst, 40), s['maxLength']))
        if 'pattern' in s and not re.search(s['pattern'], inst):
            out.append('at %s: %s does not match %s' % (where, _short(inst), s['pattern']))
        if s.get('format') == 'date-time' and not DATE_TIME.match(inst):
            out.append('at %s: %s is not a date-time' % (where, _short(inst)))


# ---- walking the document ---------------------------------------------------------------

class Op:
    """One operation: method (upper case), path, the operation object, its path item."""

    def __init__(self, doc, method, path, op, item):
        self.doc, self.method, self.path, self.op, self.item = doc, method, path, op, item
        self.id = op.get('operationId', '%s %s' % (method, path))

    def __repr__(self):
        return '%s %s (%s)' % (self.method, self.path, self.id)

    @property
    def security(self):
        """The requirements that apply (the operation's, else the document's)."""
        return self.op['security'] if 'security' in self.op else self.doc.get('security', [])

    @property
    def secured(self):
        """Whether a key is needed: no requirement list, or only empty ones, means open."""
        return any(req for req in self.security)

    def params(self):
        """Resolved parameters, the operation's overriding the path item's (name, in)."""
        got = {}
        for p in list(self.item.get('parameters') or []) + list(self.op.get('parameters') or []):
            p = deref(self.doc, p)
            got[(p.get('name'), p.get('in'))] = p
        return list(got.values())

    def path_params(self):
        return re.findall(r'\{([^}]+)\}', self.path)

    def responses(self):
        """{status string: resolved response object}."""
        return {str(k): deref(self.doc, v) for k, v in (self.op.get('responses') or {}).items()}

    def response(self, status):
        return self.responses().get(str(status))

    @property
    def success(self):
        return self.op.get('x-hookq-success')

    def body_media(self):
        """(content type, media object) of the request body, JSON first; None if none."""
        rb = self.op.get('requestBody')
        if not rb:
            return None
        content = deref(self.doc, rb).get('content') or {}
        for ct in content:
            if ct in JSON_TYPES or ct.endswith('+json'):
                return ct, content[ct]
        for ct in content:
            return ct, content[ct]
        return None

    def body_schema(self):
        m = self.body_media()
        return m[1].get('schema') if m else None

    def strict_body(self):
        """Whether the JSON body refuses unknown fields (additionalProperties false at
        its top): then the API parses it with api_body_object + api_fields_known."""
        m = self.body_media()
        if not m or not (m[0] in JSON_TYPES or m[0].endswith('+json')):
            return False
        s = top_schema(self.doc, m[1].get('schema'))
        return isinstance(s, dict) and s.get('additionalProperties') is False

    def streams(self):
        """Whether its success answer is an endless text/event-stream."""
        r = self.response(self.success) or {}
        return 'text/event-stream' in (r.get('content') or {})


def operations(doc):
    out = []
    for path, item in (doc.get('paths') or {}).items():
        if not isinstance(item, dict):
            continue
        for m in HTTP_METHODS:
            if isinstance(item.get(m), dict):
                out.append(Op(doc, m.upper(), path, item[m], item))
    return out


def top_schema(doc, s):
    """s with leading $refs followed (an allOf is not merged)."""
    try:
        return deref(doc, s)
    except KeyError:
        return None


def _subschemas(s):
    """The schemas directly inside s, with where they are."""
    if not isinstance(s, dict):
        return
    for name, sub in (s.get('properties') or {}).items():
        yield 'properties/' + name, sub
    if isinstance(s.get('additionalProperties'), dict):
        yield 'additionalProperties', s['additionalProperties']
    if isinstance(s.get('items'), dict):
        yield 'items', s['items']
    for kw in ('allOf', 'anyOf', 'oneOf'):
        for i, sub in enumerate(s.get(kw) or []):
            yield '%s/%d' % (kw, i), sub
    if isinstance(s.get('not'), dict):
        yield 'not', s['not']


def _lint_schema(s, where, errors):
    """Keywords the validator knows, well-formed types; recursion into inline parts."""
    if isinstance(s, bool):
        return
    if not isinstance(s, dict):
        errors.append('%s: a schema must be a mapping, not %r' % (where, s))
        return
    for k in s:
        if k == 'nullable':
            errors.append('%s: nullable is OpenAPI 3.0; write type: [X, "null"]' % where)
        elif k not in KEYWORDS and k not in ANNOTATIONS and not k.startswith('x-'):
            errors.append('%s: keyword %r is not one the test validates (use only %s)'
                          % (where, k, ', '.join(sorted(KEYWORDS))))
    if 'type' in s:
        types = s['type'] if isinstance(s['type'], list) else [s['type']]
        for t in types:
            if t not in TYPES:
                errors.append('%s: type %r is not a JSON Schema type (null must be quoted: '
                              '"null")' % (where, t))
    if 'pattern' in s:
        try:
            re.compile(s['pattern'])
        except (re.error, TypeError) as e:
            errors.append('%s: pattern %r does not compile: %s' % (where, s['pattern'], e))
    if 'required' in s and 'properties' in s and s.get('additionalProperties') is False:
        for name in s['required']:
            if name not in s['properties']:
                errors.append('%s: required %r is not among properties (additionalProperties '
                              'false: nothing could ever match)' % (where, name))
    for sub_where, sub in _subschemas(s):
        _lint_schema(sub, where + '/' + sub_where, errors)


def _closed_objects(doc, s, where, errors, seen):
    """Every object schema with properties reachable from a response states
    additionalProperties (false for our objects, a schema for maps), so a field the
    server adds without documenting fails validation instead of passing silently."""
    if not isinstance(s, dict):
        return
    if '$ref' in s:
        ref = s['$ref']
        if ref in seen:
            return
        seen.add(ref)
        try:
            _closed_objects(doc, resolve_pointer(doc, ref), ref, errors, seen)
        except KeyError:
            pass
    types = s.get('type') if isinstance(s.get('type'), list) else [s.get('type')]
    if 'object' in types and 'properties' in s and 'additionalProperties' not in s:
        errors.append('%s: an object the API returns must state additionalProperties '
                      '(false, or a schema for a map)' % where)
    for sub_where, sub in _subschemas(s):
        _closed_objects(doc, sub, where + '/' + sub_where, errors, seen)


def _all_refs(v, where, out):
    if isinstance(v, dict):
        if isinstance(v.get('$ref'), str):
            out.append((where, v['$ref']))
        for k, x in v.items():
            _all_refs(x, '%s/%s' % (where, k), out)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _all_refs(x, '%s/%d' % (where, i), out)


def required_statuses(op):
    """The error statuses an operation can always produce, so must document, each with
    why: a key check, a JSON body parse, an object lookup, a list's paging, Redis."""
    need = {}
    if op.secured:
        need['401'] = 'it needs a key'
    if op.strict_body():
        need['400'] = 'its JSON body can be malformed (invalid_json)'
        need['415'] = 'its body can come with another Content-Type'
        need['422'] = 'its body refuses unknown fields (unknown_field)'
    if op.path_params():
        need['404'] = 'it has a path parameter (%s)' % ', '.join(op.path_params())
    names = {(p.get('name'), p.get('in')) for p in op.params()}
    if ('limit', 'query') in names or ('cursor', 'query') in names:
        need['400'] = 'it takes ?limit= / ?cursor= (invalid_parameter, invalid_cursor)'
    if not op.op.get('x-hookq-no-redis'):
        need['503'] = 'it uses Redis (or say x-hookq-no-redis: true)'
    return need


def lint(doc):
    """Every way the document is not one the live test can trust, as strings."""
    errors = []
    if str(doc.get('openapi', '')).split('.')[:2] != ['3', '1']:
        errors.append('openapi must be 3.1.x, not %r' % doc.get('openapi'))
    refs = []
    _all_refs(doc, '#', refs)
    for where, ref in refs:
        if not ref.startswith('#/components/'):
            errors.append('%s: $ref %s is not local to #/components/' % (where, ref))
            continue
        try:
            resolve_pointer(doc, ref)
        except KeyError:
            errors.append('%s: $ref %s resolves to nothing' % (where, ref))
    schemes = (doc.get('components') or {}).get('securitySchemes') or {}
    for name, s in ((doc.get('components') or {}).get('schemas') or {}).items():
        _lint_schema(s, '#/components/schemas/' + name, errors)
    seen_ids = {}
    for op in operations(doc):
        w = '%s %s' % (op.method, op.path)
        o = op.op
        for k in ('operationId', 'summary', 'responses'):
            if not o.get(k):
                errors.append('%s: no %s' % (w, k))
        if o.get('operationId') in seen_ids:
            errors.append('%s: operationId %s is also %s' % (w, o['operationId'],
                                                            seen_ids[o['operationId']]))
        seen_ids.setdefault(o.get('operationId'), w)
        for req in op.security:
            for name in req:
                if name not in schemes:
                    errors.append('%s: security scheme %r is not defined' % (w, name))
        try:
            params = op.params()
        except KeyError as e:
            errors.append('%s: a parameter $ref resolves to nothing: %s' % (w, e))
            params = []
        declared = set()
        for p in params:
            pw = '%s: parameter %s' % (w, p.get('name'))
            if p.get('in') not in ('path', 'query', 'header'):
                errors.append('%s: in must be path, query or header' % pw)
            if 'schema' not in p:
                errors.append('%s: no schema' % pw)
            else:
                _lint_schema(p['schema'], pw + ' schema', errors)
            if p.get('in') == 'path':
                declared.add(p.get('name'))
                if p.get('required') is not True:
                    errors.append('%s: a path parameter must be required: true' % pw)
            elif p.get('required') and 'example' not in p and \
                    'example' not in (top_schema(doc, p.get('schema')) or {}):
                errors.append('%s: a required parameter needs an example for the test' % pw)
        for name in op.path_params():
            if name not in declared:
                errors.append('%s: path parameter {%s} is not declared' % (w, name))
        for name in declared - set(op.path_params()):
            errors.append('%s: path parameter %s is not in the path' % (w, name))
        rb = o.get('requestBody')
        if rb is not None:
            rb = deref(doc, rb)
            media = op.body_media()
            if not media:
                errors.append('%s: requestBody has no content' % w)
            else:
                ct, m = media
                if 'schema' not in m:
                    errors.append('%s: requestBody %s has no schema' % (w, ct))
                else:
                    _lint_schema(m['schema'], '%s: requestBody schema' % w, errors)
                    top = top_schema(doc, m['schema']) or {}
                    ts = top.get('type') if isinstance(top.get('type'), list) else [top.get('type')]
                    if 'object' in ts and 'additionalProperties' not in top:
                        errors.append('%s: requestBody schema must state additionalProperties '
                                      '(false: the body refuses unknown fields, as every API '
                                      'body does)' % w)
                if 'example' not in m and rb.get('required'):
                    errors.append('%s: requestBody needs an example (the test sends it)' % w)
                elif 'example' in m and 'schema' in m:
                    for e in Validator(doc).errors(m['example'], m['schema'], '$example'):
                        errors.append('%s: requestBody example does not match its schema: %s'
                                      % (w, e))
        try:
            responses = op.responses()
        except KeyError as e:
            errors.append('%s: a response $ref resolves to nothing: %s' % (w, e))
            responses = {}
        for status, r in responses.items():
            rw = '%s: response %s' % (w, status)
            if not re.fullmatch(r'[1-5][0-9][0-9]', status):
                errors.append('%s: list exact statuses (no "default", no 4XX)' % rw)
                continue
            if not isinstance(r, dict) or not r.get('description'):
                errors.append('%s: no description' % rw)
                continue
            for ct, m in (r.get('content') or {}).items():
                if ct in JSON_TYPES or ct.endswith('+json'):
                    if 'schema' not in m:
                        errors.append('%s: %s has no schema' % (rw, ct))
                    else:
                        _lint_schema(m['schema'], '%s %s schema' % (rw, ct), errors)
                        _closed_objects(doc, m['schema'], '%s %s schema' % (rw, ct), errors,
                                        set())
                if int(status) >= 400 and ct != 'application/problem+json':
                    errors.append('%s: an error answers application/problem+json, not %s'
                                  % (rw, ct))
            if int(status) >= 400 and 'application/problem+json' not in (r.get('content') or {}):
                errors.append('%s: an error must document application/problem+json' % rw)
            for hn, hv in (r.get('headers') or {}).items():
                try:
                    hv = deref(doc, hv)
                except KeyError:
                    continue
                if 'schema' not in hv:
                    errors.append('%s: header %s has no schema' % (rw, hn))
        succ = op.success
        if not isinstance(succ, int) or isinstance(succ, bool):
            errors.append('%s: x-hookq-success must be the status the example request gets '
                          '(an integer), not %r' % (w, succ))
        elif str(succ) not in responses:
            errors.append('%s: x-hookq-success %d is not among its responses' % (w, succ))
        elif not 200 <= succ < 300:
            errors.append('%s: x-hookq-success %d is not a 2xx status' % (w, succ))
        if o.get('x-hookq-no-redis') and '503' in responses:
            errors.append('%s: documents 503 but says x-hookq-no-redis (it never reaches Redis)'
                          % w)
        for status, why in sorted(required_statuses(op).items()):
            if status not in responses:
                errors.append('%s: must document %s, as %s' % (w, status, why))
    return errors
