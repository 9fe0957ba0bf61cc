package spec

import (
	"bytes"
	"errors"
	"fmt"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/liftoff-k8s/liftoff/internal/butane"
)

// Problem is one reason a spec cannot be rendered. Path is where, like At("cluster", "pod_cidr") or
// Block("controller", "node1").Attr("mac"); Line, when set, is a line in the spec file more precise
// than the field's start (a line inside a Butane snippet).
type Problem struct {
	Path    Path
	Summary string
	Detail  string
	Line    int
}

// Field is the problem's path as problems print it, like "controller.node1.mac" (see Ranges).
func (p Problem) Field() string { return p.Path.String() }

// Problems is every problem found in a spec, in the order of the fields.
type Problems []Problem

// Error formats the problems one per line as "file:line: field: summary: detail".
func (ps Problems) Error() string { return ps.Format(nil) }

// Format formats problems with the locations recorded in c (which may be nil).
func (ps Problems) Format(c *Cluster) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		if c != nil {
			if r, ok := c.rangeOf(p); ok {
				fmt.Fprintf(&b, "%s:%d: ", r.Filename, r.Start.Line)
			}
		}
		fmt.Fprintf(&b, "%s: %s", p.Field(), p.Summary)
		if p.Detail != "" {
			fmt.Fprintf(&b, ": %s", p.Detail)
		}
	}
	return b.String()
}

// Diagnostics turns problems into HCL diagnostics pointing at the fields in c's file.
func (ps Problems) Diagnostics(c *Cluster) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, p := range ps {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: p.Summary, Detail: fmt.Sprintf("Field %s: %s", p.Field(), p.Detail)}
		if r, ok := c.rangeOf(p); ok {
			d.Subject = &r
		}
		out = append(out, d)
	}
	return out
}

