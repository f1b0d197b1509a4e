package redis

import (
	"fmt"
	"hash/maphash"
	"sync/atomic"
)

// Matching values to their keys.
//
// RESP carries no request id: a reply is taken as the answer to the
// oldest command without one. A server or proxy that answers a GET (or an
// MGET) with another well-formed reply of the same type and count, an
// earlier reply of the connection for instance, cannot be caught by its
// form. But every value this package stores carries a CAS token, 64
// random bits drawn anew for each write of one key: a token identifies
// one write, hence one key. owners remembers, for the tokens of the
// values the Backend read lately, which key each was read under; a value
// read under another key than its token's is another key's value, and
// the read fails with a protocol error instead of returning it.
//
// owners is a table of ownersSize slots indexed by the token's low bits;
// a slot holds the token's high 32 bits and a 32-bit hash of the key, in
// one atomic word, so that it needs no lock and costs no allocation. A
// slot is overwritten by the next token that falls in it: the table
// remembers the values read lately (those a replayed reply comes from),
// not all. A false alarm needs another write's token to agree on 46 bits;
// a missed one, another key to agree on the 32-bit hash.
//
// A value moved to another key by another program (RENAME, COPY) keeps
// its token: the first read of it under its new key after a read under
// the old one fails, and the slot then takes the new key.
const ownersSize = 1 << 14

type owners struct {
	seed  maphash.Seed
	slots [ownersSize]atomic.Uint64
}

func newOwners() *owners { return &owners{seed: maphash.MakeSeed()} }

// check records that the value with token cas was read under key, and
// returns an error if it was last read under another key.
func (o *owners) check(addr, key string, cas uint64) error {
	h := uint32(maphash.String(o.seed, key))
	want := cas>>32<<32 | uint64(h)
	slot := &o.slots[cas&(ownersSize-1)]
	old := slot.Load()
	if old == want {
		return nil
	}
	slot.Store(want)
	if old != 0 && old>>32 == cas>>32 {
		return &protoError{Addr: addr, Msg: fmt.Sprintf("the value read for key %q is another key's (its CAS token %#x was read under another key)", key, cas)}
	}
	return nil
}
