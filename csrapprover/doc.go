// Package csrapprover approves the certificate signing requests with which kubelets ask for their
// serving certificates (signer kubernetes.io/kubelet-serving). Kubernetes approves only kubelets'
// client certificates by itself; a serving certificate names the node's addresses, and the
// apiserver trusts any certificate the cluster CA signed for the address it dials, so each request
// is checked against the Node it claims to be before it is approved.
//
// Review is the decision, pure and table-tested; Run watches requests and records decisions in the
// API, one replica at a time through a coordination.k8s.io Lease. A request is approved only when
// every check passes and denied otherwise, with a message naming the check that failed, so an
// operator sees why in `kubectl describe csr`. Requests for other signers are left alone.
package csrapprover
