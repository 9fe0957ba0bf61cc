package harness_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/spec"
)

// cisBenchmark is the CIS Kubernetes Benchmark that kube-bench runs: CIS Kubernetes Benchmark
// v1.11, written for Kubernetes 1.29 to 1.32, the newest for upstream Kubernetes that kube-bench
// versions.KubeBench has. None is written for a newer Kubernetes yet, so kube-bench is told which
// to run rather than left to guess from the cluster's version.
const cisBenchmark = "cis-1.11"

// kubeBenchDir is where the test installs kube-bench on a machine, as an operator would put a
// tool on an immutable OS: under /opt.
const kubeBenchDir = "/opt/kube-bench"

// cisTargets are the benchmark's sections run on a machine of each role. A FAIL in any of them
// fails the test; a WARN is a check that kube-bench cannot decide alone (docs/security.md says why
// each one is accepted).
var cisTargets = map[string][]string{
	spec.RoleController: {"master", "etcd", "controlplane", "node"},
	spec.RoleWorker:     {"node"},
}

// A cisExclusion is a check of the benchmark that does not apply to liftoff's design, and why.
type cisExclusion struct{ id, reason string }

// cisNotApplicable are passed to kube-bench's --skip, which reports them as INFO; docs/security.md
// lists them too.
var cisNotApplicable = []cisExclusion{
	{"1.1.3", "a self-hosted controller-manager is a Deployment: its pod specification is an API object, no file on the controller"},
	{"1.1.4", "a self-hosted controller-manager is a Deployment: its pod specification is an API object, no file on the controller"},
	{"1.1.5", "a self-hosted scheduler is a Deployment: its pod specification is an API object, no file on the controller"},
	{"1.1.6", "a self-hosted scheduler is a Deployment: its pod specification is an API object, no file on the controller"},
}

// TestKubeBenchConfig checks without a cluster what testCISBenchmark checks before it runs: that
// its kube-bench configuration changes only where kube-bench looks, and that docs/security.md lists
// every check it skips; and that the machine's ps is a valid script.
func TestKubeBenchConfig(t *testing.T) {
	kubeBenchConfig(t, testbin.KubeBenchConfigDir(testbin.MustPath(t, "kube-bench")))
	checkNotApplicableDocumented(t)
	if out, err := exec.Command("/bin/sh", "-n", "testdata/kube-bench/ps").CombinedOutput(); err != nil {
		t.Errorf("testdata/kube-bench/ps: %v\n%s", err, out)
	}
}

