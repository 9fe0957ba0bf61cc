package harness

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"
)

// TestOneClusterAtATime shows that a second cluster waits for the host while another holds it,
// gets it once that one closes, and gives up with its context.
func TestOneClusterAtATime(t *testing.T) {
	first, err := lockHost(t.Context(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// The lock is no dead cluster's leftover: a sweep keeps it.
	if cleaned := sweep(t.Context()); slices.Contains(cleaned, "host.lock") {
		t.Error("a sweep took the host lock for a dead cluster's")
	}
	if _, err := os.Stat(hostLock); err != nil {
		t.Errorf("after a sweep: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if second, err := lockHost(ctx, t.Logf); err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second cluster got the host while the first held it")
	}

	got := make(chan error, 1)
	go func() {
		second, err := lockHost(t.Context(), t.Logf)
		if err == nil {
			second.Close()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	first.Close()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("the waiting cluster did not get the host once the first closed: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the waiting cluster still waits a minute after the first closed")
	}
}
