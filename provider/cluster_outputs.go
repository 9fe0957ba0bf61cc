package provider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"sort"
	"testing/fstest"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	tfpath "github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/liftoff-k8s/liftoff/generator"
)

// generatorKinds are the kinds the generator itself renders; any other kind comes from a platform
// adapter and is exported in platform_assets.
var generatorKinds = map[generator.Kind]bool{
	generator.KindIgnition:       true,
	generator.KindCertificate:    true,
	generator.KindPrivateKey:     true,
	generator.KindPublicKey:      true,
	generator.KindKubeconfig:     true,
	generator.KindManifest:       true,
	generator.KindStaticPod:      true,
	generator.KindBootstrapToken: true,
	generator.KindEncryptionKey:  true,
	generator.KindMachineSecrets: true,
	generator.KindRoleIgnition:   true,
}

var (
	adminKubeconfigPath = path.Join(generator.OutAuthDir, "admin.conf")
	caCertificatePath   = path.Join(generator.OutPKIDir, generator.CACert)
)

// indexInState is a render's index.json as asset_index keeps it: compact, since a large cluster's
// index is the largest value in state.
func indexInState(assets *generator.Assets) string {
	var b bytes.Buffer
	if err := json.Compact(&b, assets.IndexJSON()); err != nil {
		panic(err) // IndexJSON marshals a Go value
	}
	return b.String()
}

// rendered is what liftoff_cluster exports from a render, in plain Go values: built from a fresh
// render's assets or from the state of an earlier one, so the two can be compared.
type rendered struct {
	ignition        map[string]string // by machine name
	pools           map[string]string // worker pools' Ignition configs, by pool name
	roles           map[string]string // roles' shared Ignition configs, by role
	adminKubeconfig string
	caCertificate   string
	certificates    []certificateInfo
	index           map[string]generator.IndexEntry // by path
	indexJSON       string                          // index.json
	platform        map[string]string               // by path
	keys            map[string]string               // by path
}

type certificateInfo struct {
	Path, Subject, NotAfter string
}

// renderedOf sorts a render's assets into what liftoff_cluster exports.
func renderedOf(assets *generator.Assets) (*rendered, error) {
	r := &rendered{
		ignition: map[string]string{},
		pools:    map[string]string{},
		roles:    map[string]string{},
		index:    map[string]generator.IndexEntry{},
		platform: map[string]string{},
		keys:     map[string]string{},
	}
	r.indexJSON = indexInState(assets)
	for _, e := range assets.Index().Assets {
		r.index[e.Path] = e
	}
	var platform []generator.Asset
	for _, a := range assets.Files {
		switch {
		case a.Kind == generator.KindIgnition && a.Node != "":
			r.ignition[a.Node] = string(a.Data)
		case a.Kind == generator.KindIgnition && a.Pool != "":
			r.pools[a.Pool] = string(a.Data)
		case a.Kind == generator.KindRoleIgnition:
			r.roles[a.Role] = string(a.Data)
		case a.Path == adminKubeconfigPath:
			r.adminKubeconfig = string(a.Data)
		case !generatorKinds[a.Kind]:
			platform = append(platform, a)
		}
		if a.Path == caCertificatePath {
			r.caCertificate = string(a.Data)
		}
		if a.KeyMaterial() {
			r.keys[a.Path] = string(a.Data)
		}
	}
	// A platform file that is a machine's or a role's Ignition config byte for byte (matchbox serves
	// them as they are) is not stored twice: state would double. asset_index lists it, ignition or
	// role_ignition holds it.
	for _, a := range platform {
		switch data := string(a.Data); {
		case a.Node != "" && r.ignition[a.Node] == data:
		case a.Node == "" && a.Role != "" && r.roles[a.Role] == data:
		default:
			r.platform[a.Path] = data
		}
	}
	certs, err := generator.Certificates(assets.Files)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		r.certificates = append(r.certificates, certificateInfo{c.Path, c.Subject, c.NotAfter.UTC().Format(time.RFC3339)})
	}
	if r.caCertificate == "" || r.adminKubeconfig == "" {
		return nil, fmt.Errorf("the render has no %s or %s", caCertificatePath, adminKubeconfigPath)
	}
	return r, nil
}

// renderedFromState reads the outputs of the previous apply back from state.
func renderedFromState(ctx context.Context, o *clusterOutputs) (*rendered, diag.Diagnostics) {
	var diags diag.Diagnostics
	strMap := func(m types.Map) map[string]string { return mapOf(ctx, m, &diags) }
	r := &rendered{
		ignition:        strMap(o.Ignition),
		pools:           strMap(o.PoolIgnition),
		roles:           strMap(o.RoleIgnition),
		adminKubeconfig: o.AdminKubeconfig.ValueString(),
		caCertificate:   o.CACertificate.ValueString(),
		index:           map[string]generator.IndexEntry{},
		indexJSON:       o.AssetIndex.ValueString(),
		platform:        strMap(o.PlatformAssets),
		keys:            strMap(o.KeyMaterial),
	}
	if r.indexJSON != "" {
		var idx generator.Index
		if err := json.Unmarshal([]byte(r.indexJSON), &idx); err != nil {
			diags.AddAttributeError(tfpath.Root("asset_index"), "Unreadable asset index in state", err.Error())
		}
		for _, e := range idx.Assets {
			r.index[e.Path] = e
		}
	}
	if !o.Certificates.IsNull() && !o.Certificates.IsUnknown() {
		var certs []certificateModel
		diags.Append(o.Certificates.ElementsAs(ctx, &certs, false)...)
		for _, c := range certs {
			r.certificates = append(r.certificates, certificateInfo{c.Path.ValueString(), c.Subject.ValueString(), c.NotAfter.ValueString()})
		}
	}
	return r, diags
}

