package images

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/spec"
)

func defaultRefs() []string {
	return ForSpec(spec.WithDefaults(&spec.Cluster{}).Images)
}

func TestForSpecNamesEveryImageOnce(t *testing.T) {
	refs := defaultRefs()
	want := []string{
		"registry.k8s.io/kube-apiserver:" + versions.Kubernetes,
		"registry.k8s.io/kube-controller-manager:" + versions.Kubernetes,
		"registry.k8s.io/kube-scheduler:" + versions.Kubernetes,
		"registry.k8s.io/kube-proxy:" + versions.Kubernetes,
		"registry.k8s.io/coredns/coredns:" + versions.CoreDNS,
		"ghcr.io/flannel-io/flannel:" + versions.Flannel,
		"ghcr.io/flannel-io/flannel-cni-plugin:" + versions.FlannelCNIPlugin,
		"registry.k8s.io/pause:" + versions.Pause,
		"ghcr.io/liftoff-k8s/liftoff:" + versions.Liftoff,
	}
	if !slices.Equal(refs, want) {
		t.Errorf("ForSpec(defaults) = %v\nwant %v", refs, want)
	}
	for _, ref := range refs {
		r, err := parseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := images[r.kind()]; !ok {
			t.Errorf("no image for %s", ref)
		}
	}
	same := &spec.Images{KubeAPIServer: "x.io/pause:1", Pause: "x.io/pause:1"}
	if got := ForSpec(same); !slices.Equal(got, []string{"x.io/pause:1"}) {
		t.Errorf("ForSpec with one image twice = %v", got)
	}
}

func TestReferenceNames(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		ref   string
		kind  string
		names []string
	}{
		{"registry.k8s.io/kube-apiserver:v1.35.4", "kube-apiserver",
			[]string{"registry.k8s.io/kube-apiserver:v1.35.4", "registry.k8s.io/kube-apiserver@" + d}},
		{"registry.k8s.io/coredns/coredns@" + d, "coredns",
			[]string{"registry.k8s.io/coredns/coredns@" + d}},
		{"localhost:5000/pause:3.10@" + d, "pause",
			[]string{"localhost:5000/pause:3.10@" + d, "localhost:5000/pause@" + d}},
		{"pause:3.10", "pause",
			[]string{"pause:3.10", "docker.io/library/pause:3.10", "docker.io/library/pause@" + d}},
		{"flannel/flannel", "flannel",
			[]string{"flannel/flannel", "docker.io/flannel/flannel:latest", "docker.io/flannel/flannel@" + d}},
	}
	for _, tt := range tests {
		r, err := parseRef(tt.ref)
		if err != nil {
			t.Fatalf("parseRef(%q): %v", tt.ref, err)
		}
		if r.kind() != tt.kind {
			t.Errorf("kind(%q) = %q, want %q", tt.ref, r.kind(), tt.kind)
		}
		if got := r.names(d); !slices.Equal(got, tt.names) {
			t.Errorf("names(%q) = %v\nwant %v", tt.ref, got, tt.names)
		}
	}
	if _, err := parseRef("Not A Reference"); err == nil {
		t.Error("parseRef accepted a malformed reference")
	}
}

