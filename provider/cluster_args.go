package provider

import (
	"fmt"
	"math/big"
	"reflect"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/liftoff-k8s/liftoff/spec"
)

// liftoff_cluster's arguments that describe the cluster are the spec's own settings, read from the
// spec's types: names, nesting and optionality from their `hcl` tags, descriptions from their Docs.
// The same reading builds the schema and decodes a plan into a spec, so neither is written by hand.
// Where Terraform's shape differs from a spec file's, the tables below say how.

// argNames are the spec's top-level blocks whose argument has another name: the role defaults (a
// spec's `controllers { }` block) and the machines and pools, which are maps keyed by name rather
// than labelled blocks.
var argNames = map[string]string{
	"controllers": "controller_defaults",
	"workers":     "worker_defaults",
	"controller":  "controllers",
	"worker":      "workers",
	"worker_pool": "worker_pools",
}

// requiredArgs are blocks the spec requires at least one of, so their argument is required.
var requiredArgs = map[string]bool{"controller": true}

// hoistedArgs are settings of a spec block that are top-level arguments, by argument name: the
// block and the setting in it.
var hoistedArgs = map[string][2]string{"renew_before": {"pki", "renew_before"}}

// argName is the argument for a top-level spec setting or block.
func argName(name string) string {
	if n, ok := argNames[name]; ok {
		return n
	}
	return name
}

// field is one setting of a spec type, as an argument.
type field struct {
	spec.Setting
	required bool
}

// fieldsOf lists a spec struct type's settings (spec.SettingsOf) as arguments. top says the type
// is the cluster's, whose names and requirements the tables above change.
func fieldsOf(t reflect.Type, top bool) []field {
	var out []field
	for _, s := range spec.SettingsOf(t) {
		f := field{Setting: s, required: s.Kind == ""}
		if top {
			f.required = f.required || requiredArgs[s.Name]
			f.Name = argName(s.Name)
		}
		out = append(out, f)
	}
	return out
}

var platformType = reflect.TypeOf(spec.Platform{})

// argAttributes is the schema of a spec struct type's settings.
func argAttributes(t reflect.Type, top bool) map[string]schema.Attribute {
	attrs := map[string]schema.Attribute{}
	if top {
		for arg, at := range hoistedArgs {
			block, _ := settingNamed(t, at[0])
			in, _ := settingNamed(block.Type, at[1])
			attrs[arg] = scalarAttribute(field{Setting: in}, false, true)
		}
	}
	for _, f := range fieldsOf(t, top) {
		req, opt := f.required, !f.required
		switch {
		case f.Kind == "label" && top:
			attrs[f.Name] = schema.StringAttribute{Required: true, MarkdownDescription: f.Doc}
		case f.Kind == "label":
			// A block's label is its key in the map of such blocks, or an attribute of a single one.
		case f.Type == reflect.PointerTo(platformType):
			attrs[f.Name] = platformAttribute()
		case f.Kind == "block" && f.Type.Kind() == reflect.Pointer:
			nested := argAttributes(f.Type.Elem(), false)
			for _, in := range fieldsOf(f.Type.Elem(), false) {
				if in.Kind == "label" {
					nested[in.Name] = schema.StringAttribute{Required: true, MarkdownDescription: in.Doc}
				}
			}
			for _, at := range hoistedArgs {
				if top && at[0] == f.Name {
					delete(nested, at[1])
				}
			}
			attrs[f.Name] = schema.SingleNestedAttribute{Required: req, Optional: opt, MarkdownDescription: f.Doc, Attributes: nested}
		case f.Kind == "block" && f.Type.Kind() == reflect.Slice:
			attrs[f.Name] = schema.MapNestedAttribute{Required: req, Optional: opt, MarkdownDescription: f.Doc,
				NestedObject: schema.NestedAttributeObject{Attributes: argAttributes(f.Type.Elem(), false)}}
		default:
			attrs[f.Name] = scalarAttribute(f, req, opt)
		}
	}
	return attrs
}

func scalarAttribute(f field, req, opt bool) schema.Attribute {
	t := f.Type
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return schema.StringAttribute{Required: req, Optional: opt, MarkdownDescription: f.Doc}
	case reflect.Bool:
		return schema.BoolAttribute{Required: req, Optional: opt, MarkdownDescription: f.Doc}
	case reflect.Int:
		return schema.Int64Attribute{Required: req, Optional: opt, MarkdownDescription: f.Doc}
	case reflect.Slice:
		return schema.ListAttribute{Required: req, Optional: opt, ElementType: types.StringType, MarkdownDescription: f.Doc}
	case reflect.Map:
		return schema.MapAttribute{Required: req, Optional: opt, ElementType: types.StringType, MarkdownDescription: f.Doc}
	}
	panic(fmt.Sprintf("spec setting %s: type %s has no Terraform attribute", f.Name, f.Type))
}

