// Command liftoff-image builds liftoff's own container image — the static liftoff binary
// (./cmd/liftoff) at /usr/local/bin/liftoff, its entrypoint — from this module's sources, without
// Docker, and writes it as an OCI archive. It is the image local clusters run: the same build
// (package harness/images), reproducible and cached under $LIFTOFF_CACHE/images (default
// ~/.cache/liftoff/images), so building it again from unchanged sources gives the same digest.
//
//	liftoff-image [-o out/liftoff-image.oci.tar] [-ref ghcr.io/liftoff-k8s/liftoff:VERSION]
//
// The archive is an OCI image layout in a tar (what ctr images import reads) that names the image
// by -ref and by its digest (repository@sha256:...). On success liftoff-image prints one line:
// the reference, the reference pinned by its digest and the archive's size in bytes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/liftoff-k8s/liftoff/harness/images"
	"github.com/liftoff-k8s/liftoff/spec"
)

func main() {
	out := flag.String("o", filepath.Join("out", "liftoff-image.oci.tar"), "where to write the OCI archive")
	ref := flag.String("ref", defaultRef(), "the image's reference; its repository's last path element must be liftoff")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: liftoff-image [-o PATH] [-ref REF]\n\n"+
			"Builds liftoff's container image from source as an OCI archive.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	line, err := run(ctx, *ref, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "liftoff-image:", err)
		os.Exit(1)
	}
	fmt.Println(line)
}

// defaultRef is the liftoff image a spec names when it sets none.
func defaultRef() string {
	return spec.WithDefaults(&spec.Cluster{}).Images.Liftoff
}

// run builds the image of ref and writes its archive to out, returning the line to print.
func run(ctx context.Context, ref, out string) (string, error) {
	if kind := repositoryName(ref); kind != "liftoff" {
		return "", fmt.Errorf("-ref %s: the last path element of the repository must be liftoff, not %q", ref, kind)
	}
	archives, err := images.Build(ctx, []string{ref})
	if err != nil {
		return "", err
	}
	a := archives[0]
	if err := copyAtomic(a.Path, out, a.Size); err != nil {
		return "", fmt.Errorf("writing %s: %w", out, err)
	}
	return fmt.Sprintf("%s %s %d bytes", a.Ref, a.Pinned(), a.Size), nil
}

// repositoryName is the last path element of ref's repository, without tag or digest.
func repositoryName(ref string) string {
	rest, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest = rest[:i]
	}
	return rest[strings.LastIndex(rest, "/")+1:]
}

// copyAtomic copies src to dst through a temporary file in dst's directory, synced before it is
// renamed over dst: dst is either the old file or the whole new one, even after a crash.
func copyAtomic(src, dst string, size int64) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, in)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s is %d bytes, not %d: the cache changed while it was copied", src, n, size)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	// The rename itself lasts once the directory is synced.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
