package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The benchmarks time the terraform CLI with the built provider, as a user runs it, for a cluster of
// three controllers and 100 or 1,000 workers, and report the state's size. `make bench` runs them.

var benchWorkers = []int{100, 1000}

// scaleConfig is a liftoff_cluster with three controllers and n workers; pool labels worker 0.
func scaleConfig(n int, pool string) string { return scaleConfigOn(n, pool, "") }

// scaleConfigOn is scaleConfig with more arguments, like a platform.
func scaleConfigOn(n int, pool, more string) string {
	var b strings.Builder
	b.WriteString(requiredProviders)
	b.WriteString(`
resource "liftoff_cluster" "scale" {
  name         = "scale"
  api_server   = "https://10.0.0.10:6443"
  pod_cidr     = "10.128.0.0/10"
  service_cidr = "10.3.0.0/16"
  controllers = {
    c1 = { ip = "10.0.0.11", mac = "52:54:00:00:00:11" }
    c2 = { ip = "10.0.0.12", mac = "52:54:00:00:00:12" }
    c3 = { ip = "10.0.0.13", mac = "52:54:00:00:00:13" }
  }
  workers = {
`)
	for i := range n {
		labels := ""
		if i == 0 {
			labels = fmt.Sprintf(", labels = { pool = %q }", pool)
		}
		fmt.Fprintf(&b, "    w%d = { ip = \"10.1.%d.%d\", mac = \"52:54:01:00:%02x:%02x\"%s }\n", i, i/250, i%250+1, i/256, i%256, labels)
	}
	b.WriteString("  }\n")
	b.WriteString(more)
	b.WriteString("}\n")
	return b.String()
}

// anchorConfig is the same machines as scaleConfig written the way Typhoon writes workers: a Butane
// template rendered with templatefile and translated by one data source per worker (ct_config
// there, liftoff_butane here, which does the same translation).
func anchorConfig(n int, pool string) string {
	var b strings.Builder
	b.WriteString(requiredProviders)
	b.WriteString("locals {\n  workers = {\n")
	for i := range n {
		labels := ""
		if i == 0 {
			labels = fmt.Sprintf("%q", "pool="+pool)
		}
		fmt.Fprintf(&b, "    w%d = { ip = \"10.1.%d.%d\", labels = [%s] }\n", i, i/250, i%250+1, labels)
	}
	b.WriteString(`  }
}

data "liftoff_butane" "worker" {
  for_each = local.workers
  content  = templatefile("${path.module}/worker.yaml", { name = each.key, ip = each.value.ip, labels = each.value.labels })
}
`)
	return b.String()
}

func writeConfig(b *testing.B, dir, config string) {
	b.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		b.Fatal(err)
	}
}

func reportStateSize(b *testing.B, dir string) {
	b.Helper()
	info, err := os.Stat(filepath.Join(dir, "terraform.tfstate"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(info.Size())/1e6, "state-MB")
}

// BenchmarkTerraformApply times the first apply: every key generated, every machine rendered.
func BenchmarkTerraformApply(b *testing.B) {
	for _, n := range benchWorkers {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			writeConfig(b, dir, scaleConfig(n, "a"))
			w := newWorkdir(b, dir)
			for b.Loop() {
				b.StopTimer()
				os.Remove(filepath.Join(dir, "terraform.tfstate"))
				b.StartTimer()
				w.must("apply", "-auto-approve")
			}
			reportStateSize(b, dir)
		})
	}
}

// timePlans applies the configuration in dir, then times plans with nothing to do and reports
// the state's size.
func timePlans(b *testing.B, dir string) {
	b.Helper()
	w := newWorkdir(b, dir)
	w.must("apply", "-auto-approve")
	for b.Loop() {
		if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
			b.Fatalf("plan exited %d:\n%s", code, out)
		}
	}
	reportStateSize(b, dir)
}

// BenchmarkTerraformPlan times a plan with nothing to do: the cluster is re-rendered with the key
// material in state and found unchanged.
func BenchmarkTerraformPlan(b *testing.B) {
	for _, n := range benchWorkers {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			writeConfig(b, dir, scaleConfig(n, "a"))
			timePlans(b, dir)
		})
	}
}

// BenchmarkTerraformPlanAnchor is BenchmarkTerraformPlan for the same workers written the way
// Typhoon writes them (anchorConfig): the figure liftoff_cluster's plan is measured against.
func BenchmarkTerraformPlanAnchor(b *testing.B) {
	for _, n := range benchWorkers {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			writeConfig(b, dir, anchorConfig(n, "a"))
			template, err := os.ReadFile(filepath.Join("testdata", "anchor", "worker.yaml"))
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "worker.yaml"), template, 0o644); err != nil {
				b.Fatal(err)
			}
			timePlans(b, dir)
		})
	}
}

// BenchmarkTerraformPlanMatchbox is BenchmarkTerraformPlan for a bare-metal cluster, whose state
// also holds the matchbox groups, profiles and install configs.
func BenchmarkTerraformPlanMatchbox(b *testing.B) {
	// matchbox serves configs to whoever asks, so the machines fetch their secrets from liftoff.
	more := `  platform = { matchbox = { matchbox_http_endpoint = "http://matchbox.example.com:8080", os_version = "4230.2.3" } }
  machine_secrets = { server = "10.0.0.2:9443" }
`
	dir := b.TempDir()
	writeConfig(b, dir, scaleConfigOn(1000, "a", more))
	timePlans(b, dir)
}

// BenchmarkTerraformPlanRoleConfigs is BenchmarkTerraformPlan for machines that merge their roles'
// configs from role_config_url: state holds each role's config once and each machine's own files.
func BenchmarkTerraformPlanRoleConfigs(b *testing.B) {
	more := `  machine_secrets = { server = "10.0.0.2:9443" }
  role_config_url = "https://configs.example.com/scale/{role}.ign"
`
	dir := b.TempDir()
	writeConfig(b, dir, scaleConfigOn(1000, "a", more))
	timePlans(b, dir)
}

// BenchmarkTerraformApplyOneWorker times an apply that changes one worker's labels: plan, apply
// and the state written back.
func BenchmarkTerraformApplyOneWorker(b *testing.B) {
	for _, n := range benchWorkers {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			writeConfig(b, dir, scaleConfig(n, "a"))
			w := newWorkdir(b, dir)
			w.must("apply", "-auto-approve")
			pools := []string{"b", "a"}
			i := 0
			for b.Loop() {
				b.StopTimer()
				writeConfig(b, dir, scaleConfig(n, pools[i%2]))
				i++
				b.StartTimer()
				out := w.must("apply", "-auto-approve")
				if !strings.Contains(out, "1 changed") {
					b.Fatalf("apply changed something else than one resource:\n%s", out)
				}
			}
			reportStateSize(b, dir)
		})
	}
}
