package testbin

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/liftoff-k8s/liftoff/internal/versions"
)

// A recipe is one wrapper module whose single `go build` produces one or more programs. Programs
// that share most of their code (the three Kubernetes control-plane components, the etcd tools)
// come from one recipe so that they share compile work.
type recipe struct {
	name    string
	version string
	// require and replace are the wrapper module's requirements; a replace applies to every
	// version of its module, which is how the k8s.io staging modules (v0.0.0 in
	// k8s.io/kubernetes's go.mod) are pinned.
	require []module
	replace []module
	// mains are small main packages written into the wrapper module: directory -> source.
	mains    map[string]string
	programs []program
	ldflags  []string
	// tags are build tags.
	tags []string
	cgo  bool
	// hint is added to a build failure to say what usually fixes it.
	hint string
	// sums are go.sum lines the wrapper module starts with, for required modules that the public
	// checksum database does not hold: they are verified against these instead and never looked
	// up there (their paths go into GONOSUMDB).
	sums []string
	// sumsOf is a required module whose own go.sum the wrapper module takes as well, so that its
	// dependencies are verified against the checksums its release recorded rather than looked up.
	sumsOf string
	// files are directories of required modules installed beside the recipe's first program, as
	// bin/NAME-VERSION/DIR: data it reads at run time.
	files []moduleDir
}

type module struct{ path, version string }

// A moduleDir is a directory inside a module's source.
type moduleDir struct{ module, dir string }

// A program is one binary of a recipe. When a recipe has several programs, `go build -o DIR`
// names each after its package path, so name must be that name.
type program struct{ name, pkg string }

var recipes = []*recipe{
	ignitionRecipe(),
	etcdRecipe(),
	kubernetesRecipe(),
	kubernetesNodeRecipe(),
	matchboxRecipe(),
	matchboxProviderRecipe(),
	corednsRecipe(),
	flannelRecipe(),
	flannelCNIPluginRecipe(),
	cniPluginsRecipe(),
	kubeBenchRecipe(),
}

func ignitionRecipe() *recipe {
	const mod = "github.com/coreos/ignition/v2"
	return &recipe{
		name:     "ignition",
		version:  versions.Ignition,
		require:  []module{{mod, versions.Ignition}},
		programs: []program{{"ignition", mod + "/internal"}},
		ldflags: []string{
			"-X " + mod + "/internal/version.Raw=" + versions.Ignition,
			// Nothing relabels a test's root directory, and there is no SELinux policy to load.
			"-X " + mod + "/internal/distro.selinuxRelabel=false",
		},
		cgo:  true,
		hint: "Ignition links libblkid through cgo: install gcc and libblkid-dev (make deps)",
	}
}

func etcdRecipe() *recipe {
	v := versions.Etcd
	r := &recipe{
		name:    "etcd",
		version: v,
		mains: map[string]string{
			// The server module's own main package builds a binary named "server".
			"cmd/etcd": `package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
`,
		},
		programs: []program{
			{"etcd", "./cmd/etcd"},
			{"etcdctl", "go.etcd.io/etcd/etcdctl/v3"},
			{"etcdutl", "go.etcd.io/etcd/etcdutl/v3"},
		},
	}
	// etcd's modules point at each other through relative replaces, which are ignored in a
	// dependency: pin every one of them to the same release instead.
	for _, m := range []string{"api", "client/pkg", "client/v3", "pkg", "server", "etcdctl", "etcdutl"} {
		path := "go.etcd.io/etcd/" + m
		if !strings.HasSuffix(path, "/v3") {
			path += "/v3"
		}
		r.require = append(r.require, module{path, v})
		r.replace = append(r.replace, module{path, v})
	}
	return r
}

// kubernetesStaging lists the modules that k8s.io/kubernetes requires at v0.0.0 and replaces with
// its own staging directories.
var kubernetesStaging = []string{
	"api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go",
	"cloud-provider", "cluster-bootstrap", "code-generator", "component-base", "component-helpers",
	"controller-manager", "cri-api", "cri-client", "csi-translation-lib", "dynamic-resource-allocation",
	"endpointslice", "externaljwt", "kms", "kube-aggregator", "kube-controller-manager", "kube-proxy",
	"kube-scheduler", "kubectl", "kubelet", "metrics", "mount-utils", "pod-security-admission",
	"sample-apiserver", "sample-cli-plugin", "sample-controller",
}

