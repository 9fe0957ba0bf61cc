package provider

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	// Every platform, so that spec.Complete checks a platform's settings (render.Cluster renders
	// its files) and the platform argument offers its settings, as in the CLI.
	_ "github.com/liftoff-k8s/liftoff/platforms/all"
	"github.com/liftoff-k8s/liftoff/spec"
)

// platformAttribute is the spec's platform block: an object with one optional attribute per
// registered platform, whose attributes are that platform's settings, read from its Settings type
// as the spec's own settings are (argAttributes).
func platformAttribute() schema.SingleNestedAttribute {
	kinds := spec.PlatformKinds()
	attrs := map[string]schema.Attribute{}
	for _, kind := range kinds {
		def, _ := spec.LookupPlatform(kind)
		attrs[kind] = schema.SingleNestedAttribute{
			Optional:            true,
			MarkdownDescription: def.Summary,
			Attributes:          argAttributes(reflect.TypeOf(def.Settings()).Elem(), false),
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

// platformOfArgs builds the spec's platform from the platform argument. Its kind is the first of the
// platforms whose settings are set; spec.Complete reports none or several.
func platformOfArgs(v tftypes.Value) (*spec.Platform, error) {
	given := map[string]tftypes.Value{}
	if err := v.As(&given); err != nil {
		return nil, err
	}
	p := &spec.Platform{}
	for _, kind := range spec.PlatformKinds() {
		v, ok := given[kind]
		if !ok || v.IsNull() {
			continue
		}
		if p.Kind != "" {
			p.Also = append(p.Also, kind)
			continue
		}
		def, _ := spec.LookupPlatform(kind)
		p.Kind, p.Settings = kind, def.Settings()
		attrs := map[string]tftypes.Value{}
		if err := v.As(&attrs); err != nil {
			return nil, err
		}
		if err := decodeStruct(attrs, reflect.ValueOf(p.Settings).Elem(), false); err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
	}
	return p, nil
}
