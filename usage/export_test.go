package usage

// NewSamplerWithCgroups is newSampler for tests: the executor's
// /proc/self/cgroup read from selfCgroup, hierarchies mounted at mount.
var NewSamplerWithCgroups = newSampler
