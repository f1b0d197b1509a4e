package testserver

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// KillRedisClients kills, on the server rc talks to, the server side of
// every connection whose client name is name (CLIENT LIST, then CLIENT
// KILL ID). It fails the test if a command fails or no such connection
// is listed.
func KillRedisClients(t testing.TB, rc *goredis.Client, name string) {
	t.Helper()
	list, err := rc.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for line := range strings.SplitSeq(list, "\n") {
		if !strings.Contains(line, "name="+name) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := rc.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no %s connection in CLIENT LIST:\n%s", name, list)
	}
}
