// Package butane is liftoff's one way to turn Butane into Ignition: strict translation (any warning
// is an error), merging of user snippets, and the check every rendered config must pass.
package butane

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	butaneutil "github.com/coreos/butane/base/util"
	"github.com/coreos/butane/config"
	"github.com/coreos/butane/config/common"
	ign "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	ignvalidate "github.com/coreos/ignition/v2/config/validate"
	"github.com/coreos/vcontext/report"

	"github.com/liftoff-k8s/liftoff/internal/versions"
)

// Issue is one problem Butane or Ignition reported, at a line and column of the input (1-based, 0 when unknown).
type Issue struct {
	Line, Column int
	Path         string
	Message      string
}

func (i Issue) String() string {
	var at []string
	if i.Line > 0 {
		at = append(at, fmt.Sprintf("line %d", i.Line))
	}
	if i.Path != "" {
		at = append(at, i.Path)
	}
	if len(at) == 0 {
		return i.Message
	}
	return strings.Join(at, ", ") + ": " + i.Message
}

// Error is a translation that failed or warned.
type Error struct {
	Issues []Issue
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = is.String()
	}
	return strings.Join(parts, "; ")
}

// Header returns the Butane variant and version liftoff writes for an OS ("flatcar" or "fcos"); both
// translate to Ignition 3.4.0.
func Header(os string) (variant, version string) {
	if os == "fcos" {
		return "fcos", versions.ButaneFCOS
	}
	return "flatcar", versions.ButaneFlatcar
}

// Translate turns Butane into an Ignition config. Any warning counts as an error, so a snippet that
// Butane would accept with a warning is refused before it reaches a machine.
func Translate(src []byte) (igntypes.Config, error) {
	raw, rep, err := config.TranslateBytes(src, common.TranslateBytesOptions{Raw: true})
	if issues := issuesOf(rep); len(issues) > 0 {
		return igntypes.Config{}, &Error{Issues: issues}
	}
	if err != nil {
		return igntypes.Config{}, &Error{Issues: []Issue{{Message: describe(err)}}}
	}
	cfg, rep, err := ign.ParseCompatibleVersion(raw)
	if issues := issuesOf(rep); len(issues) > 0 {
		return igntypes.Config{}, &Error{Issues: issues}
	}
	if err != nil {
		return igntypes.Config{}, &Error{Issues: []Issue{{Message: "the Butane translates to an Ignition config liftoff cannot use: " + err.Error()}}}
	}
	return cfg, nil
}

// Merge merges snippets into a base config: the snippets' files, units and users are added, and
// where both set the same scalar the snippet wins (Ignition's own merge rules).
func Merge(base igntypes.Config, snippets ...igntypes.Config) igntypes.Config {
	for _, s := range snippets {
		base = ign.Merge(base, s)
	}
	return base
}

// Add is Merge for a snippet of new files, directories, links and units only: when none of them
// has a path or name that base already has, they are appended to copies of base's lists, which
// costs a fraction of Ignition's reflective merge; otherwise, or when the snippet sets anything
// else, it is Merge. base's lists are never written to.
func Add(base, add igntypes.Config) igntypes.Config {
	if !Disjoint(base, add) {
		return Merge(base, add)
	}
	out := base
	out.Storage.Files = append(slices.Clip(base.Storage.Files), add.Storage.Files...)
	out.Storage.Directories = append(slices.Clip(base.Storage.Directories), add.Storage.Directories...)
	out.Storage.Links = append(slices.Clip(base.Storage.Links), add.Storage.Links...)
	out.Systemd.Units = append(slices.Clip(base.Systemd.Units), add.Systemd.Units...)
	return out
}