// kubernetesRecipe builds the control-plane programs.
func kubernetesRecipe() *recipe {
	return kubernetesPrograms("kubernetes", map[string]string{
		"kube-apiserver":          "k8s.io/kubernetes/cmd/kube-apiserver/app.NewAPIServerCommand()",
		"kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager/app.NewControllerManagerCommand()",
		"kube-scheduler":          "k8s.io/kubernetes/cmd/kube-scheduler/app.NewSchedulerCommand()",
	})
}

// kubernetesNodeRecipe builds what every machine runs: the kubelet and kube-proxy. It is a recipe
// of its own so that tests that need only the control plane do not wait for it; it shares the
// Go build cache with kubernetesRecipe, so building both costs little more than one.
func kubernetesNodeRecipe() *recipe {
	return kubernetesPrograms("kubernetes-node", map[string]string{
		"kubelet":    "k8s.io/kubernetes/cmd/kubelet/app.NewKubeletCommand(context.Background())",
		"kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy/app.NewProxyCommand()",
	})
}

// kubernetesPrograms is a recipe of Kubernetes commands at the pinned version: program name ->
// the package-qualified call that returns its cobra command.
func kubernetesPrograms(name string, commands map[string]string) *recipe {
	r := &recipe{
		name:    name,
		version: versions.Kubernetes,
		require: []module{
			{"k8s.io/kubernetes", versions.Kubernetes},
			{"k8s.io/component-base", versions.KubernetesStaging},
		},
		mains: map[string]string{},
	}
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		call := commands[n]
		dot := strings.LastIndex(call[:strings.Index(call, "(")], ".")
		r.mains["cmd/"+n] = kubeMain(call[:dot], call[dot+1:])
		r.programs = append(r.programs, program{n, "./cmd/" + n})
	}
	for _, m := range kubernetesStaging {
		r.replace = append(r.replace, module{"k8s.io/" + m, versions.KubernetesStaging})
	}
	// What Kubernetes's own build stamps, so that --version and the /version endpoint tell the truth.
	major, minor := kubernetesMajorMinor(versions.Kubernetes)
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		r.ldflags = append(r.ldflags,
			"-X "+pkg+".gitVersion="+versions.Kubernetes,
			"-X "+pkg+".gitMajor="+major,
			"-X "+pkg+".gitMinor="+minor,
			"-X "+pkg+".gitTreeState=clean",
		)
	}
	return r
}

// kubeMain is the main package of a Kubernetes component, with the same registrations as the
// upstream one; call constructs its command.
func kubeMain(app, call string) string {
	return fmt.Sprintf(`package main

import (
	"context"
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"%s"
)

var _ = context.Background

func main() {
	os.Exit(cli.Run(app.%s))
}
`, app, call)
}

// kubernetesMajorMinor returns "1" and "35" for "v1.35.4".
func kubernetesMajorMinor(v string) (major, minor string) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		panic("testbin: Kubernetes version " + v + " is not vMAJOR.MINOR.PATCH")
	}
	return parts[0], parts[1]
}

func matchboxRecipe() *recipe {
	const mod = "github.com/poseidon/matchbox"
	return &recipe{
		name:     "matchbox",
		version:  versions.Matchbox,
		require:  []module{{mod, versions.Matchbox}},
		replace:  []module{{"gopkg.in/yaml.v2", "v2.4.0"}}, // as matchbox's own go.mod does
		programs: []program{{"matchbox", mod + "/cmd/matchbox"}},
		ldflags:  []string{"-X " + mod + "/matchbox/version.Version=" + versions.Matchbox},
	}
}

func matchboxProviderRecipe() *recipe {
	const mod = "github.com/poseidon/terraform-provider-matchbox"
	return &recipe{
		name:     "terraform-provider-matchbox",
		version:  versions.MatchboxProvider,
		require:  []module{{mod, versions.MatchboxProvider}},
		programs: []program{{"terraform-provider-matchbox", mod}},
	}
}

func corednsRecipe() *recipe {
	const mod = "github.com/coredns/coredns"
	return &recipe{
		name:    "coredns",
		version: versions.CoreDNS,
		// CoreDNS's go.mod has no replace directives to mirror; its main package is the module root.
		require:  []module{{mod, versions.CoreDNS}},
		programs: []program{{"coredns", mod}},
	}
}