// cisComponents are the pods (by their k8s-app label) whose processes kube-bench reads on a
// machine of each role: the machine benchmarked must run them all.
var cisComponents = map[string][]string{
	spec.RoleController: {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"},
	spec.RoleWorker:     {"kube-proxy"},
}

// testCISBenchmark runs the CIS Kubernetes Benchmark with the real kube-bench on a controller and a
// worker of a running cluster, and fails on any FAIL, naming each failing check with what it
// found and its remediation.
func testCISBenchmark(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	kubeBench := testbin.MustPath(t, "kube-bench")
	cfg := kubeBenchConfig(t, testbin.KubeBenchConfigDir(kubeBench))
	checkNotApplicableDocumented(t)
	cisDoc := cisSection(t)
	for _, role := range []string{spec.RoleController, spec.RoleWorker} {
		m := cisMachine(t, c, client, role)
		t.Run(m.Name, func(t *testing.T) {
			waitForPodSpecFile(t, c, m)
			start := time.Now()
			report := runKubeBench(t, m, kubeBench, cfg, cisTargets[m.Role])
			t.Logf("kube-bench %s %s on %s: %s", versions.KubeBench, cisBenchmark, m.Name, time.Since(start).Round(100*time.Millisecond))
			for _, s := range report.Controls {
				t.Logf("%s %s: %d PASS, %d FAIL, %d WARN, %d INFO", s.ID, s.NodeType, s.Pass, s.Fail, s.Warn, s.Info)
				cisResults.add(cisRow{Machine: m.Name, Section: s.ID + " " + s.NodeType, Pass: s.Pass, Fail: s.Fail, Warn: s.Warn, Info: s.Info})
			}
			for _, s := range report.Controls {
				for _, g := range s.Groups {
					for _, ch := range g.Checks {
						switch ch.Status {
						case "FAIL":
							t.Errorf("FAIL %s %s\n\tfound: %s\n\texpected: %s\n\tremediation: %s", ch.ID, ch.Text,
								ch.found(), ch.ExpectedResult, indent(ch.Remediation, "\t\t"))
						case "WARN":
							t.Logf("WARN %s %s: %s", ch.ID, ch.Text, cmp.Or(ch.Reason, oneLine(ch.ActualValue)))
							if !strings.Contains(cisDoc, "| "+ch.ID+" ") {
								t.Errorf("WARN %s %s is not explained in docs/security.md's CIS Kubernetes Benchmark section", ch.ID, ch.Text)
							}
						case "INFO":
							if !slices.ContainsFunc(cisNotApplicable, func(n cisExclusion) bool { return n.id == ch.ID }) {
								t.Logf("INFO %s %s: %s", ch.ID, ch.Text, ch.Reason)
							}
						}
					}
				}
			}
		})
	}
}

// cisMachine returns the first machine of role that runs every one of the role's cisComponents,
// Ready, waiting for one.
func cisMachine(t *testing.T, c *harness.Cluster, client kubernetes.Interface, role string) *harness.Machine {
	t.Helper()
	var found *harness.Machine
	untilTrue(t, t.Context(), 3*time.Minute, "a "+role+" running "+strings.Join(cisComponents[role], ", "), func() (bool, string) {
		var missing []string
		for _, m := range c.Machines() {
			if m.Role != role {
				continue
			}
			pods, err := client.CoreV1().Pods(metav1.NamespaceSystem).List(t.Context(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + m.Name})
			if err != nil {
				return false, err.Error()
			}
			var lacks []string
			for _, app := range cisComponents[role] {
				if !slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return p.Labels["k8s-app"] == app && harness.PodReady(&p) }) {
					lacks = append(lacks, app)
				}
			}
			if len(lacks) == 0 {
				found = m
				return true, ""
			}
			missing = append(missing, m.Name+" runs no Ready "+strings.Join(lacks, ", "))
		}
		return false, strings.Join(missing, "; ")
	})
	return found
}

// kubeBenchReport is what kube-bench --json writes.
type kubeBenchReport struct {
	Controls []struct {
		ID       string `json:"id"`
		Version  string `json:"version"`
		Text     string `json:"text"`
		NodeType string `json:"node_type"`
		Groups   []struct {
			ID     string           `json:"section"`
			Text   string           `json:"desc"`
			Checks []kubeBenchCheck `json:"results"`
		} `json:"tests"`
		Pass int `json:"total_pass"`
		Fail int `json:"total_fail"`
		Warn int `json:"total_warn"`
		Info int `json:"total_info"`
	}
}

// kubeBenchCheck is the result of one check of the benchmark.
type kubeBenchCheck struct {
	ID             string `json:"test_number"`
	Text           string `json:"test_desc"`
	Status         string `json:"status"`
	ActualValue    string `json:"actual_value"`
	ExpectedResult string `json:"expected_result"`
	Reason         string `json:"reason"`
	Remediation    string `json:"remediation"`
}

