package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exampleSpec is the example cluster every rejection case starts from.
func exampleSpec(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/demo/cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit replaces old with new exactly once in s, so a case cannot silently stop applying.
func edit(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("edit: %q occurs %d times in the example spec", old, strings.Count(s, old))
	}
	return strings.Replace(s, old, new, 1)
}

const snippetBadKey = `
  controllers {
    snippets = [<<-EOT
      variant: flatcar
      version: 1.1.0
      storage:
        files:
          - path: /etc/motd
            mode: 0644
            colour: red
    EOT
    ]
  }
`

func TestRenderRejectsBadSpecs(t *testing.T) {
	cases := []struct {
		name string
		// change edits the example spec.
		change func(t *testing.T, s string) string
		// want are substrings of the diagnostic: the summary, the field and the line it points at.
		want []string
	}{
		{"unknown cluster field", func(t *testing.T, s string) string {
			return edit(t, s, `networking          = "flannel"`, `networking          = "flannel"
  colour              = "red"`)
		}, []string{"Unsupported argument", `"colour"`, "cluster.hcl line 10"}},
		{"unknown machine field", func(t *testing.T, s string) string {
			return edit(t, s, `domain = "node4.example.com"`, `domain = "node4.example.com"
    rack   = "a1"`)
		}, []string{"Unsupported argument", `"rack"`, "cluster.hcl line 31"}},
		{"even controllers", func(t *testing.T, s string) string {
			return edit(t, s, `  controller "node3" {
    ip     = "10.0.0.13"
    mac    = "52:54:00:c3:61:77"
    domain = "node3.example.com"
  }
`, "")
		}, []string{"Even number of controllers", "controller.node2", "allow_even_controllers", "cluster.hcl line 17"}},
		{"duplicate name", func(t *testing.T, s string) string { return edit(t, s, `worker "node4"`, `worker "node2"`) },
			[]string{"Duplicate name", "worker.node2", `also used by controller.node2`}},
		{"duplicate MAC", func(t *testing.T, s string) string {
			return edit(t, s, `mac    = "52:54:00:d4:11:9a"`, `mac    = "52:54:00:A1:9C:AE"`)
		}, []string{"Duplicate mac", "worker.node4.mac", "cluster.hcl line 29"}},
		{"duplicate IP", func(t *testing.T, s string) string {
			return edit(t, s, `ip     = "10.0.0.21"`, `ip     = "10.0.0.11"`)
		}, []string{"Duplicate ip", "worker.node4.ip", "cluster.hcl line 28"}},
		{"pod and service CIDRs overlap", func(t *testing.T, s string) string {
			return edit(t, s, `service_cidr        = "10.3.0.0/16"`, `service_cidr        = "10.2.128.0/17"`)
		}, []string{"Overlapping CIDRs", "cluster.service_cidr", "cluster.hcl line 7"}},
		{"host CIDR overlaps pods", func(t *testing.T, s string) string {
			return edit(t, s, `cluster_domain      = "cluster.local"`, `cluster_domain      = "cluster.local"
  host_cidrs          = ["10.2.0.0/24"]`)
		}, []string{"Overlapping CIDRs", "cluster.host_cidrs[0]", "cluster.hcl line 9"}},
		{"machine IP inside the pod CIDR", func(t *testing.T, s string) string {
			return edit(t, s, `ip     = "10.0.0.21"`, `ip     = "10.2.0.21"`)
		}, []string{"Machine IP inside a cluster CIDR", "worker.node4.ip", "cluster.pod_cidr"}},
		{"malformed MAC", func(t *testing.T, s string) string {
			return edit(t, s, `mac    = "52:54:00:b2:2f:86"`, `mac    = "52:54:00:b2:2f"`)
		}, []string{"Invalid MAC address", "controller.node2.mac", "cluster.hcl line 19"}},
		{"malformed IP", func(t *testing.T, s string) string {
			return edit(t, s, `ip     = "10.0.0.12"`, `ip     = "10.0.0.312"`)
		}, []string{"Invalid IP address", "controller.node2.ip", "cluster.hcl line 18"}},
		{"malformed CIDR", func(t *testing.T, s string) string {
			return edit(t, s, `pod_cidr            = "10.2.0.0/16"`, `pod_cidr            = "10.2.0.0/33"`)
		}, []string{"Invalid CIDR", "cluster.pod_cidr", "cluster.hcl line 6"}},
		{"CIDR with host bits", func(t *testing.T, s string) string {
			return edit(t, s, `pod_cidr            = "10.2.0.0/16"`, `pod_cidr            = "10.2.1.0/16"`)
		}, []string{"Invalid CIDR", "did you mean 10.2.0.0/16"}},
		{"plain-http API URL", func(t *testing.T, s string) string {
			return edit(t, s, `https://api.demo.example.com:6443`, `http://api.demo.example.com:6443`)
		}, []string{"Invalid API server URL", "cluster.api_server", "cluster.hcl line 5"}},
		{"API URL without port", func(t *testing.T, s string) string {
			return edit(t, s, `https://api.demo.example.com:6443`, `https://api.demo.example.com`)
		}, []string{"Invalid API server URL", "https://HOST:PORT"}},
		{"malformed version", func(t *testing.T, s string) string {
			return edit(t, s, `kubernetes_version  = "v1.35.4"`, `kubernetes_version  = "1.35"`)
		}, []string{"Invalid Kubernetes version", "cluster.kubernetes_version", "cluster.hcl line 2"}},
		{"unsupported version", func(t *testing.T, s string) string {
			return edit(t, s, `kubernetes_version  = "v1.35.4"`, `kubernetes_version  = "v1.20.0"`)
		}, []string{"Unsupported Kubernetes version"}},
		{"unknown OS", func(t *testing.T, s string) string {
			return edit(t, s, `os                  = "flatcar"`, `os                  = "ubuntu"`)
		}, []string{"Unsupported operating system", `"flatcar", "fcos"`, "cluster.hcl line 3"}},
		{"invalid Butane snippet", func(t *testing.T, s string) string {
			return edit(t, s, `  worker "node4" {`, snippetBadKey+`  worker "node4" {`)
		}, []string{"Invalid Butane snippet", "controllers.snippets[0]", "cluster.hcl line 36", "snippet line 7"}},
		{"snippet for the other OS", func(t *testing.T, s string) string {
			return edit(t, s, `  worker "node4" {`, `  workers {
    snippets = ["variant: fcos\nversion: 1.5.0\n"]
  }
  worker "node4" {`)
		}, []string{"Snippet for another OS", "workers.snippets[0]", "variant: flatcar"}},
		{"unknown key algorithm", func(t *testing.T, s string) string {
			return edit(t, s, `  controller "node1" {`, `  pki {
    key_algorithm = "dsa-1024"
  }
  controller "node1" {`)
		}, []string{"Unsupported key algorithm", "pki.key_algorithm", "cluster.hcl line 13"}},
		{"certificates outlive the CA", func(t *testing.T, s string) string {
			return edit(t, s, `  controller "node1" {`, `  pki {
    ca_validity   = "365d"
    cert_validity = "400d"
  }
  controller "node1" {`)
		}, []string{"Certificates outlive their CA", "pki.cert_validity"}},
		{"bootstrap token too short-lived", func(t *testing.T, s string) string {
			return edit(t, s, `  controller "node1" {`, `  pki {
    bootstrap_token_ttl = "30s"
  }
  controller "node1" {`)
		}, []string{"Bootstrap token too short-lived", "pki.bootstrap_token_ttl", "cluster.hcl line 13"}},
		{"malformed taint", func(t *testing.T, s string) string {
			return edit(t, s, `domain = "node4.example.com"`, `domain = "node4.example.com"
    taints = ["gpu=true:Sometimes"]`)
		}, []string{"Invalid taint", `worker.node4.taints[0]`, "cluster.hcl line 31"}},
		{"malformed label", func(t *testing.T, s string) string {
			return edit(t, s, `domain = "node4.example.com"`, `domain = "node4.example.com"
    labels = { "zone!" = "a" }`)
		}, []string{"Invalid label key", `worker.node4.labels["zone!"]`}},
		{"label the kubelet may not set", func(t *testing.T, s string) string {
			return edit(t, s, `domain = "node4.example.com"`, `domain = "node4.example.com"
    labels = { "node-role.kubernetes.io/gpu" = "" }`)
		}, []string{"Label the kubelet may not set", "NodeRestriction", "cluster.hcl line 31"}},
		{"malformed image", func(t *testing.T, s string) string {
			return edit(t, s, `  controller "node1" {`, `  images {
    coredns = "Registry/CoreDNS::latest"
  }
  controller "node1" {`)
		}, []string{"Invalid image reference", "images.coredns", "cluster.hcl line 13"}},
		{"container delivery without digest", func(t *testing.T, s string) string {
			return edit(t, s, `  controller "node1" {`, `  kubelet {
    delivery = "container"
    image    = "quay.io/poseidon/kubelet:v1.35.4"
  }
  controller "node1" {`)
		}, []string{"Container image not pinned", "kubelet.image"}},
		{"custom download without sha512", func(t *testing.T, s string) string {
			return edit(t, s, `  controller "node1" {`, `  etcd {
    url = "https://mirror.example.com/etcd-{version}-linux-{arch}.tar.gz"
  }
  controller "node1" {`)
		}, []string{"Missing sha512", "etcd.sha512"}},
		{"worker pool named like a machine", func(t *testing.T, s string) string {
			return edit(t, s, `  worker "node4" {`, `  worker_pool "node4" {
    size = 2
  }
  worker "node4" {`)
		}, []string{"Duplicate name", "worker.node4", "also used by worker_pool.node4"}},
		{"worker pool larger than the pod CIDR", func(t *testing.T, s string) string {
			return edit(t, s, `  worker "node4" {`, `  worker_pool "big" {
    size     = 10
    max_size = 300
  }
  worker "node4" {`)
		}, []string{"Pod CIDR too small", "cluster.pod_cidr", "304 machines"}},
		{"no controllers", func(t *testing.T, s string) string {
			i, j := strings.Index(s, `  controller "node1"`), strings.Index(s, `  worker "node4"`)
			return s[:i] + s[j:]
		}, []string{"No controllers"}},
		{"malformed SSH key", func(t *testing.T, s string) string {
			return edit(t, s, `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl`, `ssh-ed25519 AAAAnotbase64!!`)
		}, []string{"Invalid SSH authorized key", "cluster.ssh_authorized_keys[0]", "cluster.hcl line 10"}},
		{"over-broad wildcard SAN", func(t *testing.T, s string) string {
			return edit(t, s, `networking          = "flannel"`, `networking          = "flannel"
  pki {
    extra_sans = ["api.demo.example.com", "*.com"]
  }`)
		}, []string{"Over-broad subject alternative name", "pki.extra_sans[1]", `"*.com"`}},
		{"bootstrap machine in a static cluster", func(t *testing.T, s string) string {
			return edit(t, s, `  controller "node1" {`, `  bootstrap "boot" {
    ip = "10.0.0.5"
  }
  controller "node1" {`)
		}, []string{"Bootstrap machine without a pivot", "bootstrap.boot", "cluster.hcl line 12"}},
		{"HCL syntax error", func(t *testing.T, s string) string { return edit(t, s, `os                  = "flatcar"`, `os = `) },
			[]string{"cluster.hcl line 3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			specPath := filepath.Join(dir, "cluster.hcl")
			if err := os.WriteFile(specPath, []byte(tc.change(t, exampleSpec(t))), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"render", "--spec", specPath, "--out", out}, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("render accepted the spec; stdout: %s", stdout.String())
			}
			msg := stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("diagnostic lacks %q:\n%s", w, msg)
				}
			}
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
				t.Errorf("render wrote something beside the spec: %v %v", entries, err)
			}
		})
	}
}
