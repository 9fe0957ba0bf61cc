package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/liftoff-k8s/liftoff/internal/versions"
)

// The provider's tests drive the real terraform CLI: through terraform-plugin-testing with the
// provider served in-process, or, for the example and the benchmarks, with the provider binary
// built from cmd/terraform-provider-liftoff and found through a development override.

// buildDir holds binaries the tests build once per run; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// terraformBinary returns the terraform CLI and points terraform-plugin-testing at it, so nothing is
// downloaded. Without terraform the test fails: these tests are the provider's only proof.
func terraformBinary(t testing.TB) string {
	t.Helper()
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("the provider's tests run the terraform CLI, and there is none on PATH (%v): install terraform %s "+
			"and put it on PATH", err, versions.Terraform)
	}
	os.Setenv("TF_ACC_TERRAFORM_PATH", tf)
	os.Setenv("TF_ACC", "1") // terraform-plugin-testing skips acceptance tests without it
	os.Setenv("CHECKPOINT_DISABLE", "1")
	return tf
}

// testClock is the provider's clock in tests; steps move it to reach a renewal window.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// warningLog records the warnings the provider returns from plans.
type warningLog struct {
	mu       sync.Mutex
	warnings []string
}

func (l *warningLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.warnings
	l.warnings = nil
	return w
}

// recordingServer is the real provider server; it notes the warnings of each plan on their way to terraform.
type recordingServer struct {
	tfprotov6.ProviderServer
	log *warningLog
}

func (s recordingServer) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	resp, err := s.ProviderServer.PlanResourceChange(ctx, req)
	if resp != nil {
		s.log.mu.Lock()
		for _, d := range resp.Diagnostics {
			if d.Severity == tfprotov6.DiagnosticSeverityWarning {
				s.log.warnings = append(s.log.warnings, d.Summary+": "+d.Detail)
			}
		}
		s.log.mu.Unlock()
	}
	return resp, err
}

// factories serves the provider in-process with clock as its clock.
func factories(clock *testClock, log *warningLog) map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"liftoff": func() (tfprotov6.ProviderServer, error) {
			server, err := providerserver.NewProtocol6WithError(&Provider{version: "test", now: clock.Now})()
			if err != nil || log == nil {
				return server, err
			}
			return recordingServer{ProviderServer: server, log: log}, nil
		},
	}
}

var (
	buildMu    sync.Mutex
	built      = map[string]string{}
	buildError = map[string]error{}
)

// goBuild builds a command of this module once per test run and returns the binary's directory.
func goBuild(t testing.TB, pkg, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if dir, ok := built[pkg]; ok {
		return dir
	}
	if err, ok := buildError[pkg]; ok {
		t.Fatal(err)
	}
	if buildDir == "" {
		var err error
		if buildDir, err = os.MkdirTemp("", "liftoff-provider-test-"); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		buildError[pkg] = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		t.Fatal(buildError[pkg])
	}
	built[pkg] = dir
	return dir
}

// providerBinary builds terraform-provider-liftoff and returns a terraform CLI config file whose
// development override makes terraform use it.
func providerBinary(t testing.TB) (cliConfig string) {
	t.Helper()
	dir := goBuild(t, "github.com/liftoff-k8s/liftoff/cmd/terraform-provider-liftoff", "terraform-provider-liftoff")
	cliConfig = filepath.Join(dir, "terraformrc")
	rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n", "liftoff-k8s/liftoff", dir)
	if err := os.WriteFile(cliConfig, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	return cliConfig
}

// requiredProviders makes a configuration use liftoff from its registry address, which the
// development override resolves to the built binary.
const requiredProviders = `
terraform {
  required_providers {
    liftoff = { source = "liftoff-k8s/liftoff" }
  }
}
`

// workdir is a terraform working directory driven by the terraform CLI and the built provider.
type workdir struct {
	t   testing.TB
	tf  string
	dir string
	env []string
}

func newWorkdir(t testing.TB, dir string) *workdir {
	t.Helper()
	tf := terraformBinary(t)
	cfg := providerBinary(t)
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+cfg, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_INPUT=0")
	return &workdir{t: t, tf: tf, dir: dir, env: env}
}

// run runs terraform and returns its output and exit code; it fails the test if terraform could not run.
func (w *workdir) run(args ...string) (string, int) {
	w.t.Helper()
	cmd := exec.Command(w.tf, append(args, "-no-color")...)
	cmd.Dir = w.dir
	cmd.Env = w.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	case err != nil:
		w.t.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), 0
}

// must runs terraform and fails the test unless it succeeds.
func (w *workdir) must(args ...string) string {
	w.t.Helper()
	out, code := w.run(args...)
	if code != 0 {
		w.t.Fatalf("terraform %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}
