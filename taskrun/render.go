package taskrun

import (
	"fmt"

	"github.com/dewarhq/dewar/pystachio"
)

// renderPlan fills the {{...}} variables of every command line (and the
// shell health check) the way Thermos renders them at run time. An unknown
// variable fails the task before anything runs.
func renderPlan(p *plan, scope map[string]string) error {
	for i := range p.task.Processes {
		pr := &p.task.Processes[i]
		out, err := pystachio.Render(pr.Cmdline, pystachio.Scope(scope))
		if err != nil {
			return fmt.Errorf("process %q cmdline: %w", pr.Name, err)
		}
		pr.Cmdline = out
	}
	return nil
}
