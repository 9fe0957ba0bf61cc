package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupMount is where the host's cgroup hierarchies are mounted.
const cgroupMount = "/sys/fs/cgroup"

// machineCgroup is the cgroup of one machine, in every hierarchy of the host: everything the
// machine runs — its units, containerd's shims, the containers the kubelet places under its
// cgroupRoot — lives below it, so that powering the machine off is freezing and killing one tree.
type machineCgroup struct {
	// path is the cgroup's path relative to each hierarchy's root, e.g. /liftoff-1a2b3c/controller-1.
	path string
}

// hierarchies lists the mounted cgroup hierarchies (cgroup v1 controllers, name=systemd and the
// unified cgroup2 mount).
func hierarchies() ([]string, error) {
	if _, err := os.Stat(filepath.Join(cgroupMount, "cgroup.controllers")); err == nil {
		return nil, fmt.Errorf("%s is a unified cgroup v2 hierarchy: the harness knows cgroup v1 hierarchies (with a cgroup2 \"unified\" mount) only, as this project's machines have", cgroupMount)
	}
	entries, err := os.ReadDir(cgroupMount)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		fi, err := os.Lstat(filepath.Join(cgroupMount, e.Name()))
		if err != nil || !fi.IsDir() {
			continue // links like cpu,cpuacct -> cpu
		}
		out = append(out, filepath.Join(cgroupMount, e.Name()))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cgroup hierarchy is mounted under %s", cgroupMount)
	}
	return out, nil
}

// create makes the cgroup and its "system" child (where the machine's units run) in every
// hierarchy.
func (g machineCgroup) create() error {
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir := h
		for _, part := range strings.Split(strings.Trim(g.path+"/system", "/"), "/") {
			parent := dir
			dir = filepath.Join(dir, part)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			// A new cpuset has no CPUs or memory nodes until given its parent's.
			if filepath.Base(h) == "cpuset" {
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					v, err := os.ReadFile(filepath.Join(parent, f))
					if err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
						return fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
					}
				}
			}
		}
	}
	return nil
}

// joinScript is a shell fragment that moves the shell into the machine's system cgroup in every
// hierarchy; a unit's command then replaces the shell.
func (g machineCgroup) joinScript() (string, error) {
	hs, err := hierarchies()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "echo $$ > %s/cgroup.procs; ", filepath.Join(h, g.path, "system"))
	}
	return b.String(), nil
}

// pids lists every process in the cgroup's tree.
func (g machineCgroup) pids() []int {
	var out []int
	filepath.WalkDir(filepath.Join(cgroupMount, "pids", g.path), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// kill stops every process of the machine at once, as a power cut does: the tree is frozen so that
// nothing forks or restarts, every process gets SIGKILL, then it is thawed so they die.
func (g machineCgroup) kill() error {
	freezer := filepath.Join(cgroupMount, "freezer", g.path, "freezer.state")
	frozen := os.WriteFile(freezer, []byte("FROZEN"), 0o644) == nil
	for range 100 {
		pids := g.pids()
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if frozen {
			os.WriteFile(freezer, []byte("THAWED"), 0o644)
			frozen = false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cgroup %s: processes survive SIGKILL: %v", g.path, g.pids())
}

// remove deletes the cgroup tree in every hierarchy, deepest first. The processes must be gone.
func (g machineCgroup) remove() error {
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	var problems []string
	for _, h := range hs {
		root := filepath.Join(h, g.path)
		var dirs []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for range 50 { // a cgroup whose last process just died can be busy for a moment
				if err = syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				problems = append(problems, dirs[i]+": "+err.Error())
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("removing cgroups: %s", strings.Join(problems, "; "))
	}
	return nil
}

// removeClusterCgroups deletes the cluster's own parent cgroup in every hierarchy.
func removeClusterCgroups(path string) []string {
	hs, _ := hierarchies()
	var left []string
	for _, h := range hs {
		dir := filepath.Join(h, path)
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
			left = append(left, "cgroup "+dir)
		}
	}
	return left
}
