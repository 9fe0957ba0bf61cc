package harness

import (
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/liftoff-k8s/liftoff/harness/proc"
)

// Memory is the resident memory of a running cluster.
type Memory struct {
	// Processes maps each program the machines run ("etcd", "kubelet", "containerd",
	// "kube-apiserver", ...) to the sum of its instances' resident set sizes, in bytes.
	Processes map[string]int64
	// Count is how many processes that is.
	Count int
	// Harness is the harness's own process, which holds the load balancer and the release host
	// (and, in tests, the test itself).
	Harness int64
}

// Total is the sum of every process's resident set size, the harness's included.
func (m Memory) Total() int64 {
	t := m.Harness
	for _, v := range m.Processes {
		t += v
	}
	return t
}

// String lists the figures in MiB, largest first.
func (m Memory) String() string {
	names := make([]string, 0, len(m.Processes))
	for n := range m.Processes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return m.Processes[names[i]] > m.Processes[names[j]] })
	var parts []string
	for _, n := range names {
		parts = append(parts, n+" "+mib(m.Processes[n]))
	}
	parts = append(parts, "harness process "+mib(m.Harness))
	return "total " + mib(m.Total()) + " in " + strconv.Itoa(m.Count+1) + " processes: " + strings.Join(parts, ", ")
}

// Memory measures the resident memory of every process of the cluster now: everything in the
// machines' cgroups (units, containerd's shims, containers).
func (c *Cluster) Memory() Memory {
	m := Memory{Processes: map[string]int64{}, Harness: proc.RSS(os.Getpid())}
	for _, mc := range c.machines {
		for _, pid := range mc.cgroup.pids() {
			m.Processes[proc.Program(pid)] += proc.RSS(pid)
			m.Count++
		}
	}
	return m
}

func mib(b int64) string { return strconv.FormatInt(b>>20, 10) + " MiB" }
