package vagrant

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/liftoff-k8s/liftoff/spec"
)

// Defaults of the platform block.
const (
	DefaultFlatcarBox       = "flatcar-stable"
	DefaultFCOSBox          = "fedora-coreos-stable"
	DefaultControllerCPUs   = 2
	DefaultControllerMemory = 4096 // MiB
	DefaultWorkerCPUs       = 2
	DefaultWorkerMemory     = 2048 // MiB
	minMemory               = 1024
)

// settings are the platform block with defaults applied.
type settings struct {
	box, boxURL, boxVersion string
	cpus, memory            map[string]int // by role
}

// Settings are the platform block, `platform "vagrant" {}`: local virtual machines described by a
// Vagrantfile.
type Settings struct {
	Box              string `hcl:"box,optional"`
	BoxURL           string `hcl:"box_url,optional"`
	BoxVersion       string `hcl:"box_version,optional"`
	ControllerCPUs   int    `hcl:"controller_cpus,optional"`
	ControllerMemory int    `hcl:"controller_memory,optional"`
	WorkerCPUs       int    `hcl:"worker_cpus,optional"`
	WorkerMemory     int    `hcl:"worker_memory,optional"`
}

// Docs describes each setting, in Markdown.
func (Settings) Docs() map[string]string {
	return map[string]string{
		"box":               "The Vagrant box every machine boots; it must be one of the cluster's OS.",
		"box_url":           "Where to fetch the box.",
		"box_version":       "The box's version.",
		"controller_cpus":   "CPUs per controller.",
		"controller_memory": "Memory per controller (MiB).",
		"worker_cpus":       "CPUs per worker.",
		"worker_memory":     "Memory per worker (MiB).",
	}
}

func settingsOf(c *spec.Cluster) settings {
	p := c.Platform.Settings.(*Settings)
	s := settings{box: p.Box, boxURL: p.BoxURL, boxVersion: p.BoxVersion}
	if s.box == "" {
		s.box = DefaultFlatcarBox
		if c.OS == spec.OSFCOS {
			s.box = DefaultFCOSBox
		}
	}
	or := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	s.cpus = map[string]int{spec.RoleController: or(p.ControllerCPUs, DefaultControllerCPUs), spec.RoleWorker: or(p.WorkerCPUs, DefaultWorkerCPUs)}
	s.memory = map[string]int{spec.RoleController: or(p.ControllerMemory, DefaultControllerMemory), spec.RoleWorker: or(p.WorkerMemory, DefaultWorkerMemory)}
	// A bootstrap machine runs what a controller does, for the pivot.
	s.cpus[spec.RoleBootstrap], s.memory[spec.RoleBootstrap] = s.cpus[spec.RoleController], s.memory[spec.RoleController]
	return s
}

// boxOS says which OS a box name is for, or "" when it names neither.
func boxOS(box string) string {
	b := strings.ToLower(box)
	switch {
	case strings.Contains(b, "flatcar"):
		return spec.OSFlatcar
	case strings.Contains(b, "fedora-coreos") || strings.Contains(b, "fcos"):
		return spec.OSFCOS
	}
	return ""
}

func field(setting string) spec.Path { return spec.PlatformField(spec.PlatformVagrant, setting) }

// Validate checks that the box is one of the cluster's OS and that the machines' sizes are usable.
func (Adapter) Validate(c *spec.Cluster) spec.Problems {
	var ps spec.Problems
	add := func(field spec.Path, summary, detail string, args ...any) {
		ps = append(ps, spec.Problem{Path: field, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	s := settingsOf(c)
	def := DefaultFlatcarBox
	if c.OS == spec.OSFCOS {
		def = DefaultFCOSBox
	}
	switch got := boxOS(s.box); {
	case strings.ContainsAny(s.box, " \t\n"):
		add(field("box"), "Invalid box name", "%q: a box name has no spaces", s.box)
	case got == "":
		add(field("box"), "Box of an unknown OS", "%q does not name Flatcar or Fedora CoreOS, and the cluster runs %s, which must boot %s's Ignition configs; use a box such as %s", s.box, c.OS, c.OS, def)
	case got != c.OS:
		add(field("box"), "Box of another OS", "%q is a %s box, but the cluster runs %s (cluster.os); use a box such as %s", s.box, got, c.OS, def)
	}
	if s.boxURL != "" {
		if u, err := url.Parse(s.boxURL); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") || (u.Host == "" && u.Scheme != "file") {
			add(field("box_url"), "Invalid box URL", "%q must be an https://, http:// or file:// URL", s.boxURL)
		}
	}
	for _, role := range []string{spec.RoleController, spec.RoleWorker} {
		if n := s.cpus[role]; n < 1 || n > 256 {
			add(field(role+"_cpus"), "Invalid CPU count", "%d: a machine has 1 to 256 CPUs", n)
		}
		if m := s.memory[role]; m < minMemory || m > 1<<20 {
			add(field(role+"_memory"), "Invalid memory size", "%d MiB: a %s needs at least %d MiB (and at most 1 TiB)", m, role, minMemory)
		}
	}
	return ps
}