// rangeOf finds where a problem's field was written, falling back to its enclosing block.
func (c *Cluster) rangeOf(p Problem) (hcl.Range, bool) {
	if c == nil || c.Ranges == nil {
		return hcl.Range{}, false
	}
	field := p.Field()
	for field != "" {
		if r, ok := c.Ranges[field]; ok {
			if p.Line > 0 {
				r.Start = hcl.Pos{Line: p.Line, Column: 1}
				r.End = hcl.Pos{Line: p.Line, Column: 1}
			}
			return r, true
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	if r, ok := c.Ranges["cluster"]; ok {
		return r, true
	}
	return hcl.Range{}, false
}

// LineOf returns the spec line that holds line lineInValue of a string field: a heredoc's text
// begins on the line after its opening marker. It returns 0 when the field's place is unknown.
func (c *Cluster) LineOf(field string, lineInValue int) int {
	r, ok := c.Ranges[field]
	if !ok {
		return 0
	}
	// Only a heredoc's lines are the spec's lines; a quoted string or file() has its own.
	if r.Start.Byte >= len(c.Source) || !bytes.HasPrefix(c.Source[r.Start.Byte:], []byte("<<")) || lineInValue < 1 {
		return r.Start.Line
	}
	return r.Start.Line + lineInValue
}

var (
	versionRE   = regexp.MustCompile(`^v1\.(\d+)\.(\d+)$`)
	imageRE     = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
	sha512RE    = regexp.MustCompile(`^[a-f0-9]{128}$`)
	sha256RE    = regexp.MustCompile(`^[a-f0-9]{64}$`)
	taintRE     = regexp.MustCompile(`^([^=:]+)(=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$`)
	algorithms  = []string{"ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"}
	minMinor    = 33
	maxMinor    = 37
	maxControls = 7
)

type validator struct {
	c  *Cluster
	ps Problems
	// translated are the snippets translated so far, by source.
	translated map[string]igntypes.Config
}

func (v *validator) add(at Path, summary, detail string, args ...any) {
	v.ps = append(v.ps, Problem{Path: at, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
}

// Validate checks a spec (after WithDefaults) for anything that would yield a broken cluster.
func Validate(c *Cluster) Problems {
	v := &validator{c: c, translated: map[string]igntypes.Config{}}
	v.cluster()
	v.network()
	v.pki()
	v.images()
	v.program("kubelet", c.Kubelet)
	v.program("etcd", c.Etcd)
	v.program("cni_plugins", c.CNIPlugins)
	if c.CNIPlugins.Delivery != DeliveryDownload {
		v.add(At("cni_plugins", "delivery"), "Unsupported delivery", "CNI plugins are installed only by download")
	}
	v.etcdSnapshots()
	v.etcdRestore()
	v.machineSecrets()
	v.roleConfigURL()
	v.role(At("controllers"), c.ControllerDefaults)
	v.role(At("workers"), c.WorkerDefaults)
	v.machines()
	v.ps = append(v.ps, platformProblems(c)...)
	if len(v.ps) == 0 {
		c.snippets = v.translated
	}
	return v.ps
}

// Complete applies defaults and validates: the one call the CLI and the provider make.
func Complete(c *Cluster) (*Cluster, error) {
	full := WithDefaults(c)
	full.Ranges, full.Source, full.Filename = c.Ranges, c.Source, c.Filename
	if ps := Validate(full); len(ps) > 0 {
		return nil, &Invalid{Cluster: full, Problems: ps}
	}
	return full, nil
}

// Invalid is the error Complete returns; it formats with file and line where known.
type Invalid struct {
	Cluster  *Cluster
	Problems Problems
}

func (e *Invalid) Error() string { return e.Problems.Format(e.Cluster) }

// AsInvalid reports whether err is (or wraps) an *Invalid.
func AsInvalid(err error) (*Invalid, bool) {
	var inv *Invalid
	ok := errors.As(err, &inv)
	return inv, ok
}

func (v *validator) cluster() {
	c := v.c
	if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
		v.add(At("cluster"), "Invalid cluster name", "%q: %s", c.Name, strings.Join(errs, "; "))
	}
	if m := versionRE.FindStringSubmatch(c.KubernetesVersion); m == nil {
		v.add(At("cluster", "kubernetes_version"), "Invalid Kubernetes version", "%q is not a release version like \"v1.35.4\"", c.KubernetesVersion)
	} else if minor, _ := strconv.Atoi(m[1]); minor < minMinor || minor > maxMinor {
		v.add(At("cluster", "kubernetes_version"), "Unsupported Kubernetes version", "%s: liftoff renders v1.%d to v1.%d", c.KubernetesVersion, minMinor, maxMinor)
	}
	oneOf(v, At("cluster", "os"), "operating system", c.OS, OSFlatcar, OSFCOS)
	oneOf(v, At("cluster", "control_plane"), "control-plane mode", c.ControlPlane, ControlPlaneStatic, ControlPlaneSelfHosted)
	oneOf(v, At("cluster", "networking"), "networking", c.Networking, "flannel", "none")
	oneOf(v, At("cluster", "arch"), "architecture", c.Arch, "amd64", "arm64")
	if u, err := url.Parse(c.APIServer); err != nil || u.Scheme != "https" || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		v.add(At("cluster", "api_server"), "Invalid API server URL", "%q must be https://HOST:PORT with nothing after the port", c.APIServer)
	} else if p, _ := strconv.Atoi(u.Port()); p < 1 || p > 65535 {
		v.add(At("cluster", "api_server"), "Invalid API server URL", "port %s is out of range", u.Port())
	} else if net.ParseIP(u.Hostname()) == nil {
		if errs := validation.IsDNS1123Subdomain(u.Hostname()); len(errs) > 0 {
			v.add(At("cluster", "api_server"), "Invalid API server URL", "host %q: %s", u.Hostname(), strings.Join(errs, "; "))
		}
	}
	if errs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(errs) > 0 {
		v.add(At("cluster", "cluster_domain"), "Invalid cluster domain", "%q: %s", c.ClusterDomain, strings.Join(errs, "; "))
	}
	for i, k := range c.SSHAuthorizedKeys {
		if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil || len(bytes.TrimSpace(rest)) > 0 {
			v.add(At("cluster", "ssh_authorized_keys").Index(i), "Invalid SSH authorized key", "key %d is not one OpenSSH authorized_keys line", i+1)
		}
	}
}

func oneOf(v *validator, field Path, what, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.add(field, "Unsupported "+what, "%q is not one of %s", got, strings.Join(quoteAll(allowed), ", "))
}

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strconv.Quote(s)
	}
	return out
}

type namedPrefix struct {
	field Path
	p     netip.Prefix
	host  bool // one of host_cidrs
}

