package reliability

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewarhq/dewar/internal/zktest"
)

// FullEnv selects the full run (`make reliability`); without it `go test`
// runs the short one that `make test` includes.
const FullEnv = "DEWAR_RELIABILITY_FULL"

// TableEnv names a file the table is written to (`make reliability` prints
// it); the table is also in the test log.
const TableEnv = "DEWAR_RELIABILITY_TABLE"

// scale is how big a run is.
type scale struct {
	full   bool
	tasks  int // announced tasks in the leader and quorum scenarios
	storm  int // sessions in the rejoin storm
	rounds int // repetitions of the leader kill and the executor kill
	// agentRestarts is how often the fake agent restarts under running
	// tasks.
	agentRestarts int
	// mesosRestarts is how often the real mesos-agent restarts under a
	// running task (full run only: e2e/mesos restarts it once in `make
	// test`).
	mesosRestarts int
}

func currentScale() scale {
	if os.Getenv(FullEnv) == "1" {
		return scale{full: true, tasks: 200, storm: 1000, rounds: 3, agentRestarts: 20, mesosRestarts: 5}
	}
	return scale{tasks: 20, storm: 50, rounds: 1, agentRestarts: 3}
}

// scenario stages one failure and measures it.
type scenario struct {
	name string
	run  func(*testing.T, *zktest.Ensemble, scale) result
}

// result is one row of the table.
type result struct {
	scenario string
	figure   string
	must     string
	pass     bool
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// TestReliability runs every scenario against one ensemble, one after the
// other (each restores the ensemble first), and prints the table. A
// scenario that misses its threshold fails the test.
func TestReliability(t *testing.T) {
	sc := currentScale()
	ens := zktest.StartEnsemble(t)
	scenarios := []scenario{
		{"LeaderKilled", leaderKilled},
		{"FollowerFrozen", serverFrozen},
		{"QuorumLost", quorumLost},
		{"RejoinStorm", rejoinStorm(false)},
		{"RealExecutorKilled", realExecutorKilled},
		{"AgentRestarted", agentRestarted},
		{"Security", security},
		{"DiskFull", diskFull},
		{"AddressFlap", addressFlap},
	}
	if sc.full {
		scenarios = append(scenarios,
			// The same kill with a 4 s session, in a child process of our
			// own (the executor has no flag for its session timeout: 10 s).
			scenario{"ExecutorKilled", executorKilled},
			// A second storm, after wiping every server (see rejoinStorm);
			// the announcer's own tests cover the wipe at small scale
			// (announcer/wipe_test.go).
			scenario{"RejoinStormEmptyDatabases", rejoinStorm(true)},
			scenario{"MesosAgentRestarted", mesosAgentRestarted})
	}
	var mu sync.Mutex
	var rows []result
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			// A scenario that stops with t.Fatal still gets its row.
			r := result{scenario: s.name, figure: "did not finish (see the test log)"}
			defer func() {
				mu.Lock()
				rows = append(rows, r)
				mu.Unlock()
			}()
			restore(t, ens)
			r = s.run(t, ens, sc)
			if !r.pass {
				t.Errorf("%s: %s; must hold: %s", r.scenario, r.figure, r.must)
			}
		})
	}
	table := formatTable(sc, rows)
	t.Log("\n" + table)
	if p := os.Getenv(TableEnv); p != "" {
		if err := os.WriteFile(p, []byte(table), 0o644); err != nil {
			t.Errorf("write the table to %s: %v", p, err)
		}
	}
}

// restore brings every member of the ensemble back and waits until all
// serve, so each scenario starts from a whole ensemble.
func restore(t *testing.T, ens *zktest.Ensemble) {
	t.Helper()
	for i := range ens.Size() {
		ens.Server(i).Start()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
}

func formatTable(sc scale, rows []result) string {
	var b strings.Builder
	mode := "short"
	if sc.full {
		mode = "full"
	}
	fmt.Fprintf(&b, "reliability (%s run: %d tasks, storm of %d sessions, %d rounds; session timeout %v; %d CPUs, %s)\n\n",
		mode, sc.tasks, sc.storm, sc.rounds, sessionTimeout, runtime.NumCPU(), runtime.Version())
	b.WriteString("| scenario | figure | must hold | result |\n|---|---|---|---|\n")
	for _, r := range rows {
		verdict := "pass"
		if !r.pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.scenario, r.figure, r.must, verdict)
	}
	return b.String()
}

// secs formats a duration as seconds with two decimals.
func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
