package generator_test

import (
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/generator"
)

// kubeletRequiredKernelSettings are the settings the kubelet checks when it starts: setupKernelTunables
// in k8s.io/kubernetes pkg/kubelet/cm/container_manager_linux.go, with the values of
// k8s.io/component-helpers/node/util/sysctl. They are written out here, apart from the generator's
// table, so that a wrong table fails this test. With protectKernelDefaults a kubelet whose machine
// differs in any of them refuses to start.
var kubeletRequiredKernelSettings = map[string]string{
	"vm.overcommit_memory":      "1",
	"vm.panic_on_oom":           "0",
	"kernel.panic":              "10",
	"kernel.panic_on_oops":      "1",
	"kernel.keys.root_maxkeys":  "1000000",
	"kernel.keys.root_maxbytes": "25000000",
}

// machineConfigs renders the example cluster with a worker pool for one operating system and
// returns every Ignition config, machines' and the pool's, by its path.
func machineConfigs(t *testing.T, osName string) map[string]igntypes.Config {
	t.Helper()
	src := mustReadFile(t, "../examples/demo/cluster.hcl")
	src = strings.Replace(src, `  worker "node4" {`, "  worker_pool \"general\" {\n    size = 2\n  }\n  worker \"node4\" {", 1)
	_, res := renderSource(t, strings.Replace(src, `"flatcar"`, fmt.Sprintf("%q", osName), 1))
	out := map[string]igntypes.Config{}
	for _, a := range res.Assets.Files {
		if a.Kind != generator.KindIgnition {
			continue
		}
		cfg, rep, err := ign.Parse(a.Data)
		if err != nil || len(rep.Entries) > 0 {
			t.Fatalf("%s: %v %s", a.Path, err, rep)
		}
		out[a.Path] = cfg
		// Each config says what it belongs to: a machine or a worker pool, never both.
		if (a.Node == "") == (a.Pool == "") {
			t.Errorf("%s belongs to machine %q and pool %q", a.Path, a.Node, a.Pool)
		}
	}
	for _, want := range []string{"ignition/node1.ign", "ignition/node4.ign", path.Join(generator.OutPoolIgnitionDir, "general.ign")} {
		if _, ok := out[want]; !ok {
			t.Fatalf("%s not rendered", want)
		}
	}
	return out
}

// kubeletConfigOf is the KubeletConfiguration an Ignition config places, strictly decoded.
func kubeletConfigOf(t *testing.T, cfg igntypes.Config) *kubeletv1beta1.KubeletConfiguration {
	t.Helper()
	for _, f := range cfg.Storage.Files {
		if f.Path == generator.HostKubeletConfig {
			var kc kubeletv1beta1.KubeletConfiguration
			if err := yaml.UnmarshalStrict(generator.DecodeSource(t, f.Contents.Source, f.Contents.Compression), &kc); err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			return &kc
		}
	}
	t.Fatalf("no %s", generator.HostKubeletConfig)
	return nil
}

// TestKubeletsServeWithCertificatesTheClusterCASigns: no kubelet signs its own serving certificate,
// which kube-apiserver could not verify.
func TestKubeletsServeWithCertificatesTheClusterCASigns(t *testing.T) {
	for where, cfg := range machineConfigs(t, "flatcar") {
		kc := kubeletConfigOf(t, cfg)
		if !kc.ServerTLSBootstrap || !kc.RotateCertificates {
			t.Errorf("%s: serverTLSBootstrap %v rotateCertificates %v, want both", where, kc.ServerTLSBootstrap, kc.RotateCertificates)
		}
		if kc.TLSCertFile != "" || kc.TLSPrivateKeyFile != "" {
			t.Errorf("%s: the kubelet serves with %s rather than a certificate it requests", where, kc.TLSCertFile)
		}
		if kc.Authentication.X509.ClientCAFile != path.Join(generator.HostPKIDir, generator.CACert) {
			t.Errorf("%s: the kubelet accepts client certificates from %q", where, kc.Authentication.X509.ClientCAFile)
		}
	}
}

