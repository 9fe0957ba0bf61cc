package harness

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/liftoff-k8s/liftoff/harness/images"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/internal/versions"
)

// releasePort is the port of the release host on the cluster's gateway address.
const releasePort = 8443

// artifact is one file the release host serves: a program release as its project publishes it.
type artifact struct {
	// urlPath is where it is served, with {version} and {arch} as in a spec's url.
	urlPath string
	file    string
	sha512  string
}

// releaseArtifacts builds (or finds) what machines download at first boot — the kubelet, etcd's
// release archive and the CNI plugins' — from the same pinned programs the tests run.
func releaseArtifacts(ctx context.Context) (kubelet, etcd, cni artifact, err error) {
	kubeletBin, err := testbin.Path(ctx, "kubelet")
	if err != nil {
		return kubelet, etcd, cni, fmt.Errorf("%w\nBuild the real programs with `make binaries`", err)
	}
	kubelet = artifact{urlPath: "/kubernetes/{version}/bin/linux/{arch}/kubelet", file: kubeletBin}
	if kubelet.sha512, err = fileSHA512(kubeletBin); err != nil {
		return kubelet, etcd, cni, err
	}
	if etcd, err = etcdRelease(ctx); err != nil {
		return kubelet, etcd, cni, err
	}
	path, sum, err := images.CNIPluginsRelease(ctx)
	if err != nil {
		return kubelet, etcd, cni, err
	}
	cni = artifact{urlPath: "/cni/{version}/" + filepath.Base(path), file: path, sha512: sum}
	return kubelet, etcd, cni, nil
}

// etcdRelease packs etcd, etcdctl and etcdutl as etcd's own release archive lays them out
// (etcd-VERSION-linux-ARCH/...), once per build of them.
func etcdRelease(ctx context.Context) (artifact, error) {
	name := "etcd-" + versions.Etcd + "-linux-amd64"
	var programs []string
	for _, p := range []string{"etcd", "etcdctl", "etcdutl"} {
		bin, err := testbin.Path(ctx, p)
		if err != nil {
			return artifact{}, fmt.Errorf("%w\nBuild the real programs with `make binaries`", err)
		}
		programs = append(programs, bin)
	}
	out := filepath.Join(filepath.Dir(programs[0]), name+".tar.gz")
	if _, err := os.Stat(out); err != nil {
		if err := writeTarGz(out, name, programs); err != nil {
			return artifact{}, fmt.Errorf("packing %s: %w", name, err)
		}
	}
	sum, err := fileSHA512(out)
	return artifact{urlPath: "/etcd/{version}/etcd-{version}-linux-{arch}.tar.gz", file: out, sha512: sum}, err
}

// writeTarGz writes the files into dir/ of a reproducible .tar.gz at out, atomically.
func writeTarGz(out, dir string, files []string) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".release-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	gz := gzip.NewWriter(tmp)
	tw := tar.NewWriter(gz)
	epoch := time.Unix(0, 0)
	tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch})
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/" + filepath.Base(f), Mode: 0o755, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := errors.Join(tw.Close(), gz.Close(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

func fileSHA512(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// releaseHost stands in for the hosts that publish releases (dl.k8s.io, GitHub): an HTTPS server on
// the cluster's gateway address serving the artifacts under their versioned paths, with a
// certificate from a CA that only the cluster's machines trust.
type releaseHost struct {
	addr   string
	caPEM  []byte
	server *http.Server
}

// startReleaseHost serves the artifacts (with {version} and {arch} already filled in their paths)
// on addr.
func startReleaseHost(addr netip.AddrPort, files map[string]string) (*releaseHost, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "liftoff harness release host CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "release host"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{addr.Addr().AsSlice()},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for p, f := range files {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, f) })
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("release host: %w", err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go srv.ServeTLS(ln, "", "")
	return &releaseHost{addr: addr.String(), server: srv,
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}, nil
}

func (h *releaseHost) close() {
	if h != nil {
		h.server.Close()
	}
}

// expandPath fills {version} and {arch} in an artifact's path.
func expandPath(p, version string) string {
	return strings.NewReplacer("{version}", version, "{arch}", "amd64").Replace(p)
}