// kubeBenchConfig returns kube-bench's configuration directory for the test: kube-bench's own
// cfg/config.yaml and cfg/cis-1.11 from upstreamDir, with testdata/kube-bench/config.yaml as the
// benchmark's config.yaml (where liftoff keeps things) and testdata/kube-bench/etcd.yaml (the etcd
// checks reading etcd's configuration file too). It fails the test when either would change what
// kube-bench checks rather than only where.
func kubeBenchConfig(t *testing.T, upstreamDir string) map[string][]byte {
	t.Helper()
	read := func(p string) []byte {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	files := map[string][]byte{"config.yaml": read(filepath.Join(upstreamDir, "config.yaml"))}
	entries, err := os.ReadDir(filepath.Join(upstreamDir, cisBenchmark))
	if err != nil {
		t.Fatalf("kube-bench %s has no benchmark %s: %v", versions.KubeBench, cisBenchmark, err)
	}
	for _, e := range entries {
		files[path.Join(cisBenchmark, e.Name())] = read(filepath.Join(upstreamDir, cisBenchmark, e.Name()))
	}

	// The benchmark's own config.yaml is replaced, so it must hold no settings of kube-bench's.
	var own map[string]any
	if err := yaml.Unmarshal(files[path.Join(cisBenchmark, "config.yaml")], &own); err != nil || len(own) > 0 {
		t.Fatalf("kube-bench's %s/config.yaml has settings (%v, %v): merge them into testdata/kube-bench/config.yaml", cisBenchmark, own, err)
	}
	files[path.Join(cisBenchmark, "config.yaml")] = read("testdata/kube-bench/config.yaml")

	// testdata's etcd.yaml is kube-bench's with lines added, each marked: nothing else may differ.
	etcd := read("testdata/kube-bench/etcd.yaml")
	if got, want := unmarked(etcd), files[path.Join(cisBenchmark, "etcd.yaml")]; !bytes.Equal(got, want) {
		t.Fatalf("testdata/kube-bench/etcd.yaml differs from kube-bench %s's %s/etcd.yaml in more than its marked lines: "+
			"copy it again and mark each line added with %q", versions.KubeBench, cisBenchmark, etcdMark)
	}
	files[path.Join(cisBenchmark, "etcd.yaml")] = etcd
	return files
}

// etcdMark ends each line that testdata/kube-bench/etcd.yaml adds to kube-bench's.
const etcdMark = "  # liftoff: etcd's configuration file"

// unmarked is testdata/kube-bench/etcd.yaml without its header (the comment before the document
// start) and its marked lines: kube-bench's etcd.yaml.
func unmarked(data []byte) []byte {
	_, doc, _ := bytes.Cut(data, []byte("\n---\n"))
	var out bytes.Buffer
	out.WriteString("---\n")
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		if !strings.HasSuffix(sc.Text(), etcdMark) {
			out.WriteString(sc.Text() + "\n")
		}
	}
	return out.Bytes()
}

// checkNotApplicableDocumented fails the test unless docs/security.md's CIS section names each
// check the test skips.
func checkNotApplicableDocumented(t *testing.T) {
	t.Helper()
	section := cisSection(t)
	for _, n := range cisNotApplicable {
		if !strings.Contains(section, "| "+n.id+" ") {
			t.Errorf("docs/security.md's CIS Kubernetes Benchmark section does not list %s, which the test skips: %s", n.id, n.reason)
		}
	}
}

