package platforms_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// liftoff builds the real CLI once per test binary.
func liftoff(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "liftoff-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "liftoff")
		out, err := exec.Command("go", "build", "-o", cliPath, "github.com/liftoff-k8s/liftoff/cmd/liftoff").CombinedOutput()
		if err != nil {
			cliErr = fmt.Errorf("go build ./cmd/liftoff: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cliPath != "" {
		os.RemoveAll(filepath.Dir(cliPath))
	}
	os.Exit(code)
}

// render runs `liftoff render` and returns its exit status and stderr.
func render(t *testing.T, specPath, out string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), liftoff(t), "render", "--spec", specPath, "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stderr.String()
		}
		t.Fatal(err)
	}
	return 0, stderr.String()
}

const (
	matchboxBlock = `platform "matchbox" {
    matchbox_http_endpoint = "http://matchbox.example.com:8080"
    os_version = "4230.2.3"
  }`
	awsBlock = `platform "aws" {
    region = "eu-central-1"
    bucket = "liftoff-test-configs"
    etcd_volume_ids = { c1 = "vol-0123456789abcdef0" }
  }`
)

// TestCLIRefusesBadPlatformInput runs the real CLI on specs whose platform input the platform
// would refuse, and checks that each is reported at the file, line and field the user wrote, and
// that nothing is written: neither a new output directory nor a change to an existing one.
func TestCLIRefusesBadPlatformInput(t *testing.T) {
	tests := []struct {
		name string
		src  string
		// at is text on the line the error must point at; field and summary are what it must say.
		at, field, summary string
	}{
		{
			name:    "bare metal machine without MAC",
			src:     strings.Replace(testcluster.Spec("flatcar", matchboxBlock, 1, 2, ""), "    mac = \"52:54:00:01:00:01\"\n", "", 1),
			at:      `worker "w2" {`,
			field:   "worker.w2.mac",
			summary: "Missing MAC address",
		},
		{
			name:    "bare metal install disk",
			src:     strings.Replace(testcluster.Spec("flatcar", matchboxBlock, 1, 1, ""), `os_version = "4230.2.3"`, "os_version = \"4230.2.3\"\n    install_disk = \"sda\"", 1),
			at:      `install_disk = "sda"`,
			field:   "platform.matchbox.install_disk",
			summary: "Invalid install disk",
		},
		{
			name:    "bare metal release of another OS",
			src:     testcluster.Spec("fcos", matchboxBlock, 1, 1, ""),
			at:      `os_version = "4230.2.3"`,
			field:   "platform.matchbox.os_version",
			summary: "Invalid Fedora CoreOS version",
		},
		{
			name:    "bare metal without OS version",
			src:     strings.Replace(testcluster.Spec("flatcar", matchboxBlock, 1, 1, ""), `os_version = "4230.2.3"`, "", 1),
			at:      `platform "matchbox" {`,
			summary: `Missing required argument`,
		},
		{
			name:    "unknown instance type format",
			src:     strings.Replace(testcluster.Spec("flatcar", awsBlock, 1, 1, ""), `region = "eu-central-1"`, "region = \"eu-central-1\"\n    worker_instance_type = \"m6i-large\"", 1),
			at:      `worker_instance_type = "m6i-large"`,
			field:   "platform.aws.worker_instance_type",
			summary: "Invalid instance type",
		},
		{
			name:    "instance type of another architecture",
			src:     strings.Replace(testcluster.Spec("flatcar", awsBlock, 1, 1, ""), `region = "eu-central-1"`, "region = \"eu-central-1\"\n    controller_instance_type = \"m7g.large\"", 1),
			at:      `controller_instance_type = "m7g.large"`,
			field:   "platform.aws.controller_instance_type",
			summary: "Instance type of another architecture",
		},
		{
			name:    "bucket name with capitals",
			src:     strings.Replace(testcluster.Spec("flatcar", awsBlock, 1, 1, ""), `"liftoff-test-configs"`, `"Liftoff_Configs"`, 1),
			at:      `bucket = "Liftoff_Configs"`,
			field:   "platform.aws.bucket",
			summary: "Invalid S3 bucket name",
		},
		{
			name:    "bucket name like an IP address",
			src:     strings.Replace(testcluster.Spec("flatcar", awsBlock, 1, 1, ""), `"liftoff-test-configs"`, `"192.168.10.1"`, 1),
			at:      `bucket = "192.168.10.1"`,
			field:   "platform.aws.bucket",
			summary: "Invalid S3 bucket name",
		},
		{
			name:    "bucket name with a reserved suffix",
			src:     strings.Replace(testcluster.Spec("flatcar", awsBlock, 1, 1, ""), `"liftoff-test-configs"`, `"configs-s3alias"`, 1),
			at:      `bucket = "configs-s3alias"`,
			field:   "platform.aws.bucket",
			summary: "Invalid S3 bucket name",
		},
		{
			name:    "etcd volume of an unknown controller",
			src:     strings.Replace(testcluster.Spec("flatcar", awsBlock, 1, 1, ""), `c1 = "vol-0123456789abcdef0" }`, "c1 = \"vol-0123456789abcdef0\",\n      c9 = \"vol-0123456789abcdef1\" }", 1),
			at:      `c9 = "vol-0123456789abcdef1"`,
			field:   `platform.aws.etcd_volume_ids["c9"]`,
			summary: "Volume for an unknown controller",
		},
		{
			name:    "controller without etcd volume",
			src:     testcluster.Spec("flatcar", awsBlock, 3, 1, ""),
			at:      `etcd_volume_ids = {`,
			field:   "platform.aws.etcd_volume_ids",
			summary: "Missing etcd volume",
		},
		{
			name:    "box of another OS",
			src:     testcluster.Spec("fcos", `platform "vagrant" { box = "flatcar-stable" }`, 1, 1, ""),
			at:      `box = "flatcar-stable"`,
			field:   "platform.vagrant.box",
			summary: "Box of another OS",
		},
		{
			name:    "box of no known OS",
			src:     testcluster.Spec("flatcar", `platform "vagrant" { box = "ubuntu/jammy64" }`, 1, 1, ""),
			at:      `box = "ubuntu/jammy64"`,
			field:   "platform.vagrant.box",
			summary: "Box of an unknown OS",
		},
		{
			name:    "too little memory",
			src:     testcluster.Spec("flatcar", `platform "vagrant" { controller_memory = 512 }`, 1, 1, ""),
			at:      `controller_memory = 512`,
			field:   "platform.vagrant.controller_memory",
			summary: "Invalid memory size",
		},
		{
			name:    "unknown platform",
			src:     testcluster.Spec("flatcar", `platform "gce" { project = "x" }`, 1, 1, ""),
			at:      `platform "gce" {`,
			summary: "Unknown platform",
		},
		{
			name:    "setting of another platform",
			src:     testcluster.Spec("flatcar", `platform "vagrant" { bucket = "liftoff-configs" }`, 1, 1, ""),
			at:      `bucket = "liftoff-configs"`,
			summary: "Unsupported argument",
		},
	}

	// An earlier render that a refused one must leave as it was.
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	writeFile(t, good, testcluster.Spec("flatcar", matchboxBlock, 1, 1, ""))
	existing := filepath.Join(dir, "existing")
	if code, stderr := render(t, good, existing); code != 0 {
		t.Fatalf("rendering a good spec failed:\n%s", stderr)
	}
	before := snapshot(t, existing)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specPath := filepath.Join(t.TempDir(), "cluster.hcl")
			writeFile(t, specPath, tt.src)
			line := lineOf(t, tt.src, tt.at)
			for _, out := range []string{filepath.Join(t.TempDir(), "fresh"), existing} {
				code, stderr := render(t, specPath, out)
				if code == 0 {
					t.Fatalf("liftoff render accepted the spec:\n%s", tt.src)
				}
				for _, want := range []string{fmt.Sprintf("on %s line %d", specPath, line), "Error: " + tt.summary} {
					if !strings.Contains(stderr, want) {
						t.Errorf("output lacks %q:\n%s", want, stderr)
					}
				}
				if tt.field != "" && !strings.Contains(stderr, "Field "+tt.field+":") {
					t.Errorf("output does not name field %s:\n%s", tt.field, stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(specPath), "fresh")); err == nil {
				t.Error("a refused render created its output directory")
			}
			if after := snapshot(t, existing); after != before {
				t.Error("a refused render changed an existing output directory")
			}
		})
	}
}

