package provider

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// badSettings are settings the CLI and the provider must both refuse, written once as the CLI's
// HCL and once as liftoff_cluster's arguments.
var badSettings = []struct {
	name string
	// hcl goes inside the spec's cluster block; tf inside the resource block.
	hcl, tf string
	// attribute is the line terraform must point at: the offending argument as written.
	attribute string
}{
	{
		name:      "worker MAC",
		hcl:       "worker \"w1\" {\n    ip  = \"10.0.0.21\"\n    mac = \"52:54:00:zz:00:01\"\n  }",
		tf:        `workers = { w1 = { ip = "10.0.0.21", mac = "52:54:00:zz:00:01" } }`,
		attribute: `mac = "52:54:00:zz:00:01"`,
	},
	{
		name:      "pod CIDR with host bits",
		hcl:       `pod_cidr = "10.2.1.0/16"`,
		tf:        `pod_cidr = "10.2.1.0/16"`,
		attribute: `pod_cidr = "10.2.1.0/16"`,
	},
	{
		name:      "renewal window longer than certificates live",
		hcl:       `pki { renew_before = "9000h" }`,
		tf:        `renew_before = "9000h"`,
		attribute: `renew_before = "9000h"`,
	},
	{
		name: "worker label key",
		hcl:  `workers { labels = { "pool!" = "a" } }`,
		tf:   `worker_defaults = { labels = { "pool!" = "a" } }`,
		// terraform points at the map the key is in.
		attribute: `labels = { "pool!" = "a" }`,
	},
	{
		name:      "worker pool smaller than its size",
		hcl:       "worker_pool \"general\" {\n    size     = 3\n    max_size = 2\n  }",
		tf:        `worker_pools = { general = { size = 3, max_size = 2 } }`,
		attribute: `general = { size = 3, max_size = 2 }`,
	},
	{
		name:      "Butane snippet with an unknown key",
		hcl:       `controllers { snippets = ["variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /etc/motd\n      colour: red\n"] }`,
		tf:        `controller_defaults = { snippets = ["variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /etc/motd\n      colour: red\n"] }`,
		attribute: `snippets = ["variant: flatcar`,
	},
	{
		name:      "secrets server without a port",
		hcl:       `machine_secrets { server = "10.0.0.2" }`,
		tf:        `machine_secrets = { server = "10.0.0.2" }`,
		attribute: `machine_secrets = { server = "10.0.0.2" }`,
	},
	{
		name:      "etcd snapshots too close together",
		hcl:       `etcd_snapshots { interval = "1m" }`,
		tf:        `etcd_snapshots = { interval = "1m" }`,
		attribute: `etcd_snapshots = { interval = "1m" }`,
	},
	{
		name:      "etcd restore over plain HTTP",
		hcl:       "etcd_restore {\n    url    = \"http://backups.example.com/etcd.db\"\n    sha256 = \"" + strings.Repeat("a1", 32) + "\"\n  }",
		tf:        `etcd_restore = { url = "http://backups.example.com/etcd.db", sha256 = "` + strings.Repeat("a1", 32) + `" }`,
		attribute: `etcd_restore = { url = "http://backups.example.com/etcd.db"`,
	},
	{
		name:      "bootstrap machine of a static control plane",
		hcl:       "bootstrap \"boot\" {\n    ip = \"10.0.0.5\"\n  }",
		tf:        `bootstrap = { name = "boot", ip = "10.0.0.5" }`,
		attribute: `bootstrap = { name = "boot", ip = "10.0.0.5" }`,
	},
}

// cliMessage runs `liftoff render` on a spec and returns the summary and detail it prints.
func cliMessage(t *testing.T, cli, specBody string) (summary, detail string) {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf("cluster \"acc\" {\n  api_server = \"https://10.0.0.10:6443\"\n  host_cidrs = [\"10.0.0.0/24\"]\n  controller \"c1\" { ip = \"10.0.0.11\" }\n  %s\n}\n", specBody)
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(cli, "liftoff"), "render", "--spec", filepath.Join(dir, "cluster.hcl"), "--out", filepath.Join(dir, "out"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatalf("liftoff render accepted:\n%s", src)
	}
	// The CLI prints "Error: SUMMARY", the source lines, then the detail as the last paragraph.
	paragraphs := strings.Split(strings.TrimSpace(stderr.String()), "\n\n")
	first, last := paragraphs[0], paragraphs[len(paragraphs)-1]
	summary, ok := strings.CutPrefix(strings.SplitN(first, "\n", 2)[0], "Error: ")
	if !ok || len(paragraphs) < 3 {
		t.Fatalf("unexpected CLI output:\n%s", stderr.String())
	}
	return summary, last
}

// wrapped matches text however terraform wraps and frames it.
func wrapped(text string) string {
	words := strings.Fields(text)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return strings.Join(words, `[\s│]+`)
}

// TestAccClusterRejectsLikeTheCLI checks that terraform refuses bad arguments with the summary and
// detail `liftoff render` prints for the same settings, pointing at the argument.
func TestAccClusterRejectsLikeTheCLI(t *testing.T) {
	terraformBinary(t)
	cli := goBuild(t, "github.com/liftoff-k8s/liftoff/cmd/liftoff", "liftoff")
	for _, bad := range badSettings {
		t.Run(bad.name, func(t *testing.T) {
			summary, detail := cliMessage(t, cli, bad.hcl)
			config := fmt.Sprintf(`
resource "liftoff_cluster" "test" {
  name        = "acc"
  api_server  = "https://10.0.0.10:6443"
  host_cidrs  = ["10.0.0.0/24"]
  controllers = { c1 = { ip = "10.0.0.11" } }
  %s
}
`, bad.tf)
			want := regexp.MustCompile(`(?s)Error: ` + regexp.QuoteMeta(summary) + `.*with liftoff_cluster\.test.*` +
				regexp.QuoteMeta(bad.attribute) + `.*` + wrapped(detail))
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: factories(newTestClock(), nil),
				Steps:                    []resource.TestStep{{Config: config, PlanOnly: true, ExpectError: want}},
			})
		})
	}
}