// specOfArgs decodes liftoff_cluster's arguments (a plan's or configuration's object, every
// argument known) into the spec they describe.
func specOfArgs(v tftypes.Value) (*spec.Cluster, error) {
	c := &spec.Cluster{}
	attrs := map[string]tftypes.Value{}
	if err := v.As(&attrs); err != nil {
		return nil, err
	}
	if err := decodeStruct(attrs, reflect.ValueOf(c).Elem(), true); err != nil {
		return nil, err
	}
	for arg, at := range hoistedArgs {
		block, _ := settingNamed(reflect.TypeOf(c), at[0])
		in, _ := settingNamed(block.Type, at[1])
		v := reflect.ValueOf(c).Elem().Field(block.Index)
		if v.IsNil() {
			v.Set(reflect.New(block.Type.Elem()))
		}
		if err := decodeValue(attrs[arg], v.Elem().Field(in.Index), field{Setting: in}); err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
	}
	return c, nil
}

// settingNamed is the setting of a spec struct type (or pointer to one) called name.
func settingNamed(t reflect.Type, name string) (spec.Setting, bool) {
	for _, s := range spec.SettingsOf(t) {
		if s.Name == name {
			return s, true
		}
	}
	return spec.Setting{}, false
}

// decodeStruct fills the spec struct v from the attributes of its object.
func decodeStruct(attrs map[string]tftypes.Value, v reflect.Value, top bool) error {
	for _, f := range fieldsOf(v.Type(), top) {
		// A setting without an attribute is a top-level argument (hoistedArgs), or the label of a
		// block in a map, which the caller sets from its key.
		val, ok := attrs[f.Name]
		if !ok {
			continue
		}
		if err := decodeValue(val, v.Field(f.Index), f); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}

// decodeValue sets dst, a spec setting, from its attribute's value; a null leaves it unset.
func decodeValue(val tftypes.Value, dst reflect.Value, f field) error {
	if val.IsNull() {
		return nil
	}
	if !val.IsFullyKnown() {
		return fmt.Errorf("not known until apply")
	}
	t := dst.Type()
	switch {
	case t == reflect.PointerTo(platformType):
		p, err := platformOfArgs(val)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(p))
		return nil
	case f.Kind == "block" && t.Kind() == reflect.Pointer:
		attrs := map[string]tftypes.Value{}
		if err := val.As(&attrs); err != nil {
			return err
		}
		ptr := reflect.New(t.Elem())
		if err := decodeStruct(attrs, ptr.Elem(), false); err != nil {
			return err
		}
		dst.Set(ptr)
		return nil
	case f.Kind == "block" && t.Kind() == reflect.Slice:
		byKey := map[string]tftypes.Value{}
		if err := val.As(&byKey); err != nil {
			return err
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := reflect.MakeSlice(t, len(keys), len(keys))
		for i, k := range keys {
			attrs := map[string]tftypes.Value{}
			if err := byKey[k].As(&attrs); err != nil {
				return err
			}
			elem := out.Index(i)
			if err := decodeStruct(attrs, elem, false); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			for _, in := range fieldsOf(t.Elem(), false) {
				if in.Kind == "label" {
					elem.Field(in.Index).SetString(k)
				}
			}
		}
		dst.Set(out)
		return nil
	}
	if t.Kind() == reflect.Pointer {
		ptr := reflect.New(t.Elem())
		if err := decodeValue(val, ptr.Elem(), f); err != nil {
			return err
		}
		dst.Set(ptr)
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		var s string
		if err := val.As(&s); err != nil {
			return err
		}
		dst.SetString(s)
	case reflect.Bool:
		var b bool
		if err := val.As(&b); err != nil {
			return err
		}
		dst.SetBool(b)
	case reflect.Int:
		var n big.Float
		if err := val.As(&n); err != nil {
			return err
		}
		i, _ := n.Int64()
		dst.SetInt(i)
	case reflect.Slice:
		var elems []tftypes.Value
		if err := val.As(&elems); err != nil {
			return err
		}
		out := make([]string, len(elems))
		for i, e := range elems {
			if err := e.As(&out[i]); err != nil {
				return err
			}
		}
		dst.Set(reflect.ValueOf(out))
	case reflect.Map:
		elems := map[string]tftypes.Value{}
		if err := val.As(&elems); err != nil {
			return err
		}
		out := make(map[string]string, len(elems))
		for k, e := range elems {
			var s string
			if err := e.As(&s); err != nil {
				return err
			}
			out[k] = s
		}
		dst.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("type %s has no Terraform attribute", t)
	}
	return nil
}
