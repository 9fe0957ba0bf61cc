package provider

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	// Every platform, so that spec.Complete checks a platform's settings (render.Cluster renders
	// its files) and the platform argument offers its settings, as in the CLI.
	_ "github.com/liftoff-k8s/liftoff/platforms/all"
	"github.com/liftoff-k8s/liftoff/spec"
)

// platformAttribute is the spec's platform block: an object with one optional attribute per
// registered platform, whose attributes are that platform's settings, read from its Settings type
// (names and optionality from the `hcl` tags, descriptions from its Docs).
func platformAttribute() schema.SingleNestedAttribute {
	kinds := spec.PlatformKinds()
	attrs := map[string]schema.Attribute{}
	for _, kind := range kinds {
		def, _ := spec.LookupPlatform(kind)
		attrs[kind] = schema.SingleNestedAttribute{
			Optional:            true,
			MarkdownDescription: def.Summary,
			Attributes:          settingsAttributes(def.Settings()),
		}
	}
	quoted := make([]string, len(kinds))
	for i, k := range kinds {
		quoted[i] = "`" + k + "`"
	}
	return schema.SingleNestedAttribute{
		Optional: true,
		MarkdownDescription: "Where the cluster runs, as the spec's `platform` block: set exactly one of " + oneOf(quoted) +
			". The platform's files (matchbox groups and profiles, EC2 user data, a Vagrantfile, libvirt domains) are exported in `platform_assets`.",
		Attributes: attrs,
	}
}

// oneOf joins words as "a, b or c".
func oneOf(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// setting is one field of a platform's Settings struct.
type setting struct {
	name     string
	optional bool
	index    int
}

// settingsOf lists the settings of a Settings struct (a pointer to it) by their hcl tags.
func settingsFields(settings any) []setting {
	t := reflect.TypeOf(settings).Elem()
	var out []setting
	for i := range t.NumField() {
		tag, ok := t.Field(i).Tag.Lookup("hcl")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		out = append(out, setting{name: name, optional: opts == "optional", index: i})
	}
	return out
}

// settingsAttributes is the schema of a platform's settings.
func settingsAttributes(settings any) map[string]schema.Attribute {
	docs := map[string]string{}
	if d, ok := settings.(spec.SettingsDocs); ok {
		docs = d.Docs()
	}
	t := reflect.TypeOf(settings).Elem()
	out := map[string]schema.Attribute{}
	for _, f := range settingsFields(settings) {
		desc := docs[f.name]
		required, optional := !f.optional, f.optional
		switch t.Field(f.index).Type.Kind() {
		case reflect.String:
			out[f.name] = schema.StringAttribute{Required: required, Optional: optional, MarkdownDescription: desc}
		case reflect.Bool:
			out[f.name] = schema.BoolAttribute{Required: required, Optional: optional, MarkdownDescription: desc}
		case reflect.Int:
			out[f.name] = schema.Int64Attribute{Required: required, Optional: optional, MarkdownDescription: desc}
		case reflect.Slice:
			out[f.name] = schema.ListAttribute{Required: required, Optional: optional, ElementType: types.StringType, MarkdownDescription: desc}
		case reflect.Map:
			out[f.name] = schema.MapAttribute{Required: required, Optional: optional, ElementType: types.StringType, MarkdownDescription: desc}
		default:
			panic(fmt.Sprintf("platform setting %s: type %s is not one a platform's settings may have", f.name, t.Field(f.index).Type))
		}
	}
	return out
}

// platformOf builds the spec's platform from the platform argument. Its kind is the first of the
// platforms whose settings are set; spec.Complete reports none or several.
func platformOf(ctx context.Context, o types.Object, diags *diag.Diagnostics) *spec.Platform {
	if o.IsNull() || o.IsUnknown() {
		return nil
	}
	p := &spec.Platform{}
	given := o.Attributes()
	for _, kind := range spec.PlatformKinds() {
		v, ok := given[kind].(types.Object)
		if !ok || v.IsNull() {
			continue
		}
		if p.Kind != "" {
			p.Also = append(p.Also, kind)
			continue
		}
		def, _ := spec.LookupPlatform(kind)
		p.Kind, p.Settings = kind, def.Settings()
		setSettings(ctx, p.Settings, v.Attributes(), diags)
	}
	return p
}

// setSettings fills a platform's Settings struct from the attributes of its object: a null or
// unknown attribute leaves its setting unset.
func setSettings(ctx context.Context, settings any, attrs map[string]attr.Value, diags *diag.Diagnostics) {
	v := reflect.ValueOf(settings).Elem()
	for _, f := range settingsFields(settings) {
		field := v.Field(f.index)
		switch a := attrs[f.name].(type) {
		case types.String:
			field.SetString(a.ValueString())
		case types.Bool:
			field.SetBool(a.ValueBool())
		case types.Int64:
			field.SetInt(a.ValueInt64())
		case types.List:
			field.Set(reflect.ValueOf(listOf(ctx, a, diags)))
		case types.Map:
			field.Set(reflect.ValueOf(mapOf(ctx, a, diags)))
		}
	}
}