// cisSection is docs/security.md's CIS Kubernetes Benchmark section, which names every check the
// test skips and every WARN, each in a table row of its own.
func cisSection(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## CIS Kubernetes Benchmark\n")
	if !ok {
		t.Fatal("docs/security.md has no section \"## CIS Kubernetes Benchmark\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// runKubeBench installs kube-bench with the configuration files on machine m, runs the targets
// there and returns its report. kube-bench runs in a mount namespace of its own inside the
// machine's, where the machine's ps (testdata/kube-bench/ps) covers the host's.
func runKubeBench(t *testing.T, m *harness.Machine, kubeBench string, cfg map[string][]byte, targets []string) *kubeBenchReport {
	t.Helper()
	dir := filepath.Join(m.Root, kubeBenchDir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	install := map[string]string{kubeBench: "kube-bench", "/usr/bin/ps": "procps-ps", "testdata/kube-bench/ps": "ps"}
	for src, name := range install {
		if err := copyFile(src, filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range cfg {
		p := filepath.Join(dir, "cfg", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var skip []string
	for _, n := range cisNotApplicable {
		skip = append(skip, n.id)
	}
	results := path.Join(kubeBenchDir, "results.json")
	script := fmt.Sprintf("mount --bind %[1]s/ps /usr/bin/ps && PROCPS_PS=%[1]s/procps-ps exec %[1]s/kube-bench run "+
		"--config-dir %[1]s/cfg --benchmark %[2]s --targets %[3]s --skip %[4]s --json --outputfile %[5]s",
		kubeBenchDir, cisBenchmark, strings.Join(targets, ","), strings.Join(skip, ","), results)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := m.Exec(ctx, "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script)
	if err != nil {
		t.Fatalf("kube-bench on %s: %v", m.Name, err)
	}
	data, err := os.ReadFile(filepath.Join(m.Root, filepath.FromSlash(results)))
	if err != nil {
		t.Fatalf("kube-bench on %s wrote no report: %v\n%s", m.Name, err, out)
	}
	var report kubeBenchReport
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatalf("kube-bench's report on %s: %v\n%s", m.Name, err, data)
	}
	var ran []string
	for _, s := range report.Controls {
		ran = append(ran, s.NodeType)
		if s.Version != cisBenchmark {
			t.Errorf("kube-bench ran %s section %s, want %s", s.Version, s.ID, cisBenchmark)
		}
	}
	if !slices.Equal(ran, targets) {
		t.Fatalf("kube-bench on %s ran %v, want %v\n%s", m.Name, ran, targets, out)
	}
	return &report
}

// expectedFlag matches a flag that a check's expected result names, such as '--bind-address'.
var expectedFlag = regexp.MustCompile(`'(--[A-Za-z0-9-]+)'`)

// found is what the check saw, short: for a check of a process's flags, each flag it names as the
// process has it, or that it has not.
func (ch kubeBenchCheck) found() string {
	var flags []string
	for _, m := range expectedFlag.FindAllStringSubmatch(ch.ExpectedResult, -1) {
		if !slices.Contains(flags, m[1]) {
			flags = append(flags, m[1])
		}
	}
	if len(flags) == 0 || !strings.Contains(ch.ActualValue, " --") {
		return oneLine(ch.ActualValue)
	}
	var out []string
	for _, f := range flags {
		set := regexp.MustCompile(`(?:^|\s)(`+regexp.QuoteMeta(f)+`(?:=\S*)?)`).FindAllStringSubmatch(ch.ActualValue, -1)
		if len(set) == 0 {
			out = append(out, f+" not set")
		}
		for _, m := range set {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
	}
	return strings.Join(out, " ")
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func indent(s, prefix string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+prefix)
}

// cisRow is one section of the benchmark on one machine, for the summary printed at the end.
type cisRow struct {
	Machine, Section       string
	Pass, Fail, Warn, Info int
}

var cisResults resultTable[cisRow]

// printCISTable writes the recorded sections as a table, or nothing when none ran.
func printCISTable(out io.Writer) {
	cisResults.print(out, fmt.Sprintf("CIS Kubernetes Benchmark (%s, kube-bench %s)", cisBenchmark, versions.KubeBench),
		"machine\tsection\tPASS\tFAIL\tWARN\tINFO", func(r cisRow) string {
			return fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d", r.Machine, r.Section, r.Pass, r.Fail, r.Warn, r.Info)
		})
}

// selfHostedAPIServerCheckpoint is the file the checkpointer keeps a self-hosted apiserver's pod in
// on its controller: the pod specification file kube-bench checks there
// (testdata/kube-bench/config.yaml).
var selfHostedAPIServerCheckpoint = path.Join(generator.HostCheckpointDir, "kube-system~daemonset~kube-apiserver.yaml")

// waitForPodSpecFile waits until a self-hosted controller's checkpointer has saved its apiserver's
// pod, which it does once the pod runs; a static controller's pod file is there from the start.
func waitForPodSpecFile(t *testing.T, c *harness.Cluster, m *harness.Machine) {
	t.Helper()
	if m.Role != spec.RoleController {
		return
	}
	if _, err := m.ReadFile(filepath.Join(generator.HostStaticPodDir, "kube-apiserver.yaml")); err == nil {
		return
	}
	untilTrue(t, t.Context(), 2*time.Minute, m.Name+"'s checkpointer saves its apiserver's pod", func() (bool, string) {
		_, err := m.ReadFile(selfHostedAPIServerCheckpoint)
		return err == nil, fmt.Sprint(err)
	})
}