// Disjoint reports whether add sets nothing but files, directories, links and units, none of which
// base has: then merging the two in either order gives the same entries.
func Disjoint(base, add igntypes.Config) bool {
	rest := add
	rest.Ignition.Version = ""
	rest.Storage.Files, rest.Storage.Directories, rest.Storage.Links, rest.Systemd.Units = nil, nil, nil, nil
	if !reflect.ValueOf(rest).IsZero() {
		return false
	}
	paths := map[string]bool{}
	units := map[string]bool{}
	for _, cfg := range []igntypes.Config{base, add} {
		var names []string
		for _, f := range cfg.Storage.Files {
			names = append(names, f.Path)
		}
		for _, d := range cfg.Storage.Directories {
			names = append(names, d.Path)
		}
		for _, l := range cfg.Storage.Links {
			names = append(names, l.Path)
		}
		if !addAll(paths, names) {
			return false
		}
		names = names[:0]
		for _, u := range cfg.Systemd.Units {
			names = append(names, u.Name)
		}
		if !addAll(units, names) {
			return false
		}
	}
	return true
}

// addAll adds names to seen and reports whether none was there already.
func addAll(seen map[string]bool, names []string) bool {
	for _, n := range names {
		if seen[n] {
			return false
		}
		seen[n] = true
	}
	return true
}

// Marshal encodes a config compactly and checks it with Ignition's own 3.4.0 parser; a config with
// any warning is refused.
func Marshal(cfg igntypes.Config) ([]byte, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := Check(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// File is an Ignition file holding data, encoded the way Butane encodes inline contents (the
// smallest of URL-escaped, base64 and gzip+base64). Files under 4 KiB are not compressed: gzip
// costs more time than the bytes it saves are worth there. Compressors are reused: a render
// encodes thousands of files, and a fresh gzip writer at the best level allocates most of a megabyte.
func File(path string, mode int, data []byte) (igntypes.File, error) {
	uri, compression, err := butaneutil.MakeDataURL(data, nil, false)
	if err != nil {
		return igntypes.File{}, err
	}
	if len(data) > 4096 {
		var buf bytes.Buffer
		w := gzipWriters.Get().(*gzip.Writer)
		w.Reset(&buf)
		_, err := w.Write(data)
		if err == nil {
			err = w.Close()
		}
		gzipWriters.Put(w)
		if err != nil {
			return igntypes.File{}, err
		}
		// As Butane: the compressed form wins when it is shorter, counting the compression field.
		if gz := "data:;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()); len(gz)+len("gzip") < len(uri) {
			uri, compression = gz, ptr("gzip")
		}
	}
	f := igntypes.File{Node: igntypes.Node{Path: path, Overwrite: ptr(true)}}
	f.Mode = &mode
	f.Contents.Source = &uri
	f.Contents.Compression = compression
	return f, nil
}

// gzipWriters are File's compressors, at Butane's level.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestCompression)
	return w
}}

func ptr[T any](v T) *T { return &v }

// Validate checks a config with Ignition's own validation and fails on any error or warning.
func Validate(cfg igntypes.Config) error {
	if issues := issuesOf(ignvalidate.ValidateWithContext(cfg, nil)); len(issues) > 0 {
		return &Error{Issues: issues}
	}
	return nil
}

// Check parses raw with Ignition's config/v3_4 parser and fails on any error or warning.
func Check(raw []byte) error {
	_, rep, err := ign.Parse(raw)
	if issues := issuesOf(rep); len(issues) > 0 {
		return &Error{Issues: issues}
	}
	if err != nil {
		return &Error{Issues: []Issue{{Message: err.Error()}}}
	}
	return nil
}

func issuesOf(rep report.Report) []Issue {
	var out []Issue
	for _, e := range rep.Entries {
		is := Issue{Message: e.Message}
		if e.Context.Len() > 0 {
			is.Path = e.Context.String()
		}
		if e.Marker.StartP != nil {
			is.Line = int(e.Marker.StartP.Line)
			is.Column = int(e.Marker.StartP.Column)
		}
		out = append(out, is)
	}
	return out
}

func describe(err error) string {
	switch {
	case errors.Is(err, common.ErrNoVariant):
		return "the snippet has no variant: start it with \"variant: flatcar\" or \"variant: fcos\" and a version"
	case errors.Is(err, common.ErrInvalidVersion):
		return "the snippet's version is not a valid Butane spec version"
	}
	return err.Error()
}
