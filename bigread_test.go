package memdict_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/internal/testserver"
)

// bigRecord is a record with a large binary field, as a cached document
// or image is.
type bigRecord struct {
	ID   int    `msgpack:"id"`
	Blob []byte `msgpack:"blob"`
}

// bigBlob is the Blob of record i: its bytes depend on i, so that a value
// read into memory another read reused shows.
func bigBlob(i int) []byte {
	b := make([]byte, 16<<10)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	return b
}

// A Lookup of a 16 KiB value over Redis allocates the decoded record (its
// Blob, 16 KiB) and little else: the driver reads the value into a buffer
// the Dict hands back once decoded, which the next read reuses. It
// allocated 33 KiB per Lookup: go-redis made (and zeroed) a buffer for
// each reply, which the garbage collector then had to collect, a third of
// the client's CPU time at 64 goroutines (examples/redisbench, getbig-64).
// Concurrent reads each get their own value, and a record read earlier
// stays intact while the buffer it was decoded from is reused.
func TestRedisBigLookupReusesBuffers(t *testing.T) {
	ctx := context.Background()
	be, err := backend.Open(ctx, "redis://"+testserver.Redis(t).Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	d, err := memdict.New[bigRecord](be, "big")
	if err != nil {
		t.Fatal(err)
	}
	const keys = 32
	for i := range keys {
		if err := d.Store(ctx, fmt.Sprint("k", i), bigRecord{ID: i, Blob: bigBlob(i)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(i int, r bigRecord, ok bool, err error) error {
		switch {
		case err != nil || !ok:
			return fmt.Errorf("lookup k%d: %v, found %v", i, err, ok)
		case r.ID != i || !bytes.Equal(r.Blob, bigBlob(i)):
			return fmt.Errorf("lookup k%d: read id %d and a %d-byte blob that is not k%d's", i, r.ID, len(r.Blob), i)
		}
		return nil
	}

	// Allocated bytes per Lookup, one at a time.
	const n = 200
	for i := range keys { // warm up: the pool, the connection
		r, ok, err := d.Lookup(ctx, fmt.Sprint("k", i))
		if err := check(i, r, ok, err); err != nil {
			t.Fatal(err)
		}
	}
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprint("k", i)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for j := range n {
		i := j % keys
		r, ok, err := d.Lookup(ctx, names[i])
		if !ok || err != nil || r.ID != i {
			t.Fatalf("lookup k%d: id %d, %v, %v", i, r.ID, ok, err)
		}
	}
	runtime.ReadMemStats(&after)
	perOp := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per Lookup of a 16 KiB value", perOp)
	if limit := uint64(16<<10) * 3 / 2; perOp > limit {
		t.Errorf("a Lookup of a 16 KiB value allocated %d bytes, more than %d: the value's buffer is not reused", perOp, limit)
	}

	// Concurrent reads (batched into MGETs), each checked, and each
	// goroutine's previous record checked again after its next read.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			var prev bigRecord
			prevI := -1
			for j := range 100 {
				i := (g*5 + j) % keys
				r, ok, err := d.Lookup(ctx, names[i])
				if err := check(i, r, ok, err); err != nil {
					errs <- err
					return
				}
				if prevI >= 0 {
					if err := check(prevI, prev, true, nil); err != nil {
						errs <- fmt.Errorf("a record read before changed: %w", err)
						return
					}
				}
				prev, prevI = r, i
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
