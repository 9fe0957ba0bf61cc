// Package kubelet is the harness's stand-in for the kubelet: a Go program that does what the real
// kubelet does towards the API and towards a machine's files, and runs containers as local
// processes.
//
// It takes the real kubelet's command line (as the rendered kubelet.service has it) and reads the
// rendered KubeletConfiguration, bootstrap kubeconfig and static pod manifests from the machine's
// root directory. It joins the cluster through real TLS bootstrap, registers its Node with the
// labels, taints and address it was given, renews its Lease, publishes mirror pods for its static
// pods and runs the pods bound to it.
//
// What it does not have is a container runtime. A container whose image is a component the
// harness can run (kube-apiserver, kube-controller-manager, kube-scheduler, etcd, liftoff) runs as
// that real program with the container's command and arguments, hostPath volumes mapped into the
// machine's root. Any other container (CoreDNS, flannel, kube-proxy, pause) is reported Running
// without a process behind it and is never reported ready; its pod's conditions say so.
// Readiness, liveness and startup probes of real containers are really performed (httpGet without
// verifying certificates, as the kubelet does, and tcpSocket). The Node's Ready condition means
// that this stand-in runs and reaches the API; no container runtime or CNI is checked.
package kubelet
