package tool_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/memdict/memdict/backend/redis"
	"github.com/memdict/memdict/internal/hostile"
	"github.com/memdict/memdict/internal/testserver"
	"github.com/memdict/memdict/tool"
)

// TestRingPluginFromConfig: a plugin whose URL has ring=true (from a YAML
// configuration) is a Redis Ring made as redis.NewRing makes it: its
// Dict's keys are spread over the shards, the Tool describes one server
// per shard, and a shard that announces a value over max_value_length
// fails a Lookup with redis.ErrProtocol at once, allocating little (its
// connections are guarded). A URL of several hosts without ring=true was
// refused: a Ring could not be configured.
func TestRingPluginFromConfig(t *testing.T) {
	pa := hostile.Start(t, testserver.Redis(t).Addr, hostile.RESPFramer)
	pb := hostile.Start(t, testserver.Redis(t).Addr, hostile.RESPFramer)
	url := "redis://" + pa.Addr() + "," + pb.Addr() + "/0?ring=true&timeout=2s&max_value_length=1048576"
	cfg, err := tool.ParseConfig([]byte("plugins:\n  sessions:\n    url: "+url+"\n"), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	tl := newTool(t, cfg)
	d := mustDict[string](t, tl, "ring", "sessions")
	for i := range 20 {
		k := fmt.Sprintf("k%d", i)
		if err := d.Put(k, "v"+k); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := d.Lookup(t.Context(), k); err != nil || !ok || v != "v"+k {
			t.Fatalf("lookup %s = %q, %v, %v", k, v, ok, err)
		}
	}
	desc := tl.Describe("sessions")
	var addrs []string
	for _, s := range desc.Servers {
		addrs = append(addrs, s.Addr)
	}
	want := []string{pa.Addr(), pb.Addr()}
	slices.Sort(want)
	if desc.System != "redis" || !slices.Equal(addrs, want) {
		t.Errorf("the plugin's description: %s %v, want redis with one server per shard %v", desc.System, addrs, want)
	}

	// Both shards announce a 64 MiB value for every GET (and MGET).
	for _, p := range []*hostile.Proxy{pa, pb} {
		p.SetMutator(hostile.MutatorFunc(func(c *hostile.Conn, reply []byte) error {
			switch {
			case len(reply) > 0 && (reply[0] == '$' || reply[0] == '_'):
				return c.Write([]byte("$67108864\r\n"))
			case len(reply) > 0 && reply[0] == '*':
				return c.Write([]byte("*1\r\n$67108864\r\n"))
			}
			return c.Write(reply)
		}))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, _, err = d.Lookup(t.Context(), "k1")
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	if !errors.Is(err, redis.ErrProtocol) || took > time.Second || alloc > 16<<20 {
		t.Errorf("lookup on a Ring shard announcing a 64 MiB value: %v after %v, %d KiB allocated; want redis.ErrProtocol at once",
			err, took, alloc>>10)
	}
}
