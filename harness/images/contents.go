package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// Path is every image's PATH; /opt/bin is where flannel's image keeps flanneld.
const Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin"

// An image is what one repository's image holds, apart from the base every image has.
type image struct {
	// programs maps a path in the image to the program that goes there (see program).
	programs map[string]string
	// iptables adds the host's iptables (nft) userland; busybox adds busybox-static and its links.
	iptables, busybox bool
	entrypoint, cmd   []string
}

// images maps the last path element of an image's repository to what it holds. The paths and
// commands are those of the upstream images, which the rendered manifests run.
var images = map[string]image{
	"kube-apiserver":          kubernetesImage("kube-apiserver"),
	"kube-controller-manager": kubernetesImage("kube-controller-manager"),
	"kube-scheduler":          kubernetesImage("kube-scheduler"),
	"kube-proxy": {
		programs:   map[string]string{"/usr/local/bin/kube-proxy": "kube-proxy"},
		iptables:   true,
		entrypoint: []string{"/usr/local/bin/kube-proxy"},
	},
	"coredns": {
		// The rendered Deployment gives only args: /coredns is the entrypoint.
		programs:   map[string]string{"/coredns": "coredns"},
		entrypoint: []string{"/coredns"},
	},
	"flannel": {
		// flanneld, and cp for the init container that installs the CNI config.
		programs:   map[string]string{"/opt/bin/flanneld": "flanneld"},
		iptables:   true,
		busybox:    true,
		entrypoint: []string{"/opt/bin/flanneld"},
	},
	"flannel-cni-plugin": {
		// The plugin, and cp for the init container that installs it into /opt/cni/bin.
		programs: map[string]string{"/flannel": "flannel"},
		busybox:  true,
		cmd:      []string{"/bin/sh"},
	},
	"pause": {
		programs:   map[string]string{"/pause": pauseProgram},
		entrypoint: []string{"/pause"},
	},
	// busybox is for the workloads tests run: a shell, httpd, wget and nslookup.
	"busybox": {
		busybox: true,
		cmd:     []string{"/bin/sh"},
	},
	"liftoff": {
		programs:   map[string]string{"/usr/local/bin/liftoff": liftoffProgram},
		entrypoint: []string{"/usr/local/bin/liftoff"},
	},
}

func kubernetesImage(name string) image {
	return image{
		programs:   map[string]string{"/usr/local/bin/" + name: name},
		entrypoint: []string{"/usr/local/bin/" + name},
	}
}

// Repositories returns the repository names Build knows, sorted.
func Repositories() []string {
	var names []string
	for n := range images {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Programs that are not testbin's: built from this module.
const (
	liftoffProgram = "liftoff"
	pauseProgram   = "liftoff-pause"
)

// program returns the path of a program an image holds, building it if need be.
func program(ctx context.Context, name string) (string, error) {
	switch name {
	case liftoffProgram:
		return buildModuleProgram(ctx, "./cmd/liftoff", "liftoff")
	case pauseProgram:
		return buildModuleProgram(ctx, "./harness/cmd/liftoff-pause", "liftoff-pause")
	}
	p, err := testbin.Path(ctx, name)
	if err != nil {
		return "", fmt.Errorf("images: %w\nBuild the real programs with `make binaries`", err)
	}
	return p, nil
}

// baseTree is what every image has: a /tmp anyone can write, root and nobody, and name lookups
// that read /etc/hosts before DNS.
func baseTree() (*fileTree, error) {
	t := newTree("base")
	for _, step := range []error{
		t.dir("/tmp", os.ModeSticky|0o777),
		t.dir("/root", 0o700),
		t.data("/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
		t.data("/etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n"),
		t.data("/etc/nsswitch.conf", 0o644, "hosts: files dns\n"),
	} {
		if step != nil {
			return nil, step
		}
	}
	return t, nil
}

// iptablesPrograms are the names kube-proxy and flannel run iptables by; the nft multi-call
// program acts on the name it is run as.
var iptablesPrograms = []string{
	"iptables", "iptables-save", "iptables-restore",
	"ip6tables", "ip6tables-save", "ip6tables-restore",
	"iptables-nft", "iptables-nft-save", "iptables-nft-restore",
	"ip6tables-nft", "ip6tables-nft-save", "ip6tables-nft-restore",
}

const (
	hostXtables    = "/usr/sbin/xtables-nft-multi"
	hostBusybox    = "/bin/busybox"
	debianPackages = "install the Debian packages iptables and busybox-static (make deps)"
)

// toolsTree holds the host's iptables and busybox, as an image asks.
func toolsTree(ctx context.Context, img image) (*fileTree, error) {
	var names []string
	if img.iptables {
		names = append(names, "iptables")
	}
	if img.busybox {
		names = append(names, "busybox")
	}
	t := newTree(strings.Join(names, "+"))
	if img.iptables {
		if err := addIptables(t); err != nil {
			return nil, err
		}
	}
	if img.busybox {
		if err := addBusybox(ctx, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// addIptables adds iptables's nft backend from the host: xtables-nft-multi under every name the
// programs call it by, its match and target extensions (which it loads by name at run time), and
// the libraries and loader they all need.
func addIptables(t *fileTree) error {
	if _, err := os.Stat(hostXtables); err != nil {
		return fmt.Errorf("images: kube-proxy and flannel images need iptables from the host: %w; %s", err, debianPackages)
	}
	seen := map[string]bool{}
	real, err := t.hostPathDynamic(hostXtables, seen)
	if err != nil {
		return err
	}
	for _, name := range iptablesPrograms {
		if err := t.symlink(path.Join(path.Dir(real), name), path.Base(real)); err != nil {
			return err
		}
	}
	extensions, err := xtablesDir()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(extensions)
	if err != nil {
		return fmt.Errorf("images: iptables's extensions: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".so") {
			if err := t.dynamic(path.Join(extensions, e.Name()), seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// hostPathDynamic is dynamic for a program, returning its resolved path.
func (t *fileTree) hostPathDynamic(p string, seen map[string]bool) (string, error) {
	if err := t.dynamic(p, seen); err != nil {
		return "", err
	}
	return t.hostPath(p)
}

// xtablesDir is where libxtables loads extensions from on this host.
func xtablesDir() (string, error) {
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu/xtables", "/usr/lib/aarch64-linux-gnu/xtables", "/usr/lib/xtables", "/usr/lib64/xtables"} {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir, nil
		}
	}
	return "", fmt.Errorf("images: no iptables extensions directory on this host; %s", debianPackages)
}

// addBusybox adds the host's static busybox at /bin/busybox and a link in /bin for each of its
// applets. /bin is last in PATH, so a real program of the same name elsewhere wins.
func addBusybox(ctx context.Context, t *fileTree) error {
	if _, err := os.Stat(hostBusybox); err != nil {
		return fmt.Errorf("images: flannel images need busybox from the host: %w; %s", err, debianPackages)
	}
	out, err := exec.CommandContext(ctx, hostBusybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("images: %s --list: %w", hostBusybox, err)
	}
	if err := t.file("/bin/busybox", hostBusybox); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := t.symlink("/bin/"+applet, "busybox"); err != nil {
			return err
		}
	}
	if _, ok := t.entries["/bin/cp"]; !ok {
		return fmt.Errorf("images: %s has no cp applet", hostBusybox)
	}
	return nil
}
