package testserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisClusterNodes is a Redis Cluster started by RedisCluster.
type RedisClusterNodes struct {
	// Nodes are the masters' processes, in the order of Addrs.
	Nodes []*Process
	// Addrs are the masters' "127.0.0.1:port" addresses.
	Addrs []string
}

// RedisCluster starts a Redis Cluster of n masters (n >= 3, as redis-cli
// requires) and no replicas on loopback: n processes of
//
//	redis-server --port PORT --bind 127.0.0.1 --save "" --appendonly no
//	    --cluster-enabled yes --cluster-config-file DIR/nodes-PORT.conf
//	    --cluster-node-timeout 5000
//
// plus extra arguments, joined with
//
//	redis-cli --cluster create ADDR1 ADDR2 ... --cluster-replicas 0 --cluster-yes
//
// It waits until every node reports cluster_state:ok with all 16384 slots
// assigned and knows all n nodes. A missing redis-server or redis-cli skips
// the test, or fails it when Required(). Each node's nodes.conf lives in a
// temporary directory of t, so Restart of a node keeps its identity and
// slots.
func RedisCluster(t testing.TB, n int, extra ...string) *RedisClusterNodes {
	t.Helper()
	if n < 3 {
		t.Fatalf("testserver: RedisCluster(%d): a Redis Cluster needs at least 3 masters", n)
	}
	cli := LookPath(t, "redis-cli")
	dir := t.TempDir()
	c := &RedisClusterNodes{}
	for range n {
		args := []string{"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+PortPlaceholder+".conf"),
			"--cluster-node-timeout", "5000"}
		p := Redis(t, append(args, extra...)...)
		c.Nodes = append(c.Nodes, p)
		c.Addrs = append(c.Addrs, p.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testserver: %s %s: %v\n%s", cli, strings.Join(args, " "), err, out)
	}
	if err := c.WaitOK(30 * time.Second); err != nil {
		t.Fatalf("testserver: redis cluster %v: %v\n--- redis-cli output ---\n%s", c.Addrs, err, out)
	}
	return c
}

// WaitOK waits, up to timeout, until every node answers CLUSTER INFO with
// cluster_state:ok, cluster_slots_ok:16384 and cluster_known_nodes equal to
// the number of nodes. It returns the last problem seen on timeout.
func (c *RedisClusterNodes) WaitOK(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.checkOK()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *RedisClusterNodes) checkOK() error {
	for _, a := range c.Addrs {
		info, err := ClusterInfo(a)
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" ||
			info["cluster_known_nodes"] != strconv.Itoa(len(c.Addrs)) {
			return fmt.Errorf("%s: cluster_state=%s cluster_slots_ok=%s cluster_known_nodes=%s",
				a, info["cluster_state"], info["cluster_slots_ok"], info["cluster_known_nodes"])
		}
	}
	return nil
}

// ClusterInfo sends CLUSTER INFO to the Redis node at addr (no
// authentication) and returns its name/value pairs.
func ClusterInfo(addr string) (map[string]string, error) {
	s, err := bulk(addr, "CLUSTER INFO\r\n")
	if err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// bulk sends an inline command to addr and returns its bulk-string reply.
func bulk(addr, req string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(req, "AUTH ") && strings.HasPrefix(line, "+OK") {
		// The reply of an AUTH sent ahead of the command (authed).
		if line, err = r.ReadString('\n'); err != nil {
			return "", err
		}
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "$") && !strings.HasPrefix(line, "=") {
		return "", fmt.Errorf("unexpected reply %q", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("unexpected reply %q", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
