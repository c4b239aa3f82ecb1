package usage

// NewSamplerWithCgroups is newSampler for tests: the executor's
// /proc/self/cgroup read from selfCgroup, hierarchies mounted at mount.
var NewSamplerWithCgroups = newSampler

// PIDsInSession lists the processes of /proc whose session is sid.
func PIDsInSession(sid int) []int {
	all, _ := allPIDs("/proc")
	var out []int
	for _, pid := range all {
		if st, err := readStat("/proc", pid); err == nil && st.session == sid {
			out = append(out, pid)
		}
	}
	return out
}
