package redis

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
)

// TestClusterRedirectLoop: two nodes that each send a key's slot to the
// other (MOVED, then ASK) end a call after go-redis's MaxRedirects, at
// once, with an error that wraps backend.ErrUnavailable (a later call
// may find the slot settled) and says it was still redirected; before,
// it was the bare last redirection ("MOVED 7629 127.0.0.1:43739"), not
// ErrUnavailable.
func TestClusterRedirectLoop(t *testing.T) {
	for _, kind := range []string{"MOVED", "ASK"} {
		t.Run(kind, func(t *testing.T) {
			var a, b *fakeServer
			node := func(other **fakeServer) func(c *fakeConn, args []string) {
				return func(c *fakeConn, args []string) {
					switch strings.ToLower(args[0]) {
					case "cluster": // a owns every slot
						_, port, _ := net.SplitHostPort(a.addr())
						c.write("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n" + bulk("127.0.0.1") + ":" + port + "\r\n")
					case "asking", "readonly":
						c.write("+OK\r\n")
					default:
						c.write("-" + kind + " " + strconv.Itoa(int(slot(args[len(args)-1]))) + " " + (*other).addr() + "\r\n")
					}
				}
			}
			a = startFake(t, node(&b))
			b = startFake(t, node(&a))
			be := mustOpen(t, "redis://"+a.addr()+"/0?cluster=true&timeout=500ms")
			start := time.Now()
			_, err := be.Get(context.Background(), "k")
			took := time.Since(start)
			t.Logf("%v after %v", err, took.Round(time.Millisecond))
			if err == nil || !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "still redirected") {
				t.Errorf("get through two nodes redirecting to each other: %v; want ErrUnavailable saying it was still redirected", err)
			}
			if took > 400*time.Millisecond {
				t.Errorf("get through two nodes redirecting to each other took %v, want it to end at once", took)
			}
		})
	}
}