// TestKubeletKernelSettingsAreSetWhereProtected reads every rendered Ignition config, machines' and
// worker pools', for both operating systems, as the machine would: its KubeletConfiguration, and its
// sysctl.d files in the order systemd-sysctl applies them.
func TestKubeletKernelSettingsAreSetWhereProtected(t *testing.T) {
	for _, osName := range []string{"flatcar", "fcos"} {
		t.Run(osName, func(t *testing.T) {
			for where, cfg := range machineConfigs(t, osName) {
				protected, problems := kernelSettingProblems(t, cfg)
				if !protected {
					// The kubelet would then set the settings itself, but liftoff means to protect them.
					t.Errorf("%s: the kubelet does not set protectKernelDefaults", where)
				}
				for _, p := range problems {
					t.Errorf("%s: %s", where, p)
				}
			}
		})
	}

	// The check itself must see a machine that lacks a setting, or overrides one in a later file.
	t.Run("the check finds what is missing", func(t *testing.T) {
		_, res := renderSource(t, mustReadFile(t, "../examples/demo/cluster.hcl"))
		cfg, _, err := ign.Parse(res.Assets.Get("ignition/node4.ign").Data)
		if err != nil {
			t.Fatal(err)
		}
		without := cfg
		without.Storage.Files = slices.DeleteFunc(slices.Clone(cfg.Storage.Files), func(f igntypes.File) bool {
			return strings.HasPrefix(f.Path, "/etc/sysctl.d/")
		})
		if _, problems := kernelSettingProblems(t, without); len(problems) != len(kubeletRequiredKernelSettings) {
			t.Errorf("without sysctl.d files: %v", problems)
		}
		later := "data:,kernel.panic%20%3D%200%0A"
		overridden := cfg
		overridden.Storage.Files = append(slices.Clone(cfg.Storage.Files), igntypes.File{
			Node: igntypes.Node{Path: "/etc/sysctl.d/zz-local.conf"}, FileEmbedded1: igntypes.FileEmbedded1{Contents: igntypes.Resource{Source: &later}},
		})
		if _, problems := kernelSettingProblems(t, overridden); !slices.Equal(problems, []string{"kernel.panic = 0, the kubelet requires 10"}) {
			t.Errorf("with kernel.panic overridden: %v", problems)
		}
	})
}

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// kernelSettingProblems says whether a machine's kubelet protects kernel defaults and, if it does,
// which required setting its sysctl.d files leave unset or set otherwise.
func kernelSettingProblems(t *testing.T, cfg igntypes.Config) (protected bool, problems []string) {
	t.Helper()
	if !kubeletConfigOf(t, cfg).ProtectKernelDefaults {
		return false, nil
	}
	sysctlFiles := map[string][]byte{}
	for _, f := range cfg.Storage.Files {
		if path.Dir(f.Path) == "/etc/sysctl.d" && strings.HasSuffix(f.Path, ".conf") {
			sysctlFiles[path.Base(f.Path)] = generator.DecodeSource(t, f.Contents.Source, f.Contents.Compression)
		}
	}
	settings := sysctlSettings(sysctlFiles)
	for _, key := range slices.Sorted(maps.Keys(kubeletRequiredKernelSettings)) {
		want := kubeletRequiredKernelSettings[key]
		switch got, ok := settings[key]; {
		case !ok:
			problems = append(problems, key+" is not set, the kubelet requires "+want)
		case got != want:
			problems = append(problems, key+" = "+got+", the kubelet requires "+want)
		}
	}
	return true, problems
}

// sysctlSettings reads sysctl.d files as systemd-sysctl does: in file name order, a later setting
// replacing an earlier one, "#" and ";" starting comments, "/" and "." alike in keys.
func sysctlSettings(files map[string][]byte) map[string]string {
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		for _, line := range strings.Split(string(files[name]), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			key, value, ok := strings.Cut(strings.TrimPrefix(line, "-"), "=")
			if !ok {
				continue
			}
			out[strings.ReplaceAll(strings.TrimSpace(key), "/", ".")] = strings.TrimSpace(value)
		}
	}
	return out
}
