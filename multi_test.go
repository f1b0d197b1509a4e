package memdict_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/testing/memdicttest"
)

// failOdd makes the backend keys of the odd-numbered Dict keys ("k001",
// "k003", ...) fail, as if their server were down.
func failOdd(d interface{ BackendKey(string) string }, keys []string) func(string) bool {
	odd := map[string]bool{}
	for i, k := range keys {
		if i%2 == 1 {
			odd[d.BackendKey(k)] = true
		}
	}
	return func(bk string) bool { return odd[bk] }
}

// oddKeysDown returns a Dict on a memdicttest.Faulty memory Store that
// holds "v"+k under each of n numbered keys k, and the keys; the odd
// keys' server is down (their calls fail with backend.ErrUnavailable).
func oddKeysDown(t *testing.T, n int) (*memdict.Dict[string], []string) {
	t.Helper()
	f := memdicttest.NewFaulty(memory.New())
	d := newDict[string](t, f, "p")
	keys := numberedKeys(n)
	for _, k := range keys {
		if err := d.Put(k, "v"+k); err != nil {
			t.Fatal(err)
		}
	}
	f.FailKeys(failOdd(d, keys), backend.ErrUnavailable)
	return d, keys
}

func numberedKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	return keys
}

// GetMulti over a backend where some keys' server is down names every
// failed Dict key (not backend key) with its cause, and returns the others.
func TestGetMultiNamesEveryFailedKey(t *testing.T) {
	ctx := context.Background()
	d, keys := oddKeysDown(t, 10)
	got, err := d.GetMulti(ctx, append(keys, "absent", "k000"))
	var me *memdict.MultiError
	if !errors.As(err, &me) {
		t.Fatalf("GetMulti error %T %v, want a *memdict.MultiError", err, err)
	}
	var wantFailed []string
	for i, k := range keys {
		if i%2 == 1 {
			wantFailed = append(wantFailed, k)
		} else if got[k] != "v"+k {
			t.Errorf("GetMulti[%q] = %q, want it read from the healthy server", k, got[k])
		}
	}
	if !slices.Equal(me.Keys(), wantFailed) {
		t.Errorf("failed keys %q, want %q", me.Keys(), wantFailed)
	}
	if me.Op != "getmulti" || me.Total != len(keys)+1 {
		t.Errorf("Op, Total = %q, %d; want getmulti, %d", me.Op, me.Total, len(keys)+1)
	}
	for _, oe := range me.Failed {
		if oe.Op != "get" || !errors.Is(oe.Err, backend.ErrUnavailable) {
			t.Errorf("failure %v: want op get and ErrUnavailable", oe)
		}
	}
	if !errors.Is(err, memdict.ErrUnavailable) || me.Err("k003") == nil || me.Err("k002") != nil {
		t.Errorf("errors.Is / Err wrong for %v", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "memdict: getmulti: 5 of 11 keys failed: ") {
		t.Errorf("message %q", msg)
	}
	// The keys failed alike: they are named together, before their cause.
	quoted := make([]string, len(wantFailed))
	for i, k := range wantFailed {
		quoted[i] = fmt.Sprintf("%q", k)
	}
	if want := "get " + strings.Join(quoted, ", ") + ": " + fmt.Sprint(me.Failed[0].Err); !strings.HasSuffix(msg, ": "+want) {
		t.Errorf("message %q does not end in %q", msg, want)
	}
	if strings.Contains(msg, d.BackendKey("k001")) {
		t.Errorf("message %q shows a backend key, not the Dict key", msg)
	}
	st := d.Stats()
	if st.Errors != 5 || st.Misses != 1 || st.Hits != 5 {
		t.Errorf("Stats hits/misses/errors = %d/%d/%d, want 5/1/5", st.Hits, st.Misses, st.Errors)
	}
}

// A GetMulti that fails as a whole (not a *backend.MultiError) fails
// every key, and says so.
func TestGetMultiWholeFailureNamesEveryKey(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	d := newDict[string](t, f, "p")
	if _, err := d.Generation(ctx); err != nil {
		t.Fatal(err)
	}
	f.FailOp(memdicttest.OpGetMulti, backend.ErrClosed)
	keys := numberedKeys(30)
	_, err := d.GetMulti(ctx, keys)
	var me *memdict.MultiError
	if !errors.As(err, &me) || !slices.Equal(me.Keys(), keys) || !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("GetMulti = %v, want every key failed with ErrClosed", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "30 of 30 keys failed") || !strings.HasSuffix(msg, "; and 10 more") {
		t.Errorf("message %q: want the count and the first 20 keys", msg)
	}
}

// PutMulti names every key that was not stored, with its cause, and stores
// the others.
func TestPutMultiNamesEveryFailedKey(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	d := newDict[string](t, f, "p", memdict.WithMaxValueLen(100))
	keys := numberedKeys(6)
	f.FailKeys(failOdd(d, keys), backend.ErrUnavailable)
	m := map[string]string{}
	for _, k := range keys {
		m[k] = "v" + k
	}
	m["big"] = strings.Repeat("x", 200)
	err := d.PutMulti(ctx, m)
	var me *memdict.MultiError
	if !errors.As(err, &me) {
		t.Fatalf("PutMulti = %T %v, want a *memdict.MultiError", err, err)
	}
	if want := []string{"big", "k001", "k003", "k005"}; !slices.Equal(me.Keys(), want) {
		t.Errorf("failed keys %q, want %q", me.Keys(), want)
	}
	if !errors.Is(me.Err("big"), memdict.ErrValueTooLarge) || !errors.Is(me.Err("k001"), memdict.ErrUnavailable) {
		t.Errorf("causes: %v", err)
	}
	if me.Op != "putmulti" || me.Total != 7 || me.Failed[1].Op != "put" {
		t.Errorf("MultiError %+v", me)
	}
	f.ClearFaults()
	for i, k := range keys {
		_, ok, err := d.Lookup(ctx, k)
		if err != nil || ok != (i%2 == 0) {
			t.Errorf("Lookup(%q) = %v, %v; want stored only for the healthy keys", k, ok, err)
		}
	}
}

// Tx.Commit's CommitError is the same type, with Op "commit".
func TestCommitErrorIsMultiError(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	d := newDict[int](t, f, "p")
	tx := d.Begin()
	_ = tx.Put("a", 1)
	_ = tx.Put("b", 2)
	bkB := d.BackendKey("b")
	f.FailKeys(func(bk string) bool { return bk == bkB }, nil)
	err := tx.Commit(ctx)
	var me *memdict.MultiError
	if !errors.As(err, &me) || me.Op != "commit" || !slices.Equal(me.Keys(), []string{"b"}) {
		t.Fatalf("Commit = %v", err)
	}
	if !strings.HasPrefix(err.Error(), `memdict: commit: 1 of 2 keys failed: put "b": `) {
		t.Errorf("message %q", err)
	}
}

// The error of an operation over a down server leads with the operation
// and the key, and carries the server's error; it does not talk of the
// namespace generation, which is only how the Dict found out.
func TestErrorLeadsWithOpAndKey(t *testing.T) {
	ctx := context.Background()
	f := memdicttest.NewFaulty(memory.New())
	f.SetDown(true)
	d := newDict[string](t, f, "p")
	_, _, err := d.Lookup(ctx, "k")
	if err == nil {
		t.Fatal("Lookup over a down server: no error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `memdict: get "k": `) || strings.Contains(msg, "generation") {
		t.Errorf("Lookup error %q: want it to lead with the op and key, without the generation", msg)
	}
	if !errors.Is(err, memdict.ErrUnavailable) {
		t.Errorf("Lookup error %v does not wrap ErrUnavailable", err)
	}
	if err := d.Store(ctx, "k", "v"); err == nil || !strings.HasPrefix(err.Error(), `memdict: put "k": `) || strings.Contains(err.Error(), "generation") {
		t.Errorf("Store error %v", err)
	}
	// When the generation itself is the problem, the error says so.
	f.SetDown(false)
	be := f.Unwrap()
	d2 := newDict[string](t, be, "q")
	if err := be.Set(ctx, backend.Item{Key: metaKeyOf(t, be, d2), Value: []byte("garbage")}); err != nil {
		t.Fatal(err)
	}
	_, _, err = newDict[string](t, be, "q").Lookup(ctx, "k")
	if err == nil || !strings.HasPrefix(err.Error(), `memdict: get "k": `) || !strings.Contains(err.Error(), "namespace generation") {
		t.Errorf("Lookup with a corrupt generation: %v, want it to name the generation", err)
	}
}

// metaKeyOf finds the backend key that holds d's namespace generation:
// the one key a Clear of an empty Dict writes.
func metaKeyOf(t *testing.T, be backend.Backend, d *memdict.Dict[string]) string {
	t.Helper()
	ctx := context.Background()
	if err := d.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	var found []string
	for k, err := range be.(backend.Lister).Keys(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k, "q") && !strings.Contains(k, "p:") {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		t.Fatalf("meta keys %q", found)
	}
	return found[0]
}

// All names each entry whose server is down, with its key and cause, and
// goes on with the others.
func TestAllNamesUnreadableKeys(t *testing.T) {
	ctx := context.Background()
	d, _ := oddKeysDown(t, 6)
	var good, bad []string
	for e, err := range d.All(ctx) {
		var oe *memdict.OpError
		switch {
		case err == nil:
			good = append(good, e.Key)
		case errors.As(err, &oe) && oe.Key == e.Key && errors.Is(err, memdict.ErrUnavailable):
			bad = append(bad, e.Key)
		default:
			t.Fatalf("All: %q, %v", e.Key, err)
		}
	}
	slices.Sort(good)
	slices.Sort(bad)
	if !slices.Equal(good, []string{"k000", "k002", "k004"}) || !slices.Equal(bad, []string{"k001", "k003", "k005"}) {
		t.Errorf("All read %q and named %q as unreadable", good, bad)
	}
}

// MultiError's message names each failed key, and each cause once: keys
// that failed alike (a server down) share their cause.
func TestMultiErrorMessageGroupsCauses(t *testing.T) {
	down := errors.New("backend: server unavailable: dial tcp 10.0.0.2:11211: connect: connection refused")
	me := &memdict.MultiError{Op: "putmulti", Total: 5, Failed: []*memdict.OpError{
		{Op: "put", Key: "a", Err: down},
		{Op: "put", Key: "b", Err: memdict.ErrValueTooLarge},
		{Op: "put", Key: "c", Err: down},
		{Op: "delete", Key: "d", Err: down},
	}}
	want := `memdict: putmulti: 4 of 5 keys failed: put "a", "c": ` + down.Error() +
		`; put "b": ` + memdict.ErrValueTooLarge.Error() + `; delete "d": ` + down.Error()
	if got := me.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	keys := numberedKeys(30)
	me = &memdict.MultiError{Op: "getmulti", Total: 30}
	for _, k := range keys {
		me.Failed = append(me.Failed, &memdict.OpError{Op: "get", Key: k, Err: down})
	}
	msg := me.Error()
	if strings.Count(msg, down.Error()) != 1 || !strings.HasSuffix(msg, `"k019": `+down.Error()+"; and 10 more") {
		t.Errorf("Error() of 30 keys failed alike = %q", msg)
	}
}
