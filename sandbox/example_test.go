package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dewarhq/dewar/sandbox"
)

// A task of two ordered processes and a final one, run to the end.
func Example() {
	dir, err := os.MkdirTemp("", "dewar-sandbox-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	task := sandbox.Task{
		Name: "hello",
		Processes: []sandbox.Process{
			{Name: "fetch", Cmdline: "echo world > name", MaxFailures: 1},
			{Name: "greet", Cmdline: `echo "hello $(cat name)"`, MaxFailures: 1},
			{Name: "bye", Cmdline: "echo bye", MaxFailures: 1, Final: true},
		},
		Order:            [][]string{{"fetch", "greet"}},
		MaxFailures:      1,
		FinalizationWait: 30 * time.Second,
	}
	r, err := sandbox.Start(context.Background(), task, sandbox.Options{
		Sandbox: dir,
		Env:     []string{"PATH=/usr/bin:/bin"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for e := range r.Events() {
		if e.Kind == sandbox.EventState {
			fmt.Println("task", e.TaskState)
		}
	}
	<-r.Done()
	fmt.Println(r.Result().Message)
	out, _ := os.ReadFile(filepath.Join(dir, "sandbox", ".logs", "greet", "0", "stdout"))
	fmt.Print(string(out))
	// Output:
	// task ACTIVE
	// task CLEANING
	// task FINALIZING
	// task SUCCESS
	// all processes finished
	// hello world
}
