package testcluster

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net/url"
	"strings"
	"testing"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
)

// ParseIgnition parses a config with Ignition's own 3.4.0 parser, failing on any error or warning.
func ParseIgnition(t testing.TB, raw []byte) igntypes.Config {
	t.Helper()
	cfg, rep, err := ign.Parse(raw)
	if err != nil || len(rep.Entries) > 0 {
		t.Fatalf("not a valid Ignition 3.4.0 config: %v %s", err, rep.String())
	}
	return cfg
}

// FileText returns the contents of a file a config places inline (a data URL, gzipped or not), or
// fails the test when the config places no such file.
func FileText(t testing.TB, cfg igntypes.Config, path string) string {
	t.Helper()
	for _, f := range cfg.Storage.Files {
		if f.Path != path {
			continue
		}
		if f.Contents.Source == nil || !strings.HasPrefix(*f.Contents.Source, "data:") {
			t.Fatalf("%s is not inline", path)
		}
		meta, data, _ := strings.Cut(strings.TrimPrefix(*f.Contents.Source, "data:"), ",")
		var raw []byte
		if strings.HasSuffix(meta, ";base64") {
			b, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			raw = b
		} else {
			s, err := url.PathUnescape(data)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			raw = []byte(s)
		}
		if f.Contents.Compression != nil && *f.Contents.Compression == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if raw, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return string(raw)
	}
	t.Fatalf("the config places no %s", path)
	return ""
}
