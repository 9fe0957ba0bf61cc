// Command liftoff-binaries builds the real programs liftoff's tests run, or finds them in the
// cache, and prints where each one is and how long getting it took. With no arguments it gets all
// of them; otherwise the named ones.
//
//	go run ./internal/testbin/cmd/liftoff-binaries [name ...]
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	names := os.Args[1:]
	if len(names) == 0 {
		names = testbin.Names()
	}
	if len(names) == 1 && strings.HasPrefix(names[0], "-") {
		fmt.Fprintf(os.Stderr, "usage: liftoff-binaries [name ...]\nnames: %s\n", strings.Join(testbin.Names(), " "))
		os.Exit(2)
	}

	failed := 0
	total := time.Now()
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "liftoff-binaries: %s ...\n", name)
		start := time.Now()
		path, err := testbin.Path(ctx, name)
		took := time.Since(start).Round(100 * time.Millisecond)
		if err != nil {
			fmt.Fprintf(os.Stderr, "liftoff-binaries: %s failed after %s:\n%v\n", name, took, err)
			failed++
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Printf("%-28s %8s  %s\n", name, took, path)
	}
	fmt.Fprintf(os.Stderr, "liftoff-binaries: done in %s\n", time.Since(total).Round(100*time.Millisecond))
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "liftoff-binaries: %d of %d failed\n", failed, len(names))
		os.Exit(1)
	}
}
