package controlplane

// PIDs returns the process-group ids of etcd and kube-apiserver, for tests that check
// that nothing is left running.
func (cp *ControlPlane) PIDs() []int {
	var pids []int
	for _, p := range []*process{cp.etcd, cp.apiserver} {
		if p != nil {
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	return pids
}