// TestCLIWritesPlatformFiles renders every example with the real CLI and checks that index.json
// lists the platform's files with their own kinds, machines and roles: a matchbox data directory
// also serves each role's shared config, which belongs to the role and no machine, and an install
// stage per install disk, which belongs to neither.
func TestCLIWritesPlatformFiles(t *testing.T) {
	tests := []struct {
		example string
		// kinds are the platform kinds expected with how many files each.
		kinds map[generator.Kind]int
	}{
		{"bare-metal", map[generator.Kind]int{"matchbox-group": 12, "matchbox-profile": 9, "matchbox-ignition": 9, "role-ignition": 2}},
		{"aws", map[generator.Kind]int{"user-data": 6, "aws-ignition-object": 6, "aws-manifest": 1}},
		{"vagrant", map[generator.Kind]int{"vagrantfile": 1, "vagrant-ignition": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.example, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out")
			if code, stderr := render(t, filepath.Join("..", "examples", tt.example, "cluster.hcl"), out); code != 0 {
				t.Fatalf("liftoff render failed:\n%s", stderr)
			}
			var idx generator.Index
			if err := json.Unmarshal(readFile(t, filepath.Join(out, generator.IndexPath)), &idx); err != nil {
				t.Fatal(err)
			}
			got := map[generator.Kind]int{}
			for _, e := range idx.Assets {
				if _, ok := tt.kinds[e.Kind]; !ok {
					continue
				}
				got[e.Kind]++
				if _, err := os.Stat(filepath.Join(out, e.Path)); err != nil {
					t.Errorf("index.json lists %s, which is not written: %v", e.Path, err)
				}
				// Shared matchbox files: a role's (metal.worker) and an install disk's (metal.install-...).
				shared := strings.HasPrefix(path.Base(e.Path), "metal.")
				perRole := e.Kind != "aws-manifest" && e.Kind != "vagrantfile" && !strings.HasPrefix(path.Base(e.Path), "metal.install-")
				perMachine := perRole && e.Kind != "role-ignition" && !shared
				if perRole && e.Role == "" {
					t.Errorf("%s (%s) names no role", e.Path, e.Kind)
				}
				if perMachine && e.Node == "" {
					t.Errorf("%s (%s) names no machine", e.Path, e.Kind)
				}
			}
			for kind, n := range tt.kinds {
				if got[kind] != n {
					t.Errorf("index.json lists %d files of kind %s, want %d", got[kind], kind, n)
				}
			}
		})
	}
}

// snapshot is the index and every file's bytes of an output directory, for comparison.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v\n", path, info.Mode())
		if info.Mode().IsRegular() {
			b.Write(readFile(t, path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func lineOf(t *testing.T, src, text string) int {
	t.Helper()
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%q is not in the spec:\n%s", text, src)
	return 0
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
