package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/spec"
)

func certsCommand() *cobra.Command {
	var dir, window string
	var check bool
	cmd := &cobra.Command{
		Use:   "certs --dir DIR",
		Short: "List every certificate of a rendered cluster with its subject, SANs, expiry, which machines have it and what for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			renew, err := spec.ParseDuration(window)
			if err != nil {
				return fmt.Errorf("--renew-before: %w", err)
			}
			assets, err := outdir.Read(dir)
			if err != nil {
				return err
			}
			certs, err := generator.Certificates(assets.Files)
			if err != nil {
				return err
			}
			now := time.Now()
			var due []string
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "PATH\tSUBJECT\tEXPIRES\tSTATUS\tON\tPURPOSE\tSANS")
			for _, c := range certs {
				sans := strings.Join(append(append([]string{}, c.DNSNames...), c.IPs...), ",")
				if sans == "" {
					sans = "-"
				}
				status := fmt.Sprintf("%dd left", int(c.NotAfter.Sub(now).Hours()/24))
				switch {
				case now.After(c.NotAfter):
					status = "EXPIRED"
				case c.ExpiresWithin(now, renew):
					status += ", RENEW (re-render to renew)"
				}
				if c.ExpiresWithin(now, renew) {
					due = append(due, c.Path)
				}
				if c.IsCA {
					status += ", CA"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Path, c.Subject, c.NotAfter.UTC().Format(time.RFC3339), status, c.On, c.Purpose, sans)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if check && len(due) > 0 {
				return fmt.Errorf("%d certificates expire within %s: %s", len(due), window, strings.Join(due, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "rendered output directory")
	cmd.Flags().StringVar(&window, "renew-before", spec.DefaultRenewBefore, "flag certificates expiring within this window")
	cmd.Flags().BoolVar(&check, "check", false, "exit non-zero when any certificate expires within the window (for monitoring)")
	cmd.MarkFlagRequired("dir")
	return cmd
}
