package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownersDir holds one file per running cluster, named after its id and holding the harness's
// process id, so that a later harness can clean up after one that was killed before its Close.
const ownersDir = "/run/liftoff-harness"

// claim records that this process owns the cluster with id.
func claim(id string) error {
	if err := os.MkdirAll(ownersDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(ownersDir, id), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// release forgets the claim on id.
func release(id string) { os.Remove(filepath.Join(ownersDir, id)) }

// sweep removes what clusters whose harness died left behind: their machines' processes and
// cgroups, network namespaces, links and rules. It returns the ids it cleaned.
func sweep(ctx context.Context) []string {
	entries, _ := os.ReadDir(ownersDir)
	var cleaned []string
	for _, e := range entries {
		id := e.Name()
		if strings.HasSuffix(id, ".settings") || ownersDir+"/"+id == hostLock {
			continue
		}
		data, err := os.ReadFile(filepath.Join(ownersDir, id))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && syscall.Kill(pid, 0) == nil {
			continue // its harness still runs
		}
		root := machineCgroup{path: "/liftoff-" + id}
		root.kill()
		root.remove()
		n := &network{id: id, bridge: "lf" + id, table: "liftoff_" + id, created: true}
		links, _ := os.ReadDir("/sys/class/net")
		for _, l := range links {
			if strings.HasPrefix(l.Name(), "lf"+id+"m") {
				n.links = append(n.links, l.Name())
			}
		}
		namespaces, _ := os.ReadDir("/run/netns")
		for _, ns := range namespaces {
			if strings.HasPrefix(ns.Name(), "lf"+id+"-") {
				n.namespaces = append(n.namespaces, ns.Name())
			}
		}
		n.remove()
		if data, err := os.ReadFile(hostSettingsFile(id)); err == nil {
			var saved map[string]string
			if json.Unmarshal(data, &saved) == nil {
				restoreHostSettings(saved)
			}
			os.Remove(hostSettingsFile(id))
		}
		release(id)
		cleaned = append(cleaned, id)
	}
	return cleaned
}

// hostLock is held by the one cluster this host runs at a time. A cluster changes host-wide
// kernel settings (kernel.panic, vm.overcommit_memory, the conntrack table) and the kubelet checks
// them, so two clusters at once, from two test processes or one, would see each other's.
const hostLock = ownersDir + "/host.lock"

// lockHost waits until no other cluster runs on this host and returns the lock, which is given
// back by closing it.
func lockHost(ctx context.Context, logf func(string, ...any)) (*os.File, error) {
	if err := os.MkdirAll(ownersDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(hostLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return f, nil
	}
	logf("waiting for the cluster that runs on this host to close (%s)", hostLock)
	locked := make(chan error, 1)
	go func() { locked <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-locked:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", hostLock, err)
		}
		return f, nil
	case <-ctx.Done():
		// The lock, if it comes, is given back at once.
		go func() { <-locked; f.Close() }()
		return nil, fmt.Errorf("waiting for the cluster that runs on this host to close: %w", ctx.Err())
	}
}
