// Command liftoff-pause is the pause program of the local clusters' sandbox image: the process
// that holds a pod's namespaces. It sleeps until SIGTERM or SIGINT, then exits 0, and reaps every
// child that a shared PID namespace makes its own. Built without cgo it is one static file.
//
//	liftoff-pause [-v]
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is what -v prints.
const version = "liftoff-pause 1"

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] == "-v" {
			fmt.Println(version)
			return
		}
		fmt.Fprintln(os.Stderr, "usage: liftoff-pause [-v]")
		os.Exit(2)
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "liftoff-pause: warning: not PID 1")
	}

	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap collects every exited child without blocking. Signals coalesce, so one SIGCHLD may stand
// for several children.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
