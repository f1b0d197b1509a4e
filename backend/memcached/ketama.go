package memcached

import (
	"crypto/md5"
	"encoding/binary"
	"math"
	"net"
	"slices"
	"strconv"

	"github.com/bradfitz/gomemcache/memcache"
)

// Ketama consistent hashing, as twemproxy (nutcracker) does it with
// "distribution: ketama" and its default "hash: fnv1a_64":
//
//   - every server has a name: its host alone when the port is 11211 (for
//     libmemcached compatibility), "host:port" otherwise, as written;
//   - it gets 160 points (for equal weights) on a 32-bit circle: for
//     i = 0..39, the MD5 of "name-i" gives four little-endian uint32 points;
//   - a key is hashed with twemproxy's fnv1a_64, which (a quirk kept for
//     compatibility) runs FNV-1a with the 64-bit offset basis and prime
//     truncated to 32 bits, over the key's bytes as signed chars;
//   - the key goes to the first point whose value is >= its hash, wrapping
//     around to the first point.
const (
	ketamaPointsPerServer = 160
	ketamaPointsPerHash   = 4
	ketamaDefaultPort     = "11211"
)

type ketamaPoint struct {
	value uint32
	index uint32
}

// ketama is a gomemcache ServerSelector over a fixed list of servers. It is
// immutable after construction and so safe for concurrent use.
type ketama struct {
	points []ketamaPoint
	addrs  []net.Addr
	hash   func(string) uint32
}

// ketamaName is the name twemproxy hashes for a server written host:port.
func ketamaName(host, port string) string {
	if port == ketamaDefaultPort {
		return host
	}
	return net.JoinHostPort(host, port)
}

// newKetama builds the continuum for servers named names (see ketamaName)
// with the given weights (nil: all 1), whose addresses are addrs.
func newKetama(names []string, weights []int, addrs []net.Addr, hash func(string) uint32) *ketama {
	n := len(names)
	if weights == nil {
		weights = make([]int, n)
		for i := range weights {
			weights[i] = 1
		}
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	if hash == nil {
		hash = hashKey
	}
	k := &ketama{addrs: addrs, hash: hash}
	for i, name := range names {
		// Same float32 arithmetic as nc_ketama.c.
		pct := float32(weights[i]) / float32(total)
		x := pct * float32(ketamaPointsPerServer) / 4 * float32(n)
		perServer := uint32(math.Floor(float64(x)+0.0000000001)) * 4
		for p := uint32(0); p < perServer/ketamaPointsPerHash; p++ {
			sum := md5.Sum([]byte(name + "-" + strconv.FormatUint(uint64(p), 10)))
			for a := 0; a < ketamaPointsPerHash; a++ {
				k.points = append(k.points, ketamaPoint{
					value: binary.LittleEndian.Uint32(sum[a*4:]),
					index: uint32(i),
				})
			}
		}
	}
	slices.SortStableFunc(k.points, func(a, b ketamaPoint) int {
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	return k
}

// hashMD5 is twemproxy's hash_md5: the first four bytes of the key's MD5,
// little-endian.
func hashMD5(key string) uint32 {
	sum := md5.Sum([]byte(key))
	return binary.LittleEndian.Uint32(sum[:4])
}

// hashKey is twemproxy's hash_fnv1a_64 (see the comment above). It is a
// weak hash: keys that differ only in their last bytes get close values and
// may crowd onto few servers; hash=md5 spreads them better.
func hashKey(key string) uint32 {
	h := uint32(0xcbf29ce484222325 & 0xffffffff)
	const prime = uint32(0x100000001b3 & 0xffffffff)
	for i := 0; i < len(key); i++ {
		h ^= uint32(int32(int8(key[i])))
		h *= prime
	}
	return h
}

// index returns the position in addrs of the server for key.
func (k *ketama) index(key string) int {
	if len(k.addrs) == 1 {
		return 0
	}
	h := k.hash(key)
	lo, hi := 0, len(k.points)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if k.points[m].value < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(k.points) {
		lo = 0
	}
	return int(k.points[lo].index)
}

// PickServer implements memcache.ServerSelector.
func (k *ketama) PickServer(key string) (net.Addr, error) {
	if len(k.addrs) == 0 {
		return nil, memcache.ErrNoServers
	}
	return k.addrs[k.index(key)], nil
}

// Each implements memcache.ServerSelector.
func (k *ketama) Each(f func(net.Addr) error) error {
	for _, a := range k.addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

// keyRing is the continuum keys are placed on at one time: over every server,
// or with auto-eject over those not ejected (eject.go). It is immutable;
// the Client swaps in a new one when a server is ejected or comes back.
// Its points are the servers' names' (ketamaName, as configured, never a
// resolved address), so that a server keeps its keys when its name
// resolves to a new address, and a server taken out or put back moves its
// own keys alone, as nutcracker's auto_eject_hosts does.
type keyRing struct {
	k       *ketama
	nodes   []*node // the servers of k, by index
	ejected int     // servers of the Client not in it
}

// newRing builds the ring over nodes (never empty) with hash; ejected
// is how many of the Client's servers are left out.
func newRing(nodes []*node, ejected int, hash func(string) uint32) *keyRing {
	names := make([]string, len(nodes))
	addrs := make([]net.Addr, len(nodes))
	for i, n := range nodes {
		names[i] = n.name
		addrs[i] = tcpAddr(n.addr)
	}
	return &keyRing{k: newKetama(names, nil, addrs, hash), nodes: nodes, ejected: ejected}
}

// node returns the server of key.
func (r *keyRing) node(key string) *node { return r.nodes[r.k.index(key)] }
