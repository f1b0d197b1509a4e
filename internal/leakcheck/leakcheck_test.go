package leakcheck

import (
	"strings"
	"testing"
	"time"
)

// TestFindsLeak: a goroutine left running is reported, with its stack,
// and no longer once it has ended.
func TestFindsLeak(t *testing.T) {
	if err := Find(time.Second); err != nil {
		t.Fatalf("before the leak: %v", err)
	}
	stop := make(chan struct{})
	go leakingFunction(stop)
	err := Find(50 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "leakingFunction") {
		t.Errorf("Find with a goroutine left = %v; want its stack", err)
	}
	close(stop)
	if err := Find(5 * time.Second); err != nil {
		t.Errorf("after the goroutine ended: %v", err)
	}
}

// TestWaitsForEnd: a goroutine that ends within the wait is no leak.
func TestWaitsForEnd(t *testing.T) {
	stop := make(chan struct{})
	go leakingFunction(stop)
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })
	if err := Find(5 * time.Second); err != nil {
		t.Errorf("Find = %v; want nil once the goroutine ended", err)
	}
}

// TestIgnoresParallelTests: the goroutines of other tests running in
// parallel are the testing package's, not leaks.
func TestIgnoresParallelTests(t *testing.T) {
	for i := range 3 {
		t.Run(string(rune('a'+i)), func(t *testing.T) {
			t.Parallel()
			time.Sleep(10 * time.Millisecond)
		})
	}
	if left := Leaked(); len(left) != 0 {
		t.Errorf("Leaked = %q; want none", left)
	}
}

func leakingFunction(stop chan struct{}) { <-stop }
