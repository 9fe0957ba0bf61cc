package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/internal/versions"
)

// TestRealProgramsReportPinnedVersions builds (or finds) the real Ignition and etcd and checks that
// they are the releases internal/versions pins.
func TestRealProgramsReportPinnedVersions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"ignition", []string{"-version"}, "Ignition " + versions.Ignition},
		{"etcd", []string{"--version"}, "etcd Version: " + strings.TrimPrefix(versions.Etcd, "v")},
		{"etcdctl", []string{"version"}, "etcdctl version: " + strings.TrimPrefix(versions.Etcd, "v")},
		{"kube-apiserver", []string{"--version"}, "Kubernetes " + versions.Kubernetes},
		{"kubelet", []string{"--version"}, "Kubernetes " + versions.Kubernetes},
		{"kube-proxy", []string{"--version"}, "Kubernetes " + versions.Kubernetes},
		{"coredns", []string{"-version"}, "CoreDNS-" + strings.TrimPrefix(versions.CoreDNS, "v")},
		{"flanneld", []string{"--version"}, versions.Flannel},
		// A CNI plugin run without CNI_COMMAND says what it is.
		{"flannel", nil, "CNI flannel plugin " + versions.FlannelCNIPluginSource},
		{"bridge", nil, "CNI bridge plugin " + versions.CNIPlugins},
		{"portmap", nil, "CNI portmap plugin " + versions.CNIPlugins},
		{"kube-bench", []string{"version"}, versions.KubeBench},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := MustPath(t, tt.name)
			if want := filepath.Join(tt.name+"-"+versionOf(t, tt.name), tt.name); !strings.HasSuffix(bin, want) {
				t.Errorf("path %s does not end in %s", bin, want)
			}
			out, err := exec.CommandContext(t.Context(), bin, tt.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", bin, strings.Join(tt.args, " "), err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("%s %s printed %q, want it to contain %q", tt.name, strings.Join(tt.args, " "), out, tt.want)
			}
		})
	}
}

// TestKubeBenchHasItsBenchmarks checks that kube-bench is installed with the benchmark definitions
// of its own release.
func TestKubeBenchHasItsBenchmarks(t *testing.T) {
	dir := KubeBenchConfigDir(MustPath(t, "kube-bench"))
	for _, f := range []string{"config.yaml", "cis-1.11/config.yaml", "cis-1.11/master.yaml", "cis-1.11/node.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func versionOf(t *testing.T, name string) string {
	t.Helper()
	r, err := recipeOf(name)
	if err != nil {
		t.Fatal(err)
	}
	return r.version
}

func TestEveryNameHasOneRecipe(t *testing.T) {
	want := []string{"ignition", "etcd", "etcdctl", "etcdutl", "kube-apiserver", "kube-controller-manager",
		"kube-scheduler", "kube-proxy", "kubelet", "matchbox", "terraform-provider-matchbox",
		"coredns", "flanneld", "flannel"}
	want = append(want, "dhcp", "host-local", "static", "bridge", "dummy", "host-device", "ipvlan", "loopback",
		"macvlan", "ptp", "tap", "vlan", "bandwidth", "firewall", "portmap", "sbr", "tuning", "vrf", "kube-bench")
	got := Names()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	seen := map[string]bool{}
	for _, name := range got {
		if seen[name] {
			t.Errorf("%s is built by two recipes", name)
		}
		seen[name] = true
	}
	if _, err := Path(t.Context(), "kubectl"); err == nil || !strings.Contains(err.Error(), "known: ignition") {
		t.Errorf("Path(kubectl) error = %v, want one listing the known programs", err)
	}
	plugins := CNIPlugins()
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if !slices.Contains(plugins, p) {
			t.Errorf("CNIPlugins() = %v, lacks %s", plugins, p)
		}
	}
	if !slices.IsSorted(plugins) || len(plugins) != 18 {
		t.Errorf("CNIPlugins() = %v, want the 18 plugins of a release, sorted", plugins)
	}
}

// helloRecipe builds in a second or two, so the cache, lock and failure paths run for real.
func helloRecipe(src string) *recipe {
	return &recipe{
		name:     "hello",
		version:  "v0.0.1",
		mains:    map[string]string{"cmd/hello": src},
		programs: []program{{"hello", "./cmd/hello"}},
		ldflags:  []string{"-X main.greeting=built"},
		hint:     "check the hello program",
	}
}

const helloSource = `package main

import "fmt"

var greeting = "unset"

func main() { fmt.Println("hello", greeting) }
`

func TestConcurrentCallersShareOneBuild(t *testing.T) {
	root := t.TempDir()
	r := helloRecipe(helloSource)

	const callers = 4
	paths := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { paths[i], errs[i] = r.path(t.Context(), root, "hello") })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("caller %d got %s, caller 0 got %s", i, paths[i], paths[0])
		}
	}
	if want := filepath.Join(root, "bin", "hello-v0.0.1", "hello"); paths[0] != want {
		t.Errorf("path = %s, want %s", paths[0], want)
	}
	out, err := exec.Command(paths[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "hello built" {
		t.Errorf("hello printed %q, want the ldflags to have set %q", got, "hello built")
	}
	fi, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}

	// A cached binary is reused: no build, same file.
	again, err := r.path(t.Context(), root, "hello")
	if err != nil {
		t.Fatal(err)
	}
	fi2, err := os.Stat(again)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, fi2) || !fi.ModTime().Equal(fi2.ModTime()) {
		t.Errorf("second call rebuilt %s", again)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "build")); len(left) != 0 {
		t.Errorf("build directories left behind: %v", left)
	}
}

func TestFailedBuildReportsCompilerOutputAndLeavesNoBinary(t *testing.T) {
	root := t.TempDir()
	r := helloRecipe("package main\n\nfunc main() { undefinedThing() }\n")
	_, err := r.path(t.Context(), root, "hello")
	if err == nil {
		t.Fatal("a program that does not compile was built")
	}
	for _, want := range []string{"building hello v0.0.1", "undefined: undefinedThing", "hint: check the hello program"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if _, statErr := os.Stat(binPath(root, r, "hello")); !os.IsNotExist(statErr) {
		t.Errorf("a failed build left %s: %v", binPath(root, r, "hello"), statErr)
	}
}

func TestLockWaitStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lock(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	// flock locks belong to an open file, so a second open in this process must wait too.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, path); err == nil {
		t.Fatal("took a lock that is held")
	}
	if ctx.Err() == nil {
		t.Error("lock gave up before its context ended")
	}
}

// fatalRecorder is a testing.TB that records Fatalf instead of stopping the goroutine.
type fatalRecorder struct {
	testing.TB
	ctx     context.Context
	message string
}

func (f *fatalRecorder) Helper()                  {}
func (f *fatalRecorder) Context() context.Context { return f.ctx }
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.message = fmt.Sprintf(format, args...)
}

func TestMustPathFailsWithHowToBuild(t *testing.T) {
	rec := &fatalRecorder{ctx: t.Context()}
	MustPath(rec, "kubectl")
	for _, want := range []string{"kubectl is needed by this test", "make binaries", "unknown program"} {
		if !strings.Contains(rec.message, want) {
			t.Errorf("MustPath's failure does not say %q:\n%s", want, rec.message)
		}
	}
}
