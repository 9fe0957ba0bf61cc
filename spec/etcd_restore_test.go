package spec_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

// restoreSpec is a cluster with an etcd_restore block holding body, which starts on line 3; its
// settings are on line 4 and on.
func restoreSpec(body string) string {
	return fmt.Sprintf(`cluster "restored" {
  api_server = "https://10.0.0.10:6443"
  etcd_restore {
    %s
  }
  controller "c1" { ip = "10.0.0.11" }
}
`, body)
}

var snapshotSHA256 = strings.Repeat("3f", 32)

func TestEtcdRestoreAccepted(t *testing.T) {
	for _, tc := range []struct{ name, url string }{
		{"a plain URL", "https://backups.example.com/restored/etcd.db"},
		{"an address and port", "https://10.0.0.5:8443/etcd.db"},
		{"a pre-signed URL", "https://bucket.s3.amazonaws.com/etcd.db?X-Amz-Credential=AKIA%2F20260101%2Fus-east-1&X-Amz-Signature=0a1b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := restoreSpec(fmt.Sprintf("url    = %q\n    sha256 = %q", tc.url, snapshotSHA256))
			c, diags := spec.Parse([]byte(src), "restored.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			full, err := spec.Complete(c)
			if err != nil {
				t.Fatal(err)
			}
			if r := full.EtcdRestore; r == nil || r.URL != tc.url || r.SHA256 != snapshotSHA256 {
				t.Errorf("etcd_restore is %+v", r)
			}
		})
	}
	c, diags := spec.Parse([]byte(`cluster "restored" {
  api_server = "https://10.0.0.10:6443"
  controller "c1" { ip = "10.0.0.11" }
}`), "restored.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if full, err := spec.Complete(c); err != nil || full.EtcdRestore != nil {
		t.Errorf("without the block: %v, etcd_restore %+v", err, full.EtcdRestore)
	}
}

// TestEtcdRestoreRefused checks that a snapshot that is not fetched over HTTPS or not pinned by its
// digest is reported at the line it was written on, or the block's line when a setting is missing.
func TestEtcdRestoreRefused(t *testing.T) {
	sum := fmt.Sprintf("sha256 = %q", snapshotSHA256)
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"no URL", sum,
			[]string{`restored.hcl:3: etcd_restore.url: Missing URL: set url to the https URL each controller downloads the snapshot from`}},
		{"plain HTTP", "url = \"http://backups.example.com/etcd.db\"\n    " + sum,
			[]string{`restored.hcl:4: etcd_restore.url: Invalid URL: "http://backups.example.com/etcd.db" must be an https URL`}},
		{"a file", "url = \"file:///var/backups/etcd.db\"\n    " + sum,
			[]string{`restored.hcl:4: etcd_restore.url: Invalid URL: "file:///var/backups/etcd.db" must be an https URL`}},
		{"no host", "url = \"https:///etcd.db\"\n    " + sum,
			[]string{`restored.hcl:4: etcd_restore.url: Invalid URL`}},
		{"a space", "url = \"https://backups.example.com/etcd 1.db\"\n    " + sum,
			[]string{`restored.hcl:4: etcd_restore.url: Invalid URL: "https://backups.example.com/etcd 1.db" must be an https URL, with anything but RFC 3986's characters percent-encoded`}},
		{"a quote", "url = \"https://backups.example.com/etcd\\\".db\"\n    " + sum,
			[]string{`restored.hcl:4: etcd_restore.url: Invalid URL`}},
		{"no sha256", `url = "https://backups.example.com/etcd.db"`,
			[]string{`restored.hcl:3: etcd_restore.sha256: Missing sha256: a snapshot is restored only when it matches its digest`}},
		{"a short sha256", "url = \"https://backups.example.com/etcd.db\"\n    sha256 = \"" + snapshotSHA256[1:] + "\"",
			[]string{`restored.hcl:5: etcd_restore.sha256: Invalid sha256: "` + snapshotSHA256[1:] + `" is not 64 lowercase hex digits`}},
		{"an upper-case sha256", "url = \"https://backups.example.com/etcd.db\"\n    sha256 = \"" + strings.ToUpper(snapshotSHA256) + "\"",
			[]string{`restored.hcl:5: etcd_restore.sha256: Invalid sha256`}},
		{"a sha512", "url = \"https://backups.example.com/etcd.db\"\n    sha256 = \"" + strings.Repeat("ab", 64) + "\"",
			[]string{`restored.hcl:5: etcd_restore.sha256: Invalid sha256`}},
		{"an empty block", "",
			[]string{`restored.hcl:3: etcd_restore.url: Missing URL`, `restored.hcl:3: etcd_restore.sha256: Missing sha256`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := spec.Parse([]byte(restoreSpec(tc.body)), "restored.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			_, err := spec.Complete(c)
			if err == nil {
				t.Fatalf("accepted:\n%s", restoreSpec(tc.body))
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got\n  %s\nwant it to hold\n  %s", err, want)
				}
			}
			if inv, ok := spec.AsInvalid(err); !ok || len(inv.Problems) != len(tc.want) {
				t.Errorf("want exactly %d problems: %v", len(tc.want), err)
			}
		})
	}
}

// TestEtcdRestoreTypeErrors checks that a setting of the wrong type or an unknown one is refused
// when the spec is read, with its file and line.
func TestEtcdRestoreTypeErrors(t *testing.T) {
	for _, body := range []string{`url = ["https://backups.example.com/etcd.db"]`, `sha256 = { hex = "00" }`, `sha512 = "00"`} {
		_, diags := spec.Parse([]byte(restoreSpec(body)), "restored.hcl")
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "restored.hcl:4") {
			t.Errorf("%s: %v", body, diags)
		}
	}
}