func TestUnknownRepositoryIsAnError(t *testing.T) {
	_, err := Build(t.Context(), []string{"registry.example/team/nginx:1.27"})
	if err == nil {
		t.Fatal("built an image for a repository liftoff knows nothing of")
	}
	for _, want := range []string{"registry.example/team/nginx:1.27", `"nginx"`, "kube-apiserver", "pause"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// TestPauseImageIsReproducibleAndPinnable builds the small pause image twice from scratch and
// compares the bytes, then asks for it pinned by its digest, and by a wrong one.
func TestPauseImageIsReproducibleAndPinnable(t *testing.T) {
	const ref = "registry.k8s.io/pause:" + versions.Pause
	first, err := Build(t.Context(), []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	a := first[0]
	sum1 := fileSHA512(t, a.Path)

	r, _ := parseRef(ref)
	trees, config, err := contents(t.Context(), r.kind(), images[r.kind()])
	if err != nil {
		t.Fatal(err)
	}
	again, err := write(r, trees, config, t.TempDir(), filepath.Join(t.TempDir(), "again"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != a.Digest || fileSHA512(t, again.Path) != sum1 {
		t.Errorf("a second build differs: digest %s vs %s", again.Digest, a.Digest)
	}

	pinned, err := Build(t.Context(), []string{a.Pinned()})
	if err != nil {
		t.Fatalf("building %s: %v", a.Pinned(), err)
	}
	if pinned[0].Digest != a.Digest || !slices.Contains(pinned[0].Names, a.Pinned()) {
		t.Errorf("pinned build = %+v, want digest %s named %s", pinned[0], a.Digest, a.Pinned())
	}
	wrong := "registry.k8s.io/pause@sha256:" + strings.Repeat("0", 64)
	if _, err := Build(t.Context(), []string{wrong}); err == nil || !strings.Contains(err.Error(), a.Digest) {
		t.Errorf("a wrong pin gave %v, want an error naming the real digest %s", err, a.Digest)
	}

	// The archive is an OCI layout that names the image by the reference and its digest.
	index := archiveIndex(t, a.Path)
	var names []string
	for _, m := range index.Manifests {
		names = append(names, m.Annotations["io.containerd.image.name"])
		if m.Digest != a.Digest {
			t.Errorf("index names %s, want %s", m.Digest, a.Digest)
		}
	}
	if !slices.Equal(names, []string{ref, a.Pinned()}) {
		t.Errorf("index names %v", names)
	}
}

type ociIndex struct {
	Manifests []struct {
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	} `json:"manifests"`
}

func archiveIndex(t *testing.T, path string) ociIndex {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s has no index.json: %v", path, err)
		}
		if hdr.Name == "index.json" {
			var idx ociIndex
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				t.Fatal(err)
			}
			return idx
		}
	}
}

func fileSHA512(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestCNIPluginsReleaseIsLaidOutLikeUpstream checks the archive a machine's install unit fetches.
func TestCNIPluginsReleaseIsLaidOutLikeUpstream(t *testing.T) {
	path, sum, err := CNIPluginsRelease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "cni-plugins-linux-amd64-"+versions.CNIPlugins+".tgz" {
		t.Errorf("archive is named %s", filepath.Base(path))
	}
	if got := fileSHA512(t, path); got != sum {
		t.Errorf("sha512 = %s, the file's is %s", sum, got)
	}
	published, err := os.ReadFile(path + ".sha512")
	if err != nil || string(published) != sum+"  "+filepath.Base(path)+"\n" {
		t.Errorf("%s.sha512 = %q (%v)", path, published, err)
	}

	dir := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		out, err := os.OpenFile(filepath.Join(dir, filepath.Base(hdr.Name)), os.O_CREATE|os.O_WRONLY, os.FileMode(hdr.Mode))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(out, tr)
		out.Close()
	}
	for _, want := range []string{"./", "./LICENSE", "./README.md", "./bridge", "./host-local", "./loopback", "./portmap"} {
		if !slices.Contains(names, want) {
			t.Errorf("release has no %s: %v", want, names)
		}
	}
	// A plugin answers VERSION with the release it was stamped with.
	cmd := exec.CommandContext(t.Context(), filepath.Join(dir, "bridge"))
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.0.0"}`)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cniVersion") {
		t.Errorf("bridge VERSION: %v\n%s", err, out)
	}
	help, _ := exec.CommandContext(t.Context(), filepath.Join(dir, "bridge")).CombinedOutput()
	if !strings.Contains(string(help), versions.CNIPlugins) {
		t.Errorf("bridge does not say it is %s: %s", versions.CNIPlugins, help)
	}

	start := time.Now()
	again, sum2, err := CNIPluginsRelease(t.Context())
	if err != nil || again != path || sum2 != sum {
		t.Errorf("second call = %s %s %v, want the cached %s", again, sum2, err, path)
	}
	t.Logf("CNI plugins release: %s (%d plugins), cached lookup %s", path, len(testbin.CNIPlugins()), time.Since(start))
}

// TestImagesRunInContainerd builds every image of the default spec, imports them into a real
// containerd and runs programs from them.
func TestImagesRunInContainerd(t *testing.T) {
	ctx := t.Context()
	refs := defaultRefs()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sources, err := sourceKey(root, "./cmd/liftoff")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	archives, err := Build(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built or found %d images in %s", len(archives), time.Since(start).Round(time.Millisecond))
	byKind := map[string]Archive{}
	var total int64
	for i, a := range archives {
		if a.Ref != refs[i] {
			t.Errorf("archive %d is %s, want %s", i, a.Ref, refs[i])
		}
		if !strings.HasPrefix(a.Digest, "sha256:") || len(a.Digest) != 71 {
			t.Errorf("%s: digest %q", a.Ref, a.Digest)
		}
		if !slices.Contains(a.Names, a.Ref) || !slices.Contains(a.Names, a.Pinned()) {
			t.Errorf("%s is named %v", a.Ref, a.Names)
		}
		r, _ := parseRef(a.Ref)
		byKind[r.kind()] = a
		total += a.Size
		t.Logf("%-50s %7.1f MB  %s", a.Ref, float64(a.Size)/1e6, a.Digest)
	}
	t.Logf("%.1f MB in all", float64(total)/1e6)

	start = time.Now()
	again, err := Build(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	cachedTook := time.Since(start)
	t.Logf("cached build: %s", cachedTook.Round(time.Millisecond))
	for i := range again {
		if r, _ := parseRef(refs[i]); r.kind() == "liftoff" && sourcesChanged(t, root, sources) {
			t.Logf("liftoff's sources changed during the test: its image was rebuilt, as it must be")
			continue
		}
		if again[i].Path != archives[i].Path || again[i].Digest != archives[i].Digest {
			t.Errorf("%s: a second build gave %s %s, the first %s %s", refs[i], again[i].Path, again[i].Digest, archives[i].Path, archives[i].Digest)
		}
	}
	if cachedTook > 5*time.Second && !sourcesChanged(t, root, sources) {
		t.Errorf("finding %d cached images took %s", len(refs), cachedTook)
	}

	c := startContainerd(t)
	start = time.Now()
	if err := Import(ctx, "", c.address, archives); err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %d images in %s", len(archives), time.Since(start).Round(time.Millisecond))
	out, err := c.run(ctx, "", "images", "ls", "-q")
	if err != nil {
		t.Fatalf("ctr images ls: %v\n%s", err, out)
	}
	listed := strings.Fields(out)
	for _, a := range archives {
		for _, n := range a.Names {
			if !slices.Contains(listed, n) {
				t.Errorf("containerd does not list %s; it lists %v", n, listed)
			}
		}
	}

	runs := []struct {
		kind       string
		privileged bool
		argv       []string
		want       string
	}{
		{"coredns", false, []string{"/coredns", "-version"}, "CoreDNS-" + strings.TrimPrefix(versions.CoreDNS, "v")},
		{"kube-proxy", false, []string{"kube-proxy", "--version"}, "Kubernetes " + versions.Kubernetes},
		{"kube-proxy", false, []string{"iptables", "--version"}, "(nf_tables)"},
		{"kube-proxy", false, []string{"ip6tables-restore", "--version"}, "(nf_tables)"},
		{"kube-apiserver", false, []string{"kube-apiserver", "--version"}, "Kubernetes " + versions.Kubernetes},
		{"kube-controller-manager", false, []string{"/usr/local/bin/kube-controller-manager", "--version"}, "Kubernetes " + versions.Kubernetes},
		{"kube-scheduler", false, []string{"kube-scheduler", "--version"}, "Kubernetes " + versions.Kubernetes},
		{"flannel", false, []string{"/opt/bin/flanneld", "--version"}, versions.Flannel},
		// flannel's rules, with the extensions iptables loads at run time, in the container's own
		// network namespace.
		{"flannel", true, []string{"sh", "-c", "iptables -t nat -A POSTROUTING -s 10.2.0.0/16 -m comment --comment liftoff -j MASQUERADE" +
			" && iptables -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT && iptables-save"}, "--comment liftoff -j MASQUERADE"},
		{"flannel", false, []string{"sh", "-c", "cp -f /etc/nsswitch.conf /tmp/x && cat /tmp/x && ls -ld /tmp && id nobody"}, "hosts: files dns"},
		{"flannel-cni-plugin", false, []string{"cp", "-f", "/flannel", "/tmp/flannel"}, ""},
		{"pause", false, []string{"/pause", "-v"}, "liftoff-pause"},
		{"liftoff", false, []string{"liftoff", "version"}, "liftoff " + versions.Liftoff},
	}
	for _, run := range runs {
		a, ok := byKind[run.kind]
		if !ok {
			t.Fatalf("no %s image", run.kind)
		}
		out, err := c.runImage(ctx, a.Ref, run.privileged, run.argv...)
		if err != nil {
			t.Errorf("%s in %s: %v\n%s", strings.Join(run.argv, " "), a.Ref, err, out)
			continue
		}
		if !strings.Contains(out, run.want) {
			t.Errorf("%s in %s printed %q, want %q", strings.Join(run.argv, " "), a.Ref, out, run.want)
		}
	}
	// The image pinned by digest is the same image.
	out, err = c.runImage(ctx, byKind["coredns"].Pinned(), false, "/coredns", "-version")
	if err != nil || !strings.Contains(out, "CoreDNS-") {
		t.Errorf("running %s: %v\n%s", byKind["coredns"].Pinned(), err, out)
	}

	// Images imported packed are unpacked when a container first needs them, as the CRI does.
	lazy := startContainerd(t)
	start = time.Now()
	if err := Import(ctx, "", lazy.address, []Archive{byKind["pause"], byKind["coredns"]}, NoUnpack()); err != nil {
		t.Fatal(err)
	}
	t.Logf("imported pause and coredns without unpacking in %s", time.Since(start).Round(time.Millisecond))
	out, err = lazy.runImage(ctx, byKind["coredns"].Ref, false, "/coredns", "-version")
	if err != nil || !strings.Contains(out, "CoreDNS-") {
		t.Errorf("running %s imported packed: %v\n%s", byKind["coredns"].Ref, err, out)
	}
}

// sourcesChanged says whether the module's sources differ from those hashed as before: when
// someone edits them during a test, the liftoff image is rightly built again.
func sourcesChanged(t *testing.T, root, before string) bool {
	now, err := sourceKey(root, "./cmd/liftoff")
	if err != nil {
		t.Fatal(err)
	}
	return now != before
}

// BenchmarkBuildImages times finding every default image in the cache and importing them all
// into a fresh containerd, as a machine of a local cluster does. The first build (minutes when the
// programs are not built yet) is not timed.
func BenchmarkBuildImages(b *testing.B) {
	refs := defaultRefs()
	archives, err := Build(b.Context(), refs)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, a := range archives {
		total += a.Size
	}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := Build(b.Context(), refs); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, bench := range []struct {
		name string
		opts []ImportOption
	}{{"import", nil}, {"import-no-unpack", []ImportOption{NoUnpack()}}} {
		b.Run(bench.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := startContainerd(b)
				b.StartTimer()
				if err := Import(b.Context(), "", c.address, archives, bench.opts...); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				c.stop()
			}
			b.ReportMetric(float64(total)/1e6, "archive-MB")
		})
	}
}
