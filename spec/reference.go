package spec

import (
	"fmt"
	"reflect"
	"strings"
)

// Setting is one setting of a spec type, as its `hcl` tag and its type's Docs describe it. The spec
// reader, the Terraform provider's schema and the spec's reference all read the spec's shape this
// way.
type Setting struct {
	// Name is the setting's name in a spec file.
	Name string
	// Kind is "" for a required attribute, "optional", "block" (a nested block, or one per label
	// when the field is a slice), or "label" (the label of the block the type is).
	Kind string
	// Index is the field's index in its struct.
	Index int
	// Type is the field's Go type.
	Type reflect.Type
	// Doc describes the setting in Markdown.
	Doc string
}

// SettingsOf lists the settings of a spec struct type (or of a pointer to one), in field order.
func SettingsOf(t reflect.Type) []Setting {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var docs map[string]string
	if d, ok := reflect.Zero(t).Interface().(SettingsDocs); ok {
		docs = d.Docs()
	}
	var out []Setting
	for i := range t.NumField() {
		tag, ok := t.Field(i).Tag.Lookup("hcl")
		if !ok {
			continue
		}
		name, kind, _ := strings.Cut(tag, ",")
		out = append(out, Setting{Name: name, Kind: kind, Index: i, Type: t.Field(i).Type, Doc: docs[name]})
	}
	return out
}

// Reference is the spec's reference in Markdown: every block and setting, with what it means and
// which are required, platforms included. docs/spec.md is this text.
func Reference() string {
	var b strings.Builder
	b.WriteString("# The cluster spec\n\n" +
		"A spec is one `cluster \"NAME\" { ... }` block in HCL, read by `liftoff render`, `liftoff bootstrap` and the other " +
		"commands. The Terraform provider's `liftoff_cluster` takes the same settings as arguments: the `controller` and " +
		"`worker` blocks and `worker_pool` blocks become maps keyed by name (`controllers`, `workers`, `worker_pools`), " +
		"the `controllers { }` and `workers { }` blocks are `controller_defaults` and `worker_defaults`, and `pki`'s " +
		"`renew_before` is a top-level `renew_before`. Both check a spec with the same code and say the same of a mistake.\n\n" +
		"This page is generated from the spec's types (`make docs`).\n")
	reference(&b, "cluster \"NAME\"", reflect.TypeOf(Cluster{}), 2)
	return b.String()
}

func reference(b *strings.Builder, title string, t reflect.Type, depth int) {
	fmt.Fprintf(b, "\n%s `%s { }`\n\n", strings.Repeat("#", depth), title)
	for _, s := range settingsList(b, t) {
		elem := s.Type
		if elem.Kind() == reflect.Pointer || elem.Kind() == reflect.Slice {
			elem = elem.Elem()
		}
		title := s.Name
		for _, in := range SettingsOf(elem) {
			if in.Kind == "label" {
				title += " \"" + strings.ToUpper(in.Name) + "\""
			}
		}
		if elem == reflect.TypeOf(Platform{}) {
			fmt.Fprintf(b, "\n%s `platform { }`\n\nExactly one of these blocks:\n", strings.Repeat("#", depth+1))
			for _, kind := range PlatformKinds() {
				def, _ := LookupPlatform(kind)
				fmt.Fprintf(b, "\n%s `%s { }`\n\n%s\n\n", strings.Repeat("#", depth+2), kind, def.Summary)
				settingsList(b, reflect.TypeOf(def.Settings()))
			}
			continue
		}
		reference(b, title, elem, depth+1)
	}
}

// settingsList writes a line for each of t's settings and returns its blocks.
func settingsList(b *strings.Builder, t reflect.Type) []Setting {
	var blocks []Setting
	for _, s := range SettingsOf(t) {
		switch {
		case s.Kind == "label":
			continue
		case s.Kind == "block":
			blocks = append(blocks, s)
			what := "block"
			if s.Type.Kind() == reflect.Slice {
				what = "blocks, one per name"
			}
			fmt.Fprintf(b, "- `%s` (%s, below) %s\n", s.Name, what, s.Doc)
		default:
			need := "optional"
			if s.Kind == "" {
				need = "required"
			}
			fmt.Fprintf(b, "- `%s` (%s, %s) %s\n", s.Name, typeName(s.Type), need, s.Doc)
		}
	}
	return blocks
}

func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int:
		return "number"
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	case reflect.Map:
		return "map of " + typeName(t.Elem()) + "s"
	}
	return t.String()
}