func flannelRecipe() *recipe {
	const mod = "github.com/flannel-io/flannel"
	return &recipe{
		name:     "flannel",
		version:  versions.Flannel,
		require:  []module{{mod, versions.Flannel}},
		programs: []program{{"flanneld", mod}},
		// The version as flannel's Makefile stamps it. On amd64 flanneld's UDP backend is C, so it
		// is built as upstream builds it: with cgo, linked statically (glibc's libc.a, from
		// libc6-dev), so that its image needs nothing else; netgo and osusergo keep name and user
		// lookups in Go, which a static glibc cannot do.
		ldflags: []string{
			"-X " + mod + "/pkg/version.Version=" + versions.Flannel,
			"-linkmode=external", "-extldflags=-static",
		},
		tags: []string{"netgo", "osusergo"},
		cgo:  true,
		hint: "flanneld links glibc statically: install gcc and libc6-dev (make deps)",
	}
}

// flannelCNIPluginRecipe builds the flannel CNI plugin, which delegates to bridge and host-local
// with the subnet flanneld leased, from the containernetworking/plugins release it came from.
func flannelCNIPluginRecipe() *recipe {
	const mod = "github.com/containernetworking/plugins"
	return &recipe{
		name:     "flannel-cni-plugin",
		version:  versions.FlannelCNIPluginSource,
		require:  []module{{mod, versions.FlannelCNIPluginSource}},
		programs: []program{{"flannel", mod + "/plugins/meta/flannel"}},
		ldflags:  []string{"-X " + mod + "/pkg/utils/buildversion.BuildVersion=" + versions.FlannelCNIPluginSource},
	}
}

// cniPlugins are the Linux plugins of a containernetworking/plugins release, each in the
// directory of the repository that holds it; a release archive holds every one of them.
var cniPlugins = []string{
	"ipam/dhcp", "ipam/host-local", "ipam/static",
	"main/bridge", "main/dummy", "main/host-device", "main/ipvlan", "main/loopback", "main/macvlan",
	"main/ptp", "main/tap", "main/vlan",
	"meta/bandwidth", "meta/firewall", "meta/portmap", "meta/sbr", "meta/tuning", "meta/vrf",
}

// CNIPluginsModule is the module the standard CNI plugins are built from, at versions.CNIPlugins.
const CNIPluginsModule = "github.com/containernetworking/plugins"

// CNIPlugins returns the names of the standard CNI plugins Path builds, sorted: the programs of a
// containernetworking/plugins release archive.
func CNIPlugins() []string {
	var names []string
	for _, p := range cniPlugins {
		names = append(names, p[strings.LastIndex(p, "/")+1:])
	}
	sort.Strings(names)
	return names
}

func cniPluginsRecipe() *recipe {
	const mod = CNIPluginsModule
	r := &recipe{
		name:    "cni-plugins",
		version: versions.CNIPlugins,
		require: []module{{mod, versions.CNIPlugins}},
		// As the release's build stamps it: each plugin answers VERSION with "CNI NAME plugin v1.8.0".
		ldflags: []string{"-X " + mod + "/pkg/utils/buildversion.BuildVersion=" + versions.CNIPlugins},
	}
	for _, p := range cniPlugins {
		r.programs = append(r.programs, program{p[strings.LastIndex(p, "/")+1:], mod + "/plugins/" + p})
	}
	return r
}

// kubeBenchRecipe builds kube-bench, which runs the CIS Kubernetes Benchmark against the machine it
// runs on, with the benchmark definitions of the same release (cfg/) beside it.
func kubeBenchRecipe() *recipe {
	const mod = "github.com/aquasecurity/kube-bench"
	return &recipe{
		name:    "kube-bench",
		version: versions.KubeBench,
		require: []module{{mod, versions.KubeBench}},
		// The public checksum database does not hold kube-bench's releases, so the checksums of
		// the one versions.KubeBench pins are kept here (a new version's are in the go.sum of a
		// module that requires it).
		sums: []string{
			mod + " " + versions.KubeBench + " h1:LBt4OyzKIDP654v+IWtfbeCG40Q+mhdbBnXZRuewpvY=",
			mod + " " + versions.KubeBench + "/go.mod h1:f2yV6jN7eug4JJOGYDxpu4RxSOb4VbEE//8b+7Yqwqc=",
		},
		sumsOf:   mod,
		files:    []moduleDir{{mod, "cfg"}},
		programs: []program{{"kube-bench", mod}},
		// As kube-bench's makefile stamps it, for `kube-bench version`.
		ldflags: []string{"-X " + mod + "/cmd.KubeBenchVersion=" + versions.KubeBench},
	}
}

// KubeBenchConfigDir returns the directory of the CIS benchmark definitions that kube-bench at
// kubeBench (a path Path returned) was built with: its --config-dir.
func KubeBenchConfigDir(kubeBench string) string {
	return filepath.Join(filepath.Dir(kubeBench), "cfg")
}
