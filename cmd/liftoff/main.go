// Command liftoff renders and bootstraps Kubernetes clusters on Flatcar Container Linux and Fedora CoreOS.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// errReported is returned when the error has already been printed in full (spec diagnostics).
var errReported = errors.New("")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the CLI with args and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "liftoff",
		Short:         "Render and bootstrap Kubernetes clusters for immutable operating systems",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(renderCommand(), certsCommand(), tokenCommand(), serveSecretsCommand(), bootstrapCommand(), kubeletServingApproverCommand(), agentCommand(), checkpointerCommand(), recoverCommand(), etcdCommand(), versionCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(stderr, "liftoff:", err)
		}
		return 1
	}
	return 0
}
