package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-k8s/liftoff/generator"
)

func tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "List and rotate the kubelet bootstrap tokens of a rendered cluster",
		Long: `Every machine known one by one (a controller, a worker block, the bootstrap machine) joins with a
bootstrap token of its own that expires pki.bootstrap_token_ttl after the render that created it
(default 24h); every worker pool joins with one token that does not expire. Once a kubelet has
its client certificate the token is removed from its machine.`,
	}
	cmd.AddCommand(tokenListCommand(), tokenRotateCommand())
	return cmd
}

func tokenListCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "list --dir DIR",
		Short: "List the bootstrap tokens: whose, their IDs and when they expire (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tokens, err := generator.ReadBootstrapTokens(os.DirFS(dir))
			if err != nil {
				return err
			}
			if len(tokens) == 0 {
				return fmt.Errorf("%s holds no bootstrap tokens (%s/); is it a rendered cluster?", dir, generator.BootstrapTokensDir)
			}
			now := time.Now()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "OWNER\tID\tEXPIRES\tSTATUS")
			for _, t := range tokens {
				expires, status := "never", "valid"
				switch {
				case t.Expires.IsZero():
				case t.Expired(now):
					expires, status = t.ExpiresRFC3339(), "EXPIRED"
				default:
					expires, status = t.ExpiresRFC3339(), fmt.Sprintf("%s left", t.Expires.Sub(now).Round(time.Minute))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Owner, t.ID, expires, status)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "rendered output directory")
	cmd.MarkFlagRequired("dir")
	return cmd
}

func tokenRotateCommand() *cobra.Command {
	var specPath, out string
	cmd := &cobra.Command{
		Use:   "rotate --spec FILE --out DIR NAME...",
		Short: "Replace the bootstrap token of worker pools or machines, by name, and re-render",
		Long: `Rotate renders the cluster again with a new bootstrap token for each named worker pool or machine
(pools/NAME or machines/NAME when a pool and a machine share a name). Only their Ignition configs
change; machines that have joined keep their client certificates. Then hand the new configs to
their platform (the pool's launch template, the machine's matchbox profile) and run
` + "`liftoff bootstrap`" + `, which applies the new tokens and deletes the old ones from the cluster.
A machine's new token expires pki.bootstrap_token_ttl from now: rotate one that has not joined in time.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := loadSpec(cmd.ErrOrStderr(), specPath)
			if err != nil {
				return err
			}
			var owners []string
			for _, name := range names {
				owner, err := generator.TokenOwner(c, name)
				if err != nil {
					return err
				}
				owners = append(owners, owner)
			}
			res, err := renderInto(cmd, specPath, out, owners)
			if err != nil {
				return err
			}
			for _, ch := range res.Changes {
				if ch.Reason == "rotated" {
					fmt.Fprintf(cmd.OutOrStdout(), "rotated %s\n", strings.TrimPrefix(ch.Path, generator.BootstrapTokensDir+"/"))
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "next: give the changed Ignition configs to their platform, then run `liftoff bootstrap --dir %s` to replace the tokens in the cluster\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&specPath, "spec", "", "cluster spec (HCL)")
	cmd.Flags().StringVar(&out, "out", "", "output directory of the cluster's render")
	cmd.MarkFlagRequired("spec")
	cmd.MarkFlagRequired("out")
	return cmd
}