func (v *validator) prefix(field Path, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		v.add(field, "Invalid CIDR", "%q is not an address range like 10.2.0.0/16", s)
		return p, false
	case !p.Addr().Is4():
		v.add(field, "Unsupported CIDR", "%q: liftoff renders IPv4 clusters", s)
		return p, false
	case p.Masked() != p:
		v.add(field, "Invalid CIDR", "%q has host bits set; did you mean %s?", s, p.Masked())
		return p, false
	}
	return p, true
}

func (v *validator) network() {
	c := v.c
	var ranges []namedPrefix
	pod, podOK := v.prefix(At("cluster", "pod_cidr"), c.PodCIDR)
	if podOK {
		ranges = append(ranges, namedPrefix{At("cluster", "pod_cidr"), pod, false})
		if pod.Bits() > 24 {
			v.add(At("cluster", "pod_cidr"), "Pod CIDR too small", "%s: each node gets a /24, so the pod CIDR must be /24 or larger", c.PodCIDR)
		} else if n := len(c.Controllers) + len(c.Workers) + c.poolCapacity(); n > 1<<(24-pod.Bits()) {
			v.add(At("cluster", "pod_cidr"), "Pod CIDR too small", "%s holds %d node /24s, but the spec has %d machines", c.PodCIDR, 1<<(24-pod.Bits()), n)
		}
	}
	svc, svcOK := v.prefix(At("cluster", "service_cidr"), c.ServiceCIDR)
	if svcOK {
		ranges = append(ranges, namedPrefix{At("cluster", "service_cidr"), svc, false})
		if svc.Bits() < 12 || svc.Bits() > 28 {
			v.add(At("cluster", "service_cidr"), "Unsupported service CIDR size", "%s: kube-apiserver accepts IPv4 service CIDRs from /12 to /28 here", c.ServiceCIDR)
		}
	}
	for i, h := range c.HostCIDRs {
		f := At("cluster", "host_cidrs").Index(i)
		if p, ok := v.prefix(f, h); ok {
			ranges = append(ranges, namedPrefix{f, p, true})
		}
	}
	for i := range ranges {
		for j := i + 1; j < len(ranges); j++ {
			if ranges[i].p.Overlaps(ranges[j].p) {
				v.add(ranges[j].field, "Overlapping CIDRs", "%s overlaps %s (%s)", ranges[j].p, ranges[i].p, ranges[i].field)
			}
		}
	}
	hosts := 0
	for _, r := range ranges {
		if r.host {
			hosts++
		}
	}
	for _, n := range c.Machines() {
		ip, err := netip.ParseAddr(n.IP)
		if err != nil {
			continue // reported by machines()
		}
		inHost := hosts == 0
		for _, r := range ranges {
			if !r.p.Contains(ip) {
				continue
			}
			if r.host {
				inHost = true
			} else {
				v.add(MachinePath(n).Attr("ip"), "Machine IP inside a cluster CIDR", "%s is inside %s (%s), which the cluster routes itself", n.IP, r.p, r.field)
			}
		}
		if !inHost {
			v.add(MachinePath(n).Attr("ip"), "Machine IP outside the host CIDRs", "%s is in none of host_cidrs", n.IP)
		}
	}
}