// storedCertificates parses the certificates among the key material.
func (r *rendered) storedCertificates() ([]generator.Certificate, error) {
	var files []generator.Asset
	for p, data := range r.keys {
		if r.index[p].Kind == generator.KindCertificate {
			files = append(files, generator.Asset{Path: p, Kind: generator.KindCertificate, Data: []byte(data)})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return generator.Certificates(files)
}

// keyFS is stored key material as the output directory a render reuses.
func keyFS(keys map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for p, data := range keys {
		fsys[p] = &fstest.MapFile{Data: []byte(data), Mode: 0o600}
	}
	return fsys
}

// outputs turns a render into attribute values. With uncertain set, the render created or re-issued
// key material that the apply will issue afresh (signatures differ each time), so every value that
// differs from before is unknown in the plan; a value equal to before stays known, and so do all
// values when nothing was issued, which is why a plan names exactly what changes.
func (r *rendered) outputs(before *rendered, uncertain bool) (clusterOutputs, diag.Diagnostics) {
	var diags diag.Diagnostics
	if before == nil {
		before = &rendered{}
	}
	str := func(now, was string) types.String {
		if uncertain && now != was {
			return types.StringUnknown()
		}
		return types.StringValue(now)
	}
	strMap := func(now, was map[string]string) types.Map {
		elems := make(map[string]attr.Value, len(now))
		for k, v := range now {
			elems[k] = str(v, was[k])
		}
		m, d := types.MapValue(types.StringType, elems)
		diags.Append(d...)
		return m
	}
	var o clusterOutputs
	o.Ignition = strMap(r.ignition, before.ignition)
	o.IgnitionSHA256 = strMap(digests(r.ignition), digests(before.ignition))
	o.PoolIgnition = strMap(r.pools, before.pools)
	o.PoolSHA256 = strMap(digests(r.pools), digests(before.pools))
	o.RoleIgnition = strMap(r.roles, before.roles)
	o.KeyMaterial = strMap(r.keys, before.keys)
	o.PlatformAssets = strMap(r.platform, before.platform)
	o.AdminKubeconfig = str(r.adminKubeconfig, before.adminKubeconfig)
	o.CACertificate = str(r.caCertificate, before.caCertificate)

	certs := make([]attr.Value, 0, len(r.certificates))
	for _, c := range r.certificates {
		notAfter := types.StringValue(c.NotAfter)
		if uncertain && r.keys[c.Path] != before.keys[c.Path] {
			notAfter = types.StringUnknown()
		}
		v, d := types.ObjectValue(certificateType.AttrTypes, map[string]attr.Value{
			"path": types.StringValue(c.Path), "subject": types.StringValue(c.Subject), "not_after": notAfter,
		})
		diags.Append(d...)
		certs = append(certs, v)
	}
	var d diag.Diagnostics
	o.Certificates, d = types.ListValue(certificateType, certs)
	diags.Append(d...)
	o.AssetIndex = str(r.indexJSON, before.indexJSON)
	return o, diags
}

// digests maps each value to its SHA-256 (hex).
func digests(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		sum := sha256.Sum256([]byte(v))
		out[k] = hex.EncodeToString(sum[:])
	}
	return out
}

// values are the outputs by attribute name.
func (o clusterOutputs) values() map[string]attr.Value {
	v := reflect.ValueOf(o)
	out := make(map[string]attr.Value, v.NumField())
	for i := range v.NumField() {
		out[v.Type().Field(i).Tag.Get("tfsdk")] = v.Field(i).Interface().(attr.Value)
	}
	return out
}

// attributeGetter is a plan, a state or a configuration.
type attributeGetter interface {
	GetAttribute(ctx context.Context, p tfpath.Path, target any) diag.Diagnostics
}

// outputsOf reads the outputs of a state (or plan), attribute by attribute: the arguments are not
// decoded.
func outputsOf(ctx context.Context, g attributeGetter) (clusterOutputs, diag.Diagnostics) {
	var o clusterOutputs
	var diags diag.Diagnostics
	v := reflect.ValueOf(&o).Elem()
	for i := range v.NumField() {
		diags.Append(g.GetAttribute(ctx, tfpath.Root(v.Type().Field(i).Tag.Get("tfsdk")), v.Field(i).Addr().Interface())...)
	}
	return o, diags
}

// withValues is raw, liftoff_cluster's object, with the attributes in set replaced: one new object
// that keeps every other attribute's value as it is.
func withValues(ctx context.Context, raw tftypes.Value, set map[string]attr.Value) (tftypes.Value, error) {
	attrs := map[string]tftypes.Value{}
	if err := raw.As(&attrs); err != nil {
		return raw, err
	}
	for name, v := range set {
		tv, err := v.ToTerraformValue(ctx)
		if err != nil {
			return raw, fmt.Errorf("%s: %w", name, err)
		}
		attrs[name] = tv
	}
	return tftypes.NewValue(raw.Type(), attrs), nil
}
