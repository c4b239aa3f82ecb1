package fakeagent

import (
	"fmt"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ParseResources reads Mesos' --resources flag syntax (src/common/
// resources.cpp, Resources::parse):
// "cpus:4;mem:4096;ports:[31000-32000,33000-33100]". Scalars and ranges are
// supported; role suffixes ("cpus(role):1") are not.
func ParseResources(s string) ([]mesos.Resource, error) {
	var out []mesos.Resource
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, ok := strings.Cut(item, ":")
		if !ok || name == "" || strings.ContainsAny(name, "()") {
			return nil, fmt.Errorf("resources %q: %q is not name:value; write e.g. cpus:4;mem:4096;ports:[31000-32000]", s, item)
		}
		if strings.HasPrefix(val, "[") && strings.HasSuffix(val, "]") {
			var rs mesos.Ranges
			for _, r := range strings.Split(val[1:len(val)-1], ",") {
				lo, hi, ok := strings.Cut(strings.TrimSpace(r), "-")
				b, err1 := strconv.ParseUint(lo, 10, 64)
				e, err2 := strconv.ParseUint(hi, 10, 64)
				if !ok || err1 != nil || err2 != nil || e < b {
					return nil, fmt.Errorf("resources %q: bad range %q in %s; write [begin-end,...]", s, r, name)
				}
				rs = append(rs, mesos.Value_Range{Begin: b, End: e})
			}
			out = append(out, mesos.Resource{Name: name, Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: rs}})
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || f < 0 {
			return nil, fmt.Errorf("resources %q: %s value %q is not a non-negative number", s, name, val)
		}
		out = append(out, mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: f}})
	}
	return out, nil
}