// ParseDuration reads a duration in Go syntax (8760h) or whole days (365d).
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a whole number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func (v *validator) pki() {
	p := v.c.PKI
	oneOf(v, At("pki", "key_algorithm"), "key algorithm", p.KeyAlgorithm, algorithms...)
	dur := func(field Path, s string) time.Duration {
		d, err := ParseDuration(s)
		if err != nil || d <= 0 {
			v.add(field, "Invalid duration", "%q is not a positive duration like \"8760h\" or \"365d\"", s)
			return 0
		}
		return d
	}
	ca, cert, renew := dur(At("pki", "ca_validity"), p.CAValidity), dur(At("pki", "cert_validity"), p.CertValidity), dur(At("pki", "renew_before"), p.RenewBefore)
	if ca > 0 && cert > 0 && cert > ca {
		v.add(At("pki", "cert_validity"), "Certificates outlive their CA", "cert_validity %s is longer than ca_validity %s", p.CertValidity, p.CAValidity)
	}
	if cert > 0 && renew > 0 && renew >= cert {
		v.add(At("pki", "renew_before"), "Renewal window too long", "renew_before %s is not shorter than cert_validity %s, so every render would renew", p.RenewBefore, p.CertValidity)
	}
	if ttl := dur(At("pki", "bootstrap_token_ttl"), p.BootstrapTokenTTL); ttl > 0 && ttl < time.Minute {
		v.add(At("pki", "bootstrap_token_ttl"), "Bootstrap token too short-lived", "%s: a machine needs at least a minute from its render to join", p.BootstrapTokenTTL)
	}
	if cert > 0 && cert < time.Hour {
		v.add(At("pki", "cert_validity"), "Certificates too short-lived", "%s: certificates must be valid for at least an hour", p.CertValidity)
	}
	for i, s := range p.ExtraSANs {
		if net.ParseIP(s) != nil {
			continue
		}
		base, wildcard := strings.CutPrefix(s, "*.")
		if errs := validation.IsDNS1123Subdomain(base); len(errs) > 0 {
			v.add(At("pki", "extra_sans").Index(i), "Invalid subject alternative name", "%q is neither an IP address nor a DNS name", s)
			continue
		}
		// A wildcard must stay inside one domain the cluster's owner holds: *.example.com, not *.com.
		if wildcard && !strings.Contains(base, ".") {
			v.add(At("pki", "extra_sans").Index(i), "Over-broad subject alternative name",
				"%q would let the apiserver's certificate stand for every name under %q; name a domain of your own, like *.%s.example", s, base, base)
		}
	}
}

func (v *validator) images() {
	img := v.c.Images
	for _, f := range []struct{ name, ref string }{
		{"kube_apiserver", img.KubeAPIServer}, {"kube_controller_manager", img.KubeControllerManager},
		{"kube_scheduler", img.KubeScheduler}, {"kube_proxy", img.KubeProxy}, {"coredns", img.CoreDNS},
		{"flannel", img.Flannel}, {"flannel_cni_plugin", img.FlannelCNIPlugin}, {"pause", img.Pause}, {"liftoff", img.Liftoff},
	} {
		if !imageRE.MatchString(f.ref) {
			v.add(At("images", f.name), "Invalid image reference", "%q is not an image reference like registry.k8s.io/pause:3.10.1 or one pinned with @sha256:<64 hex digits>", f.ref)
		}
	}
}

func (v *validator) program(name string, p *Program) {
	oneOf(v, At(name, "delivery"), "delivery", p.Delivery, DeliveryDownload, DeliveryContainer, DeliverySysext)
	if p.SHA512 != "" && !sha512RE.MatchString(p.SHA512) {
		v.add(At(name, "sha512"), "Invalid sha512", "%q is not 128 hex digits", p.SHA512)
	}
	if !strings.HasPrefix(p.Version, "v") {
		v.add(At(name, "version"), "Invalid version", "%q must be a release tag such as v1.35.4", p.Version)
	}
	switch p.Delivery {
	case DeliveryDownload, DeliverySysext:
		if p.URL == "" {
			v.add(At(name, "url"), "Missing URL", "%s delivery fetches from url; set it", p.Delivery)
		} else if u, err := url.Parse(p.Expand(v.c.Arch)); err != nil || u.Scheme != "https" || u.Host == "" {
			v.add(At(name, "url"), "Invalid URL", "%q must be an https URL (Ignition and the installer verify TLS)", p.URL)
		}
		if p.Delivery == DeliverySysext && p.SHA512 == "" {
			v.add(At(name, "sha512"), "Missing sha512", "a sysext image is fetched by Ignition and must be pinned with sha512")
		}
		if _, _, published := PublishedChecksum(name, p, v.c.Arch); p.Delivery == DeliveryDownload && p.SHA512 == "" && !published {
			v.add(At(name, "sha512"), "Missing sha512", "%q is not liftoff's default download, whose published checksum it knows; pin the file with sha512", p.URL)
		}
		if p.Image != "" {
			v.add(At(name, "image"), "Image set for a non-container delivery", "image is used only with delivery = \"container\"")
		}
	case DeliveryContainer:
		if !imageRE.MatchString(p.Image) || !strings.Contains(p.Image, "@sha256:") {
			v.add(At(name, "image"), "Container image not pinned", "%q: container delivery needs an image pinned by digest (name@sha256:<64 hex digits>)", p.Image)
		}
		if p.URL != "" || p.SHA512 != "" {
			v.add(At(name, "url"), "URL set for container delivery", "url and sha512 are used only with download or sysext delivery")
		}
	}
}

