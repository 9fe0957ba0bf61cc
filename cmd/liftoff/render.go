package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
)

func renderCommand() *cobra.Command {
	var specPath, out string
	cmd := &cobra.Command{
		Use:   "render --spec FILE --out DIR",
		Short: "Render a cluster's PKI, kubeconfigs, manifests and Ignition configs into DIR",
		Long: `Render reads a cluster spec and writes everything its machines need at first boot into DIR,
listed in DIR/index.json. Re-rendering into DIR keeps its key material; the same spec gives the
same files. Nothing is written unless the whole render succeeds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := renderInto(cmd, specPath, out, nil)
			return err
		},
	}
	cmd.Flags().StringVar(&specPath, "spec", "", "cluster spec (HCL)")
	cmd.Flags().StringVar(&out, "out", "", "output directory")
	cmd.MarkFlagRequired("spec")
	cmd.MarkFlagRequired("out")
	return cmd
}

// renderInto renders the spec at specPath into the output directory out, reusing its key material
// except the bootstrap tokens of the owners in rotate, and reports what it did.
func renderInto(cmd *cobra.Command, specPath, out string, rotate []string) (*generator.Result, error) {
	c, err := loadSpec(cmd.ErrOrStderr(), specPath)
	if err != nil {
		return nil, err
	}
	res, err := render.Into(c, out, generator.Options{Now: time.Now(), RotateTokens: rotate})
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", specPath, err)
	}
	for _, ch := range res.Changes {
		if ch.Reason != "created" {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", ch.Path, ch.Reason)
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "rendered cluster %q: %d files in %s (%d controllers, %d workers)\n",
		c.Name, len(res.Assets.Files), out, len(c.Controllers), len(c.Workers))
	return res, nil
}

// loadSpec reads, completes and validates a spec, printing HCL diagnostics (file, line, field and
// the offending source line) on failure.
func loadSpec(stderr io.Writer, path string) (*spec.Cluster, error) {
	c, diags := spec.ReadFile(path)
	if diags.HasErrors() {
		printDiagnostics(stderr, path, nil, diags)
		return nil, errReported
	}
	full, err := spec.Complete(c)
	if inv, ok := spec.AsInvalid(err); ok {
		printDiagnostics(stderr, path, c.Source, inv.Problems.Diagnostics(inv.Cluster))
		return nil, errReported
	} else if err != nil {
		return nil, err
	}
	return full, nil
}

func printDiagnostics(stderr io.Writer, path string, src []byte, diags hcl.Diagnostics) {
	if src == nil {
		src, _ = os.ReadFile(path)
	}
	files := map[string]*hcl.File{path: {Bytes: src}}
	w := hcl.NewDiagnosticTextWriter(stderr, files, 100, false)
	w.WriteDiagnostics(diags)
}
