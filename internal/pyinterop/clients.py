# Run by internal/pyinterop (Python.Batch): reads a JSON list of operations
# on stdin, runs them against the memcached at argv[1] with Python's own
# memcached clients, and prints a JSON list of results, one per operation.
#
# Operations ("op"):
#   set     lib, key, expr[, protocol][, min_compress_len]: store eval(expr)
#   get     lib, key: read it back
#   erp5set site, prefix, key, expr: store as ERP5's Memcached Tool does
#   erp5get site, prefix, key: read as ERP5's Memcached Tool does
#   erp5key site, prefix, key: the memcached key ERP5 uses
#   canon   expr: the canonical form of eval(expr)
#   loads   hex: pickle.loads of the bytes
#   dumps   expr, protocol: pickle.dumps, as hex
#   int     hex: int() of the bytes, as python-memcached reads flag 2
# lib is "memcache" (python-memcached) or "pymemcache" (with its
# python-memcached-compatible serde). A result holds "repr" (canonical:
# repr, with dict items and set members sorted so that key order does not
# matter), "type", "key", "hex", or "error".
import collections, datetime, json, pickle, quopri, sys


def canon(v):
    t = type(v)
    if t is dict or t is collections.OrderedDict:
        return "{" + ", ".join(sorted(canon(k) + ": " + canon(x) for k, x in v.items())) + "}"
    if t is list:
        return "[" + ", ".join(canon(x) for x in v) + "]"
    if t is tuple:
        return "(" + ", ".join(canon(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if t is set or t is frozenset:
        return t.__name__ + "({" + ", ".join(sorted(canon(x) for x in v)) + "})"
    return repr(v)


def value(expr):
    return eval(expr, {"OrderedDict": collections.OrderedDict, "datetime": datetime})


def erp5_key(op):
    # MemcachedTool.py: [site global id + "_"] + key_prefix + "_" + key,
    # quoted-printable with tabs quoted, line ends removed.
    key = op.get("prefix", "") + "_" + op.get("key", "")
    if op.get("site"):
        key = op["site"] + "_" + key
    return quopri.encodestring(key.encode("utf-8"), quotetabs=True).replace(b"\n", b"").replace(b"\r", b"")


def client(addr, lib, protocol=None, **kw):
    if lib == "memcache":
        import memcache
        return memcache.Client([addr], pickleProtocol=-1 if protocol is None else protocol, **kw)
    if lib == "pymemcache":
        from pymemcache import serde
        from pymemcache.client.base import Client
        host, port = addr.rsplit(":", 1)
        s = serde.pickle_serde if protocol is None else serde.PickleSerde(pickle_version=protocol)
        return Client((host, int(port)), serde=s)
    raise ValueError("unknown lib %r" % lib)


def run(addr, op):
    kind = op["op"]
    if kind == "canon":
        v = value(op["expr"])
        return {"repr": canon(v), "type": type(v).__name__}
    if kind == "loads":
        v = pickle.loads(bytes.fromhex(op["hex"]))
        return {"repr": canon(v), "type": type(v).__name__}
    if kind == "dumps":
        return {"hex": pickle.dumps(value(op["expr"]), protocol=op.get("protocol")).hex()}
    if kind == "int":
        return {"repr": repr(int(bytes.fromhex(op["hex"])))}
    if kind == "erp5key":
        return {"key": erp5_key(op).decode("ascii")}
    if kind in ("erp5set", "erp5get"):
        # MemcachedDict: memcache.Client(servers, pickleProtocol=-1,
        # server_max_key_length=..., server_max_value_length=...).
        c = client(addr, "memcache", server_max_key_length=250, server_max_value_length=1 << 20)
        key = erp5_key(op)
        if kind == "erp5set":
            if not c.set(key, value(op["expr"]), 0):
                raise RuntimeError("python-memcached set failed")
            return {"key": key.decode("ascii")}
        v = c.get(key)
        return {"repr": canon(v), "type": type(v).__name__, "key": key.decode("ascii")}
    c = client(addr, op["lib"], op.get("protocol"))
    if kind == "set":
        kw = {}
        if op.get("min_compress_len"):
            kw["min_compress_len"] = op["min_compress_len"]
        if not c.set(op["key"], value(op["expr"]), **kw):
            raise RuntimeError("%s set failed" % op["lib"])
        return {}
    if kind == "get":
        v = c.get(op["key"])
        return {"repr": canon(v), "type": type(v).__name__}
    raise ValueError("unknown op %r" % kind)


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else ""
    out = []
    for op in json.load(sys.stdin):
        try:
            out.append(run(addr, op))
        except Exception as e:
            out.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout)


main()