// etcdSnapshots checks the snapshot settings even when snapshots are off, so that turning them on
// later does not surprise.
func (v *validator) etcdSnapshots() {
	s := v.c.EtcdSnapshots
	if d, err := ParseDuration(s.Interval); err != nil || d <= 0 {
		v.add(At("etcd_snapshots", "interval"), "Invalid duration", "%q is not a positive duration like \"1h\", \"30m\" or \"1d\"", s.Interval)
	} else if d < MinEtcdSnapshotInterval {
		v.add(At("etcd_snapshots", "interval"), "Snapshot interval too short",
			"%s: snapshots must be at least %s apart, as each one reads the whole etcd database", s.Interval,
			strings.TrimSuffix(MinEtcdSnapshotInterval.String(), "0s"))
	}
	if *s.Keep < 1 {
		v.add(At("etcd_snapshots", "keep"), "Invalid snapshot count", "keep = %d: keep at least 1 snapshot, or set enabled = false to take none", *s.Keep)
	}
}

// urlTextRE is the characters a URL is written with (RFC 3986); anything else is percent-encoded.
// A URL of these needs no quoting in a systemd unit but %'s doubling.
var urlTextRE = regexp.MustCompile(`^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$`)

// etcdRestore checks the snapshot controllers restore from: it comes over HTTPS and is pinned by its
// digest, as a controller restores only a download that matches it.
func (v *validator) etcdRestore() {
	r := v.c.EtcdRestore
	if r == nil {
		return
	}
	if r.URL == "" {
		v.add(At("etcd_restore", "url"), "Missing URL", "set url to the https URL each controller downloads the snapshot from")
	} else if u, err := url.Parse(r.URL); err != nil || u.Scheme != "https" || u.Host == "" || !urlTextRE.MatchString(r.URL) {
		v.add(At("etcd_restore", "url"), "Invalid URL", "%q must be an https URL, with anything but RFC 3986's characters percent-encoded", r.URL)
	}
	if r.SHA256 == "" {
		v.add(At("etcd_restore", "sha256"), "Missing sha256", "a snapshot is restored only when it matches its digest: set sha256 to the 64 hex digits of its .sha256 file")
	} else if !sha256RE.MatchString(r.SHA256) {
		v.add(At("etcd_restore", "sha256"), "Invalid sha256", "%q is not 64 lowercase hex digits (the first field of the snapshot's .sha256 file)", r.SHA256)
	}
}

func (v *validator) roleConfigURL() {
	raw := v.c.RoleConfigURL
	if raw == "" {
		return
	}
	at := At("cluster", "role_config_url")
	filled := strings.ReplaceAll(raw, RoleConfigURLRole, "worker")
	u, err := url.Parse(filled)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !urlTextRE.MatchString(filled):
		v.add(at, "Invalid role config URL", "%q must be an http or https URL, with anything but RFC 3986's characters percent-encoded", raw)
	case !strings.Contains(raw, RoleConfigURLRole):
		v.add(at, "Role config URL without the role", "%q must name the role with %s, like https://configs.example.com/%s.ign: each role has a config of its own", raw, RoleConfigURLRole, RoleConfigURLRole)
	case !v.c.FetchesSecrets():
		v.add(at, "Role configs with secrets in them", "a role's config goes to every machine of the role, so it may hold no private key or credential: set machine_secrets.server so that each machine fetches its own")
	}
}

func (v *validator) machineSecrets() {
	s := v.c.MachineSecrets
	switch {
	case s == nil:
		// A platform that serves configs in the clear requires machine_secrets (its own validation).
	case s.Server != "" && s.InIgnition:
		v.add(At("machine_secrets", "in_ignition"), "Conflicting machine secrets", "machine secrets are either fetched from server or in the Ignition configs, not both")
	case s.Server != "":
		host, port, err := net.SplitHostPort(s.Server)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			v.add(At("machine_secrets", "server"), "Invalid secrets server", "%q is not HOST:PORT", s.Server)
		} else if net.ParseIP(host) == nil {
			if errs := validation.IsDNS1123Subdomain(host); len(errs) > 0 {
				v.add(At("machine_secrets", "server"), "Invalid secrets server", "host %q: %s", host, strings.Join(errs, "; "))
			}
		}
	}
}

