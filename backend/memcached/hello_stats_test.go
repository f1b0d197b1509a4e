package memcached_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/backend/memcached"
)

// A server or proxy with meta commands that does not implement "stats"
// (or "stats settings"), and answers it with an error line, is used all
// the same: its connections go on without the key of the server's run,
// and CAS tokens are its bare CAS values, as over the text protocol.
// Before, a SERVER_ERROR in reply to the hello's "stats" failed every
// connection: the client could not use the server at all.
func TestHelloStatsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, settings, stats string
		// later: only the connections after the first refuse, whose
		// hello goes pipelined ahead of their first request.
		later bool
	}{
		{"stats SERVER_ERROR", "END", "SERVER_ERROR unsupported command", false},
		{"both SERVER_ERROR", "SERVER_ERROR unsupported command", "SERVER_ERROR unsupported command", false},
		{"pipelined hello SERVER_ERROR", "SERVER_ERROR unsupported command", "SERVER_ERROR unsupported command", true},
		{"stats ERROR", "END", "ERROR", false},
		{"both CLIENT_ERROR", "CLIENT_ERROR bad command line format", "CLIENT_ERROR bad command line format", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const cas = 77 // the CAS value of "k" in the server
			var mu sync.Mutex
			seen := map[net.Conn]int{} // lines read on each connection
			s := newFakeServer(t, func(line string, c net.Conn, r *bufio.Reader) bool {
				mu.Lock()
				i := seen[c]
				seen[c] = i + 1
				refuse := !tc.later || len(seen) > 1
				mu.Unlock()
				switch {
				case i == 0 && line == "mn":
					fmt.Fprintf(c, "MN\r\n")
				case i == 1 && line == "stats settings" && refuse:
					fmt.Fprintf(c, "%s\r\n", tc.settings)
				case i == 2 && line == "stats" && refuse:
					fmt.Fprintf(c, "%s\r\n", tc.stats)
				case i == 1 && line == "stats settings", i == 2 && line == "stats":
					fmt.Fprintf(c, "END\r\n")
				case strings.HasPrefix(line, "mg k "):
					fmt.Fprintf(c, "VA 1 c%d f0%s\r\nv\r\n", cas, metaFlags(line))
				case strings.HasPrefix(line, "ms k "):
					if _, err := r.ReadString('\n'); err != nil {
						return false
					}
					// The token must come back as the bare CAS value.
					reply := "EX"
					if strings.Contains(line, fmt.Sprintf(" C%d ", cas)) {
						reply = "HD"
					}
					fmt.Fprintf(c, "%s%s\r\n", reply, metaFlags(line))
					// Close after each compare-and-swap: the next call
					// dials again, with the hello pipelined ahead of it.
					return false
				default:
					fmt.Fprintf(c, "ERROR\r\n")
				}
				return true
			})
			// One connection: the compare-and-swap goes on the one its Get dialed.
			c := fakeClient(t, s, memcached.WithTimeout(2*time.Second), memcached.WithConns(1))
			ctx := context.Background()
			for round := range 2 {
				it, err := c.Get(ctx, "k")
				if err != nil {
					t.Fatalf("round %d: Get: %v", round, err)
				}
				if string(it.Value) != "v" || it.CAS != cas {
					t.Fatalf("round %d: Get = %q with token %d, want %q and the bare CAS %d", round, it.Value, it.CAS, "v", cas)
				}
				if err := c.CompareAndSwap(ctx, backend.Item{Key: "k", Value: []byte("w"), CAS: it.CAS}); err != nil {
					t.Fatalf("round %d: CompareAndSwap with the token read: %v", round, err)
				}
			}
		})
	}
}
