package main

import (
	"log"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/hostagent"
)

func agentCommand() *cobra.Command {
	var kubeconfig, node, dir, hostAPIServer string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Act on a controller's host for the pivot: remove the bootstrap control plane when asked",
		Long: `agent runs on each controller of a self-hosted cluster (manifests/15-liftoff-agent.yaml) with the
kubelet's static pod directory mounted. It watches the ConfigMap kube-system/` + generator.PivotRecord + `; when
` + "`liftoff bootstrap`" + ` asks for the bootstrap control plane's teardown there, it removes the static pods named
` + generator.BootstrapPodPrefix + `*.yaml (and no other file) and answers under its node's key. With
--host-apiserver it first waits until two apiservers answer on the host's address, the bootstrap
one and the self-hosted one that shares its port, so removing the first never leaves the host
without an API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := inClusterOrKubeconfig(kubeconfig)
			if err != nil {
				return err
			}
			cfg.UserAgent = "liftoff-agent"
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			logger := log.New(cmd.ErrOrStderr(), "", log.LstdFlags)
			return hostagent.Run(cmd.Context(), hostagent.Options{Client: client, Config: cfg, Node: node, StaticPodDir: dir,
				HostAPIServer: hostAPIServer, Logf: logger.Printf})
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig to reach the API with (default: the pod's service account)")
	cmd.Flags().StringVar(&node, "node", os.Getenv("NODE_NAME"), "the node this agent runs on (default $NODE_NAME)")
	cmd.Flags().StringVar(&hostAPIServer, "host-apiserver", "", "URL of this host's apiserver address: the bootstrap apiserver is removed only once a second apiserver answers there")
	cmd.Flags().StringVar(&dir, "static-pod-dir", generator.HostStaticPodDir, "the kubelet's static pod directory")
	return cmd
}