func (v *validator) role(at Path, r *RoleDefaults) {
	v.labels(at.Attr("labels"), r.Labels)
	v.taints(at.Attr("taints"), r.Taints)
	v.snippets(at.Attr("snippets"), r.Snippets)
}

func (v *validator) labels(field Path, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := field.Key(k)
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			v.add(f, "Invalid label key", "%q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(labels[k]); len(errs) > 0 {
			v.add(f, "Invalid label value", "%q: %s", labels[k], strings.Join(errs, "; "))
		}
		if !kubeletMaySet(k) {
			v.add(f, "Label the kubelet may not set", "%q: the NodeRestriction admission plugin refuses kubelets that set labels under kubernetes.io or k8s.io other than node.kubernetes.io/, kubelet.kubernetes.io/ and the well-known topology labels; use another prefix", k)
		}
	}
}

func (v *validator) taints(field Path, taints []string) {
	for i, t := range taints {
		f := field.Index(i)
		m := taintRE.FindStringSubmatch(t)
		if m == nil {
			v.add(f, "Invalid taint", "%q is not key=value:Effect or key:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute", t)
			continue
		}
		if errs := validation.IsQualifiedName(m[1]); len(errs) > 0 {
			v.add(f, "Invalid taint key", "%q: %s", m[1], strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(m[3]); len(errs) > 0 {
			v.add(f, "Invalid taint value", "%q: %s", m[3], strings.Join(errs, "; "))
		}
	}
}

func (v *validator) snippets(field Path, snippets []string) {
	variant, _ := butane.Header(v.c.OS)
	for i, s := range snippets {
		f := field.Index(i)
		if _, done := v.translated[s]; done {
			continue
		}
		cfg, err := butane.Translate([]byte(s))
		if err != nil {
			var be *butane.Error
			if !errors.As(err, &be) {
				v.add(f, "Invalid Butane snippet", "%v", err)
				continue
			}
			for _, is := range be.Issues {
				p := Problem{Path: f, Summary: "Invalid Butane snippet", Detail: is.String()}
				if is.Line > 0 {
					p.Line = v.c.LineOf(f.String(), is.Line)
					p.Detail = fmt.Sprintf("snippet line %d: %s", is.Line, strings.TrimPrefix(is.String(), fmt.Sprintf("line %d, ", is.Line)))
				}
				v.ps = append(v.ps, p)
			}
			continue
		}
		if !strings.Contains(s, "variant: "+variant) {
			v.add(f, "Snippet for another OS", "the cluster runs %s; start the snippet with \"variant: %s\"", v.c.OS, variant)
			continue
		}
		v.translated[s] = cfg
	}
}

func (v *validator) machines() {
	c := v.c
	if len(c.Controllers) == 0 {
		v.add(At("cluster", "controllers"), "No controllers", "a cluster needs at least one controller block")
	}
	if n := len(c.Controllers); n > maxControls {
		v.add(MachinePath(c.Controllers[maxControls]), "Too many controllers", "%d controllers: etcd clusters larger than %d only slow writes down", n, maxControls)
	}
	if n := len(c.Controllers); n > 0 && n%2 == 0 && !c.AllowEvenControllers {
		v.add(MachinePath(c.Controllers[n-1]), "Even number of controllers",
			"%d controllers tolerate no more failures than %d; remove one, add one, or set allow_even_controllers = true", n, n-1)
	}
	if c.Bootstrap != nil && c.ControlPlane != ControlPlaneSelfHosted {
		v.add(MachinePath(*c.Bootstrap), "Bootstrap machine without a pivot",
			"a bootstrap machine runs the temporary control plane of a self-hosted cluster's pivot; set control_plane = %q or remove the bootstrap block", ControlPlaneSelfHosted)
	}
	seen := map[string]map[string]string{"name": {}, "mac": {}, "ip": {}, "domain": {}}
	for _, p := range c.WorkerPools {
		prefix := Block("worker_pool", p.Name)
		if errs := validation.IsDNS1123Label(p.Name); len(errs) > 0 {
			v.add(prefix, "Invalid worker pool name", "%q: %s", p.Name, strings.Join(errs, "; "))
		}
		if prev, ok := seen["name"][p.Name]; ok {
			v.add(prefix, "Duplicate name", "%q is also used by %s", p.Name, prev)
		}
		seen["name"][p.Name] = prefix.String()
		if p.Size < 0 {
			v.add(prefix.Attr("size"), "Invalid pool size", "%d is negative", p.Size)
		}
		if p.MaxSize < p.Size {
			v.add(prefix.Attr("max_size"), "Invalid pool size", "max_size %d is smaller than size %d", p.MaxSize, p.Size)
		}
		v.labels(prefix.Attr("labels"), p.Labels)
		v.taints(prefix.Attr("taints"), p.Taints)
		v.snippets(prefix.Attr("snippets"), p.Snippets)
	}
	// dup reports a value of a kind (name, ip, mac, domain) that an earlier machine has, at field
	// of the machine owner.
	dup := func(kind, value string, owner, field Path) {
		if value == "" {
			return
		}
		if prev, ok := seen[kind][value]; ok {
			v.add(field, "Duplicate "+kind, "%q is also used by %s", value, prev)
			return
		}
		seen[kind][value] = owner.String()
	}
	for _, n := range c.Machines() {
		prefix := MachinePath(n)
		if errs := validation.IsDNS1123Label(n.Name); len(errs) > 0 {
			v.add(prefix, "Invalid machine name", "%q becomes the node name and hostname: %s", n.Name, strings.Join(errs, "; "))
		}
		dup("name", n.Name, prefix, prefix)
		if ip, err := netip.ParseAddr(n.IP); err != nil || !ip.Is4() {
			v.add(prefix.Attr("ip"), "Invalid IP address", "%q is not an IPv4 address", n.IP)
		} else if ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			v.add(prefix.Attr("ip"), "Unusable IP address", "%s cannot be a machine's address", n.IP)
		} else {
			dup("ip", ip.String(), prefix, prefix.Attr("ip"))
		}
		if n.MAC != "" {
			if hw, err := net.ParseMAC(n.MAC); err != nil || len(hw) != 6 {
				v.add(prefix.Attr("mac"), "Invalid MAC address", "%q is not a 6-byte MAC address like 52:54:00:a1:9c:ae, 52-54-00-A1-9C-AE or 5254.00a1.9cae", n.MAC)
			} else {
				dup("mac", hw.String(), prefix, prefix.Attr("mac"))
			}
		}
		if n.Domain != "" {
			if errs := validation.IsDNS1123Subdomain(n.Domain); len(errs) > 0 {
				v.add(prefix.Attr("domain"), "Invalid domain", "%q: %s", n.Domain, strings.Join(errs, "; "))
			} else {
				dup("domain", n.Domain, prefix, prefix.Attr("domain"))
			}
		}
		v.labels(prefix.Attr("labels"), n.Labels)
		v.taints(prefix.Attr("taints"), n.Taints)
		v.snippets(prefix.Attr("snippets"), n.Snippets)
	}
}

// kubeletMaySet mirrors the NodeRestriction admission plugin: a kubelet registering its Node may
// set labels under kubernetes.io and k8s.io only in these namespaces or with these keys.
func kubeletMaySet(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return true
	}
	restricted := prefix == "kubernetes.io" || strings.HasSuffix(prefix, ".kubernetes.io") || prefix == "k8s.io" || strings.HasSuffix(prefix, ".k8s.io")
	if !restricted {
		return true
	}
	switch key {
	case "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/instance-type",
		"node.kubernetes.io/instance-type", "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
		"topology.kubernetes.io/region", "topology.kubernetes.io/zone":
		return true
	}
	if prefix == "node-restriction.kubernetes.io" || strings.HasSuffix(prefix, ".node-restriction.kubernetes.io") {
		return false
	}
	return prefix == "kubelet.kubernetes.io" || strings.HasSuffix(prefix, ".kubelet.kubernetes.io") ||
		prefix == "node.kubernetes.io" || strings.HasSuffix(prefix, ".node.kubernetes.io")
}

func (c *Cluster) poolCapacity() int {
	n := 0
	for _, p := range c.WorkerPools {
		n += p.MaxSize
	}
	return n
}
